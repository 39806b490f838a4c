//! Plain domain types: deploy tokens, scopes, secrets, expiry, namespaces.

pub mod deploy_token;
pub mod expiry;
pub mod namespace;
pub mod scope;
pub mod secret;

pub use deploy_token::{DeployToken, NewDeployToken, ValidationError};
pub use namespace::{Namespace, NamespaceKind};
pub use scope::{DeployTokenScope, ScopeSet};
pub use secret::{SecretDigest, TokenSecret};
