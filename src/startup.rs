//! Building and running the HTTP server. [`Application::build`] binds its own listener, so
//! tests start it on port 0 and ask for the port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use sea_orm::DatabaseConnection;
use tracing_actix_web::TracingLogger;

use crate::ci_secret::CiSecretKey;
use crate::config::Settings;
use crate::jwt::{self, GeneratedKey, KeyRing};
use crate::metrics::Metrics;
use crate::service::usage::UsageRecorder;
use crate::store::{self, SeaStore, Store};

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    /// Seals and opens the secrets of `gitlab-deploy-token` tokens.
    pub ci_key: Arc<CiSecretKey>,
    pub settings: Settings,
    pub usage: UsageRecorder,
    pub metrics: Arc<Metrics>,
}

pub struct Application {
    port: u16,
    server: Server,
    keys: Arc<KeyRing>,
    generated_key: Option<GeneratedKey>,
    usage_writer: tokio::task::JoinHandle<()>,
    db: DatabaseConnection,
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
            url: crate::config::redact_url_password(&settings.database_url),
            hint,
            source,
        }
    }
}

/// Loads the signing keys from the configured directory, creating one on first start.
pub fn load_keys(settings: &Settings) -> Result<(KeyRing, Option<GeneratedKey>), StartupError> {
    jwt::load_or_generate(&settings.keys_dir, settings.key_algorithm, &settings.issuer)
        .map(|(ring, generated)| (ring.with_token_header(settings.token_header), generated))
        .map_err(|error| StartupError::Keys {
            dir: settings.keys_dir.display().to_string(),
            message: error.to_string(),
        })
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let db = store::connect_with(
            &settings.database_url,
            settings.database_max_connections,
            settings.database_acquire_timeout,
            true,
        )
        .await
        .map_err(|source| StartupError::database(&settings, source))?;
        let (keys, generated_key) = load_keys(&settings)?;
        let keys = Arc::new(keys);
        let (ci_key, ci_key_generated) =
            CiSecretKey::load_or_generate(&settings.ci_secret_key_file())?;
        if ci_key_generated {
            tracing::info!(
                file = %settings.ci_secret_key_file().display(),
                key_id = ci_key.id(),
                "created the CI secret key"
            );
        }
        let ci_key = Arc::new(ci_key);
        let listener =
            TcpListener::bind(settings.listen).map_err(|source| StartupError::Listen {
                address: settings.listen.to_string(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                address: settings.listen.to_string(),
                source,
            })?
            .port();
        let store: Arc<dyn Store> = Arc::new(SeaStore::new(db.clone()));
        let (usage, usage_writer) = UsageRecorder::start(
            Arc::clone(&store),
            USAGE_FLUSH_INTERVAL,
            settings.audit_retention_days,
        );
        // Detached: it sleeps until the daily run and ends with the runtime.
        crate::service::notifications::schedule::start(
            Arc::clone(&store),
            settings.smtp.as_ref(),
            settings.notify_at,
        );
        let state = web::Data::new(AppState {
            store,
            keys: Arc::clone(&keys),
            ci_key,
            settings: settings.clone(),
            usage,
            metrics: Arc::new(Metrics::new()),
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::routes::observe::observe))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(crate::routes::configure)
        })
        // SIGTERM/SIGINT stop accepting at once; in-flight requests get this long to finish.
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .listen(listener)
        .map_err(|source| StartupError::Listen {
            address: format!("port {port}"),
            source,
        })?
        .run();
        Ok(Application {
            port,
            server,
            keys,
            generated_key,
            usage_writer,
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The key created by this start, when the keys directory was empty.
    pub fn generated_key(&self) -> Option<&GeneratedKey> {
        self.generated_key.as_ref()
    }

    /// The application's database pool (tests use it to simulate an outage).
    pub fn database(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// Serves until stopped (SIGTERM / SIGINT), then writes the recorded token use that is
    /// still in memory and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
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
