//! Access control for registry token requests (which of the requested scopes a deploy token,
//! or an anonymous caller, is granted) and for git and package requests behind a reverse proxy
//! (allow, challenge or refuse).
//!
//! The module is pure and synchronous: no I/O, no clock, no logging. The caller parses the
//! `scope` values of the token request ([`parse_requested_scopes`], PROTOCOL.md §3 and §5),
//! resolves each repository name to a project with one query ([`RepositoryPath::candidate_project_paths`]
//! and [`resolve_project`], DOMAIN.md "Which repositories a token reaches"), then asks
//! [`authorize`] (DOMAIN.md "Scopes → actions") for the grant that goes into the JWT `access`
//! claim (PROTOCOL.md §6). Whatever was dropped along the way is returned to the caller to log.
//! For a proxied git or package request, [`forward::classify`] names the operation and the
//! project or group, and [`authorize_operation`] decides it with the same reach rules.
//!
//! - [`requested_scope`]: the requested-scope grammar (PROTOCOL.md §5) and the request-level rules of §3
//!   (several scopes per value, duplicates merged, malformed scopes dropped).
//! - [`repository`]: registry names and namespace paths (PROTOCOL.md §5 name grammar,
//!   DOMAIN.md "Namespaces" and "Which repositories a token reaches").
//! - [`policy`]: requested → granted (DOMAIN.md "Scopes → actions", PROTOCOL.md §2 and §8).
//! - [`forward`]: which git or package operation a proxied request is, and on what.
//! - [`permissions`]: who may manage deploy tokens (DOMAIN.md "Roles and who may manage tokens").

pub mod forward;
pub mod permissions;
pub mod policy;
pub mod repository;
pub mod requested_scope;

pub use policy::{
    authorize, authorize_anonymous, authorize_operation, may_use_service, Denied, Granted,
    GrantedAccess, Operation, ResolvedScope, ScopeFamily, Service, Target, TokenAccess, TokenOwner,
    Verdict,
};
pub use repository::{
    resolve_project, NamespacePath, PathError, RepositoryPath, MAX_IMAGE_DEPTH, MAX_PATH_LEN,
};
pub use requested_scope::{
    parse_requested_scopes, Action, ParsedScopes, RequestedScope, ScopeParseError,
    MAX_ACTIONS_PER_SCOPE, MAX_SCOPES_PER_REQUEST, MAX_SCOPE_LEN,
};
