//! The operations people and registries perform, shared by the CLI and the HTTP routes so
//! that no rule is written twice.

pub mod audit_retention;
pub mod caller;
pub mod ci_credentials;
pub mod deploy_tokens;
pub mod forward_auth;
pub mod health;
pub mod leaks;
pub mod login_guard;
pub mod namespaces;
pub mod new_address_mail;
pub mod notifications;
pub mod password_pool;
pub mod per_thread;
pub mod registry_event_inbox;
pub mod registry_events;
pub mod registry_token;
pub mod restrictions;
pub mod secret_scanning;
pub mod signing_pool;
pub mod token_lifecycle;
pub mod usage;
pub mod users;
pub mod web_sessions;
pub mod workload_identity;
