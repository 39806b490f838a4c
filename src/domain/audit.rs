//! Audit events: who did what to which token, when, from which address.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount)]
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
        match self {
            ActorKind::User => "user",
            ActorKind::Cli => "cli",
            ActorKind::DeployToken => "deploy_token",
            ActorKind::Anonymous => "anonymous",
            ActorKind::Reporter => "reporter",
            ActorKind::Workload => "workload",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount)]
pub enum AuditAction {
    DeployTokenCreate,
    DeployTokenRevoke,
    DeployTokenDelete,
    RegistryTokenIssue,
    /// A CI system was handed a `gitlab-deploy-token`'s credentials.
    CiCredentialsRead,
    /// A credential check failed (never recording the secret).
    LoginFailure,
    /// Failed logins locked a client address or a username.
    LoginLockout,
    /// A personal access token was revoked (as leaked).
    PersonalAccessTokenRevoke,
    /// A refresh token was deleted (as leaked).
    RefreshTokenRevoke,
    WorkloadIdentityCreate,
    WorkloadIdentityDelete,
    /// A federated login: an OIDC token accepted through a workload identity policy.
    WorkloadLogin,
    /// A token exchange: an OIDC token traded for a short-lived credential.
    WorkloadExchange,
    /// The registry reported the token acting from a network it had not used lately.
    DeployTokenNewAddress,
    /// A credential minted by the token exchange was revoked (as leaked).
    WorkloadCredentialRevoke,
    /// A group or project was created.
    NamespaceCreate,
    /// A project's visibility changed.
    NamespaceVisibilityChange,
    UserCreate,
    UserBlock,
    UserUnblock,
    /// A user's web sign-in password was set.
    UserPasswordChange,
    /// A membership was added or its role changed.
    MemberSet,
    MemberRemove,
    PersonalAccessTokenCreate,
    /// A token's address allow-list was replaced or cleared.
    DeployTokenUpdate,
    /// A group's address allow-list was replaced or cleared.
    GroupUpdate,
    /// A deploy token got a new secret (the previous one works for the grace period).
    DeployTokenRotate,
    /// A personal access token got a new secret.
    PersonalAccessTokenRotate,
    /// A group's token lifetime limits changed.
    GroupTokenPolicyChange,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::DeployTokenCreate => "deploy_token.create",
            AuditAction::DeployTokenRevoke => "deploy_token.revoke",
            AuditAction::DeployTokenDelete => "deploy_token.delete",
            AuditAction::RegistryTokenIssue => "registry_token.issue",
            AuditAction::CiCredentialsRead => "deploy_token.ci_credentials_read",
            AuditAction::LoginFailure => "login.failure",
            AuditAction::LoginLockout => "login.lockout",
            AuditAction::PersonalAccessTokenRevoke => "personal_access_token.revoke",
            AuditAction::RefreshTokenRevoke => "refresh_token.revoke",
            AuditAction::WorkloadIdentityCreate => "workload_identity.create",
            AuditAction::WorkloadIdentityDelete => "workload_identity.delete",
            AuditAction::WorkloadLogin => "workload.login",
            AuditAction::WorkloadExchange => "workload.exchange",
            AuditAction::DeployTokenNewAddress => "deploy_token.new_address",
            AuditAction::WorkloadCredentialRevoke => "workload_credential.revoke",
            AuditAction::NamespaceCreate => "namespace.create",
            AuditAction::NamespaceVisibilityChange => "namespace.visibility_change",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserBlock => "user.block",
            AuditAction::UserUnblock => "user.unblock",
            AuditAction::UserPasswordChange => "user.password_change",
            AuditAction::MemberSet => "member.set",
            AuditAction::MemberRemove => "member.remove",
            AuditAction::PersonalAccessTokenCreate => "personal_access_token.create",
            AuditAction::DeployTokenUpdate => "deploy_token.update",
            AuditAction::GroupUpdate => "group.update",
            AuditAction::DeployTokenRotate => "deploy_token.rotate",
            AuditAction::PersonalAccessTokenRotate => "personal_access_token.rotate",
            AuditAction::GroupTokenPolicyChange => "group.token_policy",
        }
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
