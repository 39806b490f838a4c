//! Plain domain types: deploy tokens, scopes, secrets, expiry, namespaces, users and roles.

pub mod address_range;
pub mod audit;
pub mod deploy_token;
pub mod expiry;
pub mod login_throttle;
pub mod namespace;
pub mod notice;
pub mod path;
pub mod registry_event;
pub mod repository_pattern;
pub mod restrictions;
pub mod rotation;
pub mod secret;
pub mod text;
pub mod token_format;
pub mod token_lifetime;
pub mod token_scope;
pub mod user;
pub mod workload_identity;

pub use audit::{ActorKind, AuditAction, AuditEvent};
pub use deploy_token::{DeployToken, NewDeployToken, ValidationError};
pub use namespace::{Namespace, NamespaceKind, Visibility};
pub use notice::NoticeWindow;
pub use path::{NamespacePath, PathError};
pub use restrictions::TokenRestrictions;
pub use secret::{SecretDigest, TokenSecret};
pub use token_scope::{DeployTokenScope, ScopeSet};
pub use user::{ApiScope, PersonalAccessToken, Role, User};
