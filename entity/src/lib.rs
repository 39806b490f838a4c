//! sea-orm entities of regauth. Behaviour lives in the `regauth` crate's store and domain
//! modules; these are the table shapes only.

pub mod audit_event;
pub mod deploy_token;
pub mod expiry_notification;
pub mod login_failure;
pub mod membership;
pub mod namespace;
pub mod namespace_token_policy;
pub mod new_address_mail_subscriber;
pub mod new_address_notice;
pub mod personal_access_token;
pub mod refresh_token;
pub mod registry_event;
pub mod registry_event_address;
pub mod registry_event_inbox;
pub mod registry_event_receipt;
pub mod user;
pub mod user_password;
pub mod web_session;
pub mod workload_credential;
pub mod workload_exchanged_jti;
pub mod workload_identity;
