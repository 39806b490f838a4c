//! Audit events: who did what to which token, when, from which address.

use chrono::{DateTime, Utc};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr, strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum ActorKind {
    /// A person through the API.
    User,
    /// The operator at the command line.
    Cli,
    /// A deploy token (registry token issues).
    DeployToken,
    /// Someone whose login was refused: `actor` is the username tried, if any.
    Anonymous,
    /// A secret-scanning service that reported a leaked token (`actor` names it).
    Reporter,
    /// A CI job or pod that logged in with an OIDC token through a workload identity policy.
    Workload,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr, strum::EnumString,
)]
pub enum AuditAction {
    #[strum(serialize = "deploy_token.create")]
    DeployTokenCreate,
    #[strum(serialize = "deploy_token.revoke")]
    DeployTokenRevoke,
    #[strum(serialize = "deploy_token.delete")]
    DeployTokenDelete,
    #[strum(serialize = "registry_token.issue")]
    RegistryTokenIssue,
    /// A CI system was handed a `gitlab-deploy-token`'s credentials.
    #[strum(serialize = "deploy_token.ci_credentials_read")]
    CiCredentialsRead,
    /// A credential check failed (never recording the secret).
    #[strum(serialize = "login.failure")]
    LoginFailure,
    /// Failed logins locked a client address or a username.
    #[strum(serialize = "login.lockout")]
    LoginLockout,
    /// A personal access token was revoked (as leaked).
    #[strum(serialize = "personal_access_token.revoke")]
    PersonalAccessTokenRevoke,
    /// A refresh token was deleted (as leaked).
    #[strum(serialize = "refresh_token.revoke")]
    RefreshTokenRevoke,
    #[strum(serialize = "workload_identity.create")]
    WorkloadIdentityCreate,
    #[strum(serialize = "workload_identity.delete")]
    WorkloadIdentityDelete,
    /// A federated login: an OIDC token accepted through a workload identity policy.
    #[strum(serialize = "workload.login")]
    WorkloadLogin,
    /// A token exchange: an OIDC token traded for a short-lived credential.
    #[strum(serialize = "workload.exchange")]
    WorkloadExchange,
    /// The registry reported the token acting from a network it had not used lately.
    #[strum(serialize = "deploy_token.new_address")]
    DeployTokenNewAddress,
    /// A credential minted by the token exchange was revoked (as leaked).
    #[strum(serialize = "workload_credential.revoke")]
    WorkloadCredentialRevoke,
    /// A group or project was created.
    #[strum(serialize = "namespace.create")]
    NamespaceCreate,
    /// A project's visibility changed.
    #[strum(serialize = "namespace.visibility_change")]
    NamespaceVisibilityChange,
    #[strum(serialize = "user.create")]
    UserCreate,
    #[strum(serialize = "user.block")]
    UserBlock,
    #[strum(serialize = "user.unblock")]
    UserUnblock,
    /// A user's web sign-in password was set.
    #[strum(serialize = "user.password_change")]
    UserPasswordChange,
    /// A membership was added or its role changed.
    #[strum(serialize = "member.set")]
    MemberSet,
    #[strum(serialize = "member.remove")]
    MemberRemove,
    #[strum(serialize = "personal_access_token.create")]
    PersonalAccessTokenCreate,
    /// A token's address allow-list was replaced or cleared.
    #[strum(serialize = "deploy_token.update")]
    DeployTokenUpdate,
    /// A group's address allow-list was replaced or cleared.
    #[strum(serialize = "group.update")]
    GroupUpdate,
    /// A deploy token got a new secret (the previous one works for the grace period).
    #[strum(serialize = "deploy_token.rotate")]
    DeployTokenRotate,
    /// A personal access token got a new secret.
    #[strum(serialize = "personal_access_token.rotate")]
    PersonalAccessTokenRotate,
    /// A group's token lifetime limits changed.
    #[strum(serialize = "group.token_policy")]
    GroupTokenPolicyChange,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub created_at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub action: AuditAction,
    pub deploy_token_id: Option<i64>,
    pub namespace_id: Option<i64>,
    pub ip_address: Option<String>,
    pub details: serde_json::Value,
}

impl ActorKind {
    pub const ALL: [ActorKind; 6] = [
        ActorKind::User,
        ActorKind::Cli,
        ActorKind::DeployToken,
        ActorKind::Anonymous,
        ActorKind::Reporter,
        ActorKind::Workload,
    ];
}

impl AuditAction {
    pub const ALL: [AuditAction; 29] = [
        AuditAction::DeployTokenCreate,
        AuditAction::DeployTokenRevoke,
        AuditAction::DeployTokenDelete,
        AuditAction::RegistryTokenIssue,
        AuditAction::CiCredentialsRead,
        AuditAction::LoginFailure,
        AuditAction::LoginLockout,
        AuditAction::PersonalAccessTokenRevoke,
        AuditAction::RefreshTokenRevoke,
        AuditAction::WorkloadIdentityCreate,
        AuditAction::WorkloadIdentityDelete,
        AuditAction::WorkloadLogin,
        AuditAction::WorkloadExchange,
        AuditAction::DeployTokenNewAddress,
        AuditAction::WorkloadCredentialRevoke,
        AuditAction::NamespaceCreate,
        AuditAction::NamespaceVisibilityChange,
        AuditAction::UserCreate,
        AuditAction::UserBlock,
        AuditAction::UserUnblock,
        AuditAction::UserPasswordChange,
        AuditAction::MemberSet,
        AuditAction::MemberRemove,
        AuditAction::PersonalAccessTokenCreate,
        AuditAction::DeployTokenUpdate,
        AuditAction::GroupUpdate,
        AuditAction::DeployTokenRotate,
        AuditAction::PersonalAccessTokenRotate,
        AuditAction::GroupTokenPolicyChange,
    ];

    /// Actions recorded per request (not per management operation): pruned after
    /// `audit_retention_days`.
    pub const HIGH_VOLUME: [AuditAction; 5] = [
        AuditAction::RegistryTokenIssue,
        AuditAction::LoginFailure,
        AuditAction::LoginLockout,
        AuditAction::WorkloadLogin,
        AuditAction::WorkloadExchange,
    ];
}

crate::every_variant_listed!(AuditAction);
crate::every_variant_listed!(ActorKind);
