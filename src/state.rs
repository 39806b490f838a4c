//! What every request handler can reach. Built once by `startup::Application::build` and shared
//! by the actix workers; routes depend on this module, never on `startup`.

use std::sync::Arc;

use crate::ci_secret::CiSecretKey;
use crate::config::Settings;
use crate::domain::token_format::TokenFormats;
use crate::jwt::SharedKeyRing;
use crate::metrics::Metrics;
use crate::service::login_guard::LoginGuard;
use crate::service::usage::UsageRecorder;
use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The signing keys; `SIGHUP` replaces them (`keys.current()` for a request).
    pub keys: Arc<SharedKeyRing>,
    /// Seals and opens the secrets of `gitlab-deploy-token` tokens.
    pub ci_key: Arc<CiSecretKey>,
    pub settings: Settings,
    pub usage: UsageRecorder,
    pub metrics: Arc<Metrics>,
    /// Brute-force protection around every credential check.
    pub logins: LoginGuard,
    /// The prefixes and format of the secrets regauth issues (checked before any lookup).
    pub token_formats: TokenFormats,
    /// GitHub's secret-scanning keys (a file, or a URL fetched and kept).
    pub github_keys: crate::service::secret_scanning::GitHubKeySource,
    /// Secret-scanning reports admitted per minute.
    pub report_limiter: crate::service::leaks::ReportLimiter,
    /// The trusted OIDC issuers and their cached keys (workload identity federation).
    pub oidc: Arc<crate::oidc::Verifier>,
    /// Writes the registry's notifications to the inbox and has them recorded.
    pub registry_event_inbox: crate::service::registry_event_inbox::EventInbox,
}
