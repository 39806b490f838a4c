//! What every request handler can reach. Built once by `startup::Application::build` and shared
//! by the actix workers; routes depend on this module, never on `startup`.

use std::sync::Arc;

use crate::ci_secret::CiSecretKey;
use crate::config::Settings;
use crate::jwt::KeyRing;
use crate::metrics::Metrics;
use crate::service::login_guard::LoginGuard;
use crate::service::usage::UsageRecorder;
use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    /// Seals and opens the secrets of `gitlab-deploy-token` tokens.
    pub ci_key: Arc<CiSecretKey>,
    pub settings: Settings,
    pub usage: UsageRecorder,
    pub metrics: Arc<Metrics>,
    /// Brute-force protection around every credential check.
    pub logins: LoginGuard,
    /// The trusted OIDC issuers and their cached keys (workload identity federation).
    pub oidc: Arc<crate::oidc::Verifier>,
}
