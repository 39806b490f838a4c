//! Building and running the HTTP server. [`Application::build`] binds its own listener, so
//! tests start it on port 0 and ask for the port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::{header, KeepAlive};
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use sea_orm::DatabaseConnection;
use tracing_actix_web::TracingLogger;

use crate::ci_secret::CiSecretKey;
use crate::config::{ConnectionLimits, Settings};
use crate::jwt::{self, GeneratedKey, KeyRing, KeyRingChange, SharedKeyRing};
use crate::metrics::Metrics;
use crate::routes::observe::RequestSpan;
use crate::service::login_guard::LoginGuard;
use crate::service::usage::UsageRecorder;
use crate::state::AppState;
use crate::store::{self, SeaStore, Store};
use crate::tls::ReloadingCertificate;

pub struct Application {
    port: u16,
    server: Server,
    /// The separate `/metrics` server, when `metrics_listen` is set.
    metrics: Option<(u16, Server)>,
    /// The HTTPS certificate, re-read on SIGHUP.
    certificate: Option<Arc<ReloadingCertificate>>,
    /// The signing keys, re-read on SIGHUP.
    keys: Arc<SharedKeyRing>,
    /// SIGHUP, listened for from the start: its default action would end the process.
    hangups: Option<tokio::signal::unix::Signal>,
    settings: Settings,
    generated_key: Option<GeneratedKey>,
    usage_writer: tokio::task::JoinHandle<()>,
    db: DatabaseConnection,
    store: SeaStore,
}

/// How often recorded token use is written to the database.
const USAGE_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {url} (database_url{hint}): {source}")]
    Database {
        /// Without its password.
        url: String,
        hint: &'static str,
        source: store::StoreError,
    },
    #[error("signing keys in {dir} (keys_dir): {message}")]
    Keys { dir: String, message: String },
    #[error("{0}")]
    CiSecretKey(#[from] crate::ci_secret::CiSecretError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

fn bind(address: std::net::SocketAddr) -> Result<(TcpListener, u16), StartupError> {
    let listen_error = |source| StartupError::Listen {
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let port = listener.local_addr().map_err(listen_error)?.port();
    Ok((listener, port))
}

/// actix-web counts connections per worker; the settings count them per process.
fn per_worker(total: usize, workers: usize) -> usize {
    total.div_ceil(workers.max(1)).max(1)
}

fn keep_alive(limits: &ConnectionLimits) -> KeepAlive {
    if limits.keep_alive.is_zero() {
        KeepAlive::Disabled
    } else {
        KeepAlive::Timeout(limits.keep_alive)
    }
}

/// The connection limits of one server (see docs/security.md). A macro: `HttpServer`'s
/// type parameters carry bounds that would have to be repeated in full for a function.
macro_rules! limited {
    ($server:expr, $limits:expr, $workers:expr, $shutdown_timeout:expr) => {
        $server
            .workers($workers)
            .client_request_timeout($limits.request_head_timeout)
            .tls_handshake_timeout($limits.tls_handshake_timeout)
            .client_disconnect_timeout($limits.client_disconnect_timeout)
            .keep_alive(keep_alive($limits))
            .max_connections(per_worker($limits.max_connections, $workers))
            .max_connection_rate(per_worker($limits.max_connection_rate, $workers))
            // SIGTERM/SIGINT stop accepting at once; in-flight requests get this long to finish.
            .shutdown_timeout($shutdown_timeout.as_secs())
    };
}

impl StartupError {
    pub fn database(settings: &Settings, source: store::StoreError) -> StartupError {
        let hint = match source {
            store::StoreError::Unavailable(ref detail) if detail.contains("timed out") => {
                ", waited database_acquire_timeout"
            }
            _ => "",
        };
        StartupError::Database {
            url: crate::redact::redact_url_password(&settings.database.url),
            hint,
            source,
        }
    }
}

/// Loads the signing keys from the configured directory, creating one on first start.
pub fn load_keys(settings: &Settings) -> Result<(KeyRing, Option<GeneratedKey>), StartupError> {
    jwt::load_or_generate(
        &settings.signing.keys_dir,
        settings.signing.key_algorithm,
        &settings.signing.issuer,
    )
    .map(|(ring, generated)| {
        (
            ring.with_token_header(settings.signing.token_header),
            generated,
        )
    })
    .map_err(|error| StartupError::Keys {
        dir: settings.signing.keys_dir.display().to_string(),
        message: error.to_string(),
    })
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let db = store::connect_with(
            &settings.database.url,
            settings.database.max_connections,
            settings.database.acquire_timeout,
            true,
        )
        .await
        .map_err(|source| StartupError::database(&settings, source))?;
        // Before anything slow: from here on SIGHUP reloads, it never kills the process.
        let hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP: keys and certificates will not be reloaded");
                None
            }
        };
        let (keys, generated_key) = load_keys(&settings)?;
        match jwt::open_up_key_dir(&settings.signing.keys_dir) {
            Ok(true) => tracing::info!(
                dir = %settings.signing.keys_dir.display(),
                "made the keys directory readable by other users (0755; private keys stay 0600): a registry running as its own user reads bundle.crt and jwks.json there"
            ),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot check the mode of the keys directory"),
        }
        let keys = Arc::new(SharedKeyRing::new(keys));
        let (ci_key, ci_key_generated) =
            CiSecretKey::load_or_generate(&settings.signing.ci_secret_key_file())?;
        if ci_key_generated {
            tracing::info!(
                file = %settings.signing.ci_secret_key_file().display(),
                key_id = ci_key.id(),
                "created the CI secret key"
            );
        }
        let ci_key = Arc::new(ci_key);
        let (listener, port) = bind(settings.server.listen)?;
        let metrics_listener = settings.server.metrics_listen.map(bind).transpose()?;
        let certificate = match &settings.server.tls {
            Some(files) => Some(Arc::new(ReloadingCertificate::load(files).await?)),
            None => None,
        };
        let sea_store = SeaStore::with_cache(
            db.clone(),
            &settings.database.url,
            settings.database.token_cache_capacity,
        )
        .await
        .map_err(|source| StartupError::database(&settings, source))?;
        let store: Arc<dyn Store> = Arc::new(sea_store.clone());
        let (usage, usage_writer) = UsageRecorder::start(Arc::clone(&store), USAGE_FLUSH_INTERVAL);
        crate::service::audit_retention::start(
            Arc::clone(&store),
            settings.housekeeping.audit_retention_days,
        );
        crate::service::registry_token::start_refresh_token_sweep(
            Arc::clone(&store),
            crate::service::registry_token::REFRESH_TOKEN_SWEEP_EVERY,
        );
        crate::service::workload_identity::start_sweep(
            Arc::clone(&store),
            crate::service::workload_identity::SWEEP_EVERY,
        );
        // Detached: it sleeps until the daily run and ends with the runtime.
        crate::service::notifications::schedule::start(
            Arc::clone(&store),
            settings.housekeeping.smtp.as_ref(),
            settings.housekeeping.notify_at,
        );
        let metrics = Arc::new(Metrics::new(
            &settings.registry.service,
            &settings.registry.virtual_service,
        ));
        let logins = LoginGuard::start(
            Arc::clone(&store),
            settings.login.throttle,
            Arc::clone(&metrics),
            usage.clone(),
        );
        // Issuers are not contacted here: an unreachable one must not stop the start.
        let oidc = Arc::new(crate::oidc::Verifier::new(
            &settings.oidc_issuers,
            Some(Arc::clone(&metrics)),
        ));
        // Also with the receiver off: envelopes a server left in the inbox before the setting
        // was removed are recorded all the same.
        let registry_event_inbox = crate::service::registry_event_inbox::EventInbox::start(
            Arc::clone(&store),
            Arc::clone(&metrics),
            settings.housekeeping.smtp.clone(),
            settings.registry.new_address_days,
            db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite,
        );
        let state = web::Data::new(AppState {
            registry_event_inbox,
            oidc,
            store,
            keys: Arc::clone(&keys),
            ci_key,
            settings: settings.clone(),
            usage,
            metrics,
            logins,
            token_formats: settings.tokens.formats(),
            report_limiter: crate::service::leaks::ReportLimiter::new(
                crate::service::leaks::REPORTS_PER_MINUTE,
            ),
            github_keys: crate::service::secret_scanning::GitHubKeySource::new(
                settings
                    .leak_reports
                    .github_secret_scanning_keys_file
                    .clone(),
                settings
                    .leak_reports
                    .github_secret_scanning_keys_url
                    .clone(),
            ),
        });
        let workers = if settings.server.workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            settings.server.workers
        };
        let metrics_elsewhere = metrics_listener.is_some();
        let main_state = state.clone();
        let server = limited!(
            HttpServer::new(move || {
                App::new()
                    // Registry tokens, refresh tokens, deploy-token secrets and CI credentials
                    // travel in answers: none may be kept by a cache. The few answers meant to
                    // be cached (stylesheet, script, JWKS) say so themselves.
                    .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                    .wrap(from_fn(crate::routes::body::close_after_unread_body))
                    .wrap(from_fn(crate::routes::observe::observe))
                    .wrap(TracingLogger::<RequestSpan>::new())
                    .app_data(main_state.clone())
                    .configure(crate::routes::configure)
                    .configure(|config| {
                        if !metrics_elsewhere {
                            crate::routes::configure_metrics(config);
                        }
                    })
            }),
            &settings.limits,
            workers,
            settings.server.shutdown_timeout
        );
        let listen_error = |source| StartupError::Listen {
            address: format!("port {port}"),
            source,
        };
        let server = match &certificate {
            Some(certificate) => server
                .listen_rustls_0_23(
                    listener,
                    crate::tls::server_config(Arc::clone(certificate))?,
                )
                .map_err(listen_error)?,
            None => server.listen(listener).map_err(listen_error)?,
        }
        .run();
        let metrics = match metrics_listener {
            Some((listener, metrics_port)) => {
                let server = limited!(
                    HttpServer::new(move || {
                        App::new()
                            .wrap(from_fn(crate::routes::body::close_after_unread_body))
                            .wrap(from_fn(crate::routes::observe::observe))
                            .wrap(TracingLogger::<RequestSpan>::new())
                            .app_data(state.clone())
                            .configure(crate::routes::configure_metrics)
                    }),
                    &settings.limits,
                    1,
                    settings.server.shutdown_timeout
                )
                .listen(listener)
                .map_err(|source| StartupError::Listen {
                    address: format!("port {metrics_port}"),
                    source,
                })?
                .run();
                Some((metrics_port, server))
            }
            None => None,
        };
        Ok(Application {
            port,
            server,
            metrics,
            certificate,
            keys,
            hangups,
            settings,
            generated_key,
            usage_writer,
            db,
            store: sea_store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` listener, when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The signing keys in use now.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.current()
    }

    /// The key created by this start, when the keys directory was empty.
    pub fn generated_key(&self) -> Option<&GeneratedKey> {
        self.generated_key.as_ref()
    }

    /// The application's own store, sharing its cache: a write through it is seen by the next
    /// token request at once, as one through the API is.
    pub fn store(&self) -> SeaStore {
        self.store.clone()
    }

    /// The application's database pool (tests use it to simulate an outage).
    pub fn database(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// Serves until stopped (SIGTERM / SIGINT), then writes the recorded token use that is
    /// still in memory and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Some(hangups) = self.hangups {
            reload_on_sighup(
                hangups,
                self.certificate,
                Arc::clone(&self.keys),
                self.settings,
            );
        }
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        // The server's workers held the last recorders; with them gone the writer flushes
        // and ends. Bounded, so that a dead database cannot hold the stop forever.
        let flushed =
            tokio::time::timeout(std::time::Duration::from_secs(10), self.usage_writer).await;
        if flushed.is_err() {
            tracing::warn!("gave up writing recorded token use after 10 s");
        }
        // Closing the pool lets SQLite checkpoint its WAL and PostgreSQL end sessions cleanly.
        if let Err(error) = self.db.close().await {
            tracing::warn!(%error, "closing the database failed");
        }
        tracing::info!("stopped");
        result
    }
}

/// On every SIGHUP, for as long as the process runs: re-reads the signing keys (publishing
/// new ones, signing with the newest active one) and the HTTPS certificate and key, and logs
/// what changed. Whatever does not load is logged and the old one kept.
fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    certificate: Option<Arc<ReloadingCertificate>>,
    keys: Arc<SharedKeyRing>,
    settings: Settings,
) {
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let settings = settings.clone();
            let keys = Arc::clone(&keys);
            // Key files are read and RSA keys parsed off the executor.
            let reloaded = tokio::task::spawn_blocking(move || reload_keys(&settings, &keys)).await;
            match reloaded {
                Ok(Ok(change)) => tracing::info!("SIGHUP: {change}"),
                Ok(Err(error)) => tracing::error!(
                    %error,
                    "SIGHUP: signing keys not reloaded, keeping the old ones"
                ),
                Err(error) => tracing::error!(%error, "SIGHUP: the key reload failed"),
            }
            if let Some(certificate) = &certificate {
                match certificate.reload().await {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "SIGHUP: TLS certificate not reloaded, keeping the old one")
                    }
                }
            }
        }
    });
}

/// Loads the key directory again and puts it in use; rewrites `bundle.crt` and `jwks.json`
/// for the registries (a read-only key directory keeps its files).
fn reload_keys(settings: &Settings, keys: &SharedKeyRing) -> Result<KeyRingChange, StartupError> {
    let ring = KeyRing::load_dir(&settings.signing.keys_dir)
        .map(|ring| ring.with_token_header(settings.signing.token_header))
        .map_err(|error| StartupError::Keys {
            dir: settings.signing.keys_dir.display().to_string(),
            message: error.to_string(),
        })?;
    if let Err(error) = jwt::write_certificate_bundle(&settings.signing.keys_dir) {
        tracing::warn!(%error, "SIGHUP: cannot rewrite bundle.crt and jwks.json");
    }
    let before = keys.replace(ring);
    Ok(KeyRingChange::between(&before, &keys.current()))
}
