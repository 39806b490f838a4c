//! Audit events: who did what to which token, when, from which address.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person through the API.
    User,
    /// The operator at the command line.
    Cli,
    /// A deploy token (registry token issues).
    DeployToken,
    /// Someone whose login was refused: `actor` is the username tried, if any.
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Cli => "cli",
            ActorKind::DeployToken => "deploy_token",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The registry reported the token acting from a network it had not used lately.
    DeployTokenNewAddress,
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
            AuditAction::DeployTokenNewAddress => "deploy_token.new_address",
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
    pub const ALL: [ActorKind; 4] = [
        ActorKind::User,
        ActorKind::Cli,
        ActorKind::DeployToken,
        ActorKind::Anonymous,
    ];
}

impl AuditAction {
    pub const ALL: [AuditAction; 8] = [
        AuditAction::DeployTokenCreate,
        AuditAction::DeployTokenRevoke,
        AuditAction::DeployTokenDelete,
        AuditAction::RegistryTokenIssue,
        AuditAction::CiCredentialsRead,
        AuditAction::LoginFailure,
        AuditAction::LoginLockout,
        AuditAction::DeployTokenNewAddress,
    ];

    /// Actions recorded per request (not per management operation): pruned after
    /// `audit_retention_days`.
    pub const HIGH_VOLUME: [AuditAction; 3] = [
        AuditAction::RegistryTokenIssue,
        AuditAction::LoginFailure,
        AuditAction::LoginLockout,
    ];
}
