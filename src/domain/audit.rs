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
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Cli => "cli",
            ActorKind::DeployToken => "deploy_token",
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
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::DeployTokenCreate => "deploy_token.create",
            AuditAction::DeployTokenRevoke => "deploy_token.revoke",
            AuditAction::DeployTokenDelete => "deploy_token.delete",
            AuditAction::RegistryTokenIssue => "registry_token.issue",
            AuditAction::CiCredentialsRead => "deploy_token.ci_credentials_read",
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
