//! Who performs a management operation, and from where: the CLI operator or a person through
//! the API. Services take a [`Caller`] so that permission checks and the audit trail are the
//! same for both.

use crate::access::permissions::Principal;
use crate::domain::{ActorKind, User};

#[derive(Debug, Clone)]
pub enum Identity {
    /// The operator at the command line (database access means full control).
    Operator { name: String },
    /// A person through the API, with what their personal access token allows.
    User { user: User, token_may_write: bool },
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub ip_address: Option<String>,
}

impl Caller {
    /// The command-line operator, named after the operating-system user of the process
    /// (`cli:alice`; `cli:uid-1000` when the uid has no name).
    pub fn operator() -> Caller {
        Caller {
            identity: Identity::Operator {
                name: crate::os_user::operator_name(),
            },
            ip_address: None,
        }
    }

    pub fn user(user: User, token_may_write: bool, ip_address: Option<String>) -> Caller {
        Caller {
            identity: Identity::User {
                user,
                token_may_write,
            },
            ip_address,
        }
    }

    /// The caller as the permission rules (`access::permissions`) see it.
    pub fn principal(&self) -> Principal {
        match &self.identity {
            Identity::Operator { .. } => Principal::Operator,
            Identity::User {
                user,
                token_may_write,
            } => Principal::User {
                admin: user.admin,
                blocked: user.blocked,
                token_may_write: *token_may_write,
            },
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match &self.identity {
            Identity::Operator { .. } => None,
            Identity::User { user, .. } => Some(user.id),
        }
    }

    pub fn actor_name(&self) -> &str {
        match &self.identity {
            Identity::Operator { name } => name,
            Identity::User { user, .. } => &user.username,
        }
    }

    pub fn actor_kind(&self) -> ActorKind {
        match &self.identity {
            Identity::Operator { .. } => ActorKind::Cli,
            Identity::User { .. } => ActorKind::User,
        }
    }

    /// The audit record of something this caller did (not to a deploy token).
    pub fn audit(
        &self,
        action: crate::domain::AuditAction,
        namespace_id: Option<i64>,
        details: serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::domain::AuditEvent {
        crate::domain::AuditEvent {
            created_at: now,
            actor_kind: self.actor_kind(),
            actor: self.actor_name().to_owned(),
            action,
            deploy_token_id: None,
            namespace_id,
            ip_address: self.ip_address.clone(),
            details,
        }
    }
}
