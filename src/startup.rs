//! Building and running the HTTP server. [`Application::build`] binds its own listener, so
//! tests start it on port 0 and ask for the port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use sea_orm::DatabaseConnection;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::jwt::{self, GeneratedKey, KeyRing};
use crate::metrics::Metrics;
use crate::service::usage::UsageRecorder;
use crate::store::{self, SeaStore, Store};

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
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
    store: SeaStore,
}

/// How often recorded token use is written to the database.
const USAGE_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] store::StoreError),
    #[error("signing keys in {dir}: {message}")]
    Keys { dir: String, message: String },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// Loads the signing keys from the configured directory, creating one on first start.
pub fn load_keys(settings: &Settings) -> Result<(KeyRing, Option<GeneratedKey>), StartupError> {
    jwt::load_or_generate(&settings.keys_dir, settings.key_algorithm, &settings.issuer).map_err(
        |error| StartupError::Keys {
            dir: settings.keys_dir.display().to_string(),
            message: error.to_string(),
        },
    )
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let db = store::connect(
            &settings.database_url,
            settings.database_max_connections,
            true,
        )
        .await?;
        let (keys, generated_key) = load_keys(&settings)?;
        let keys = Arc::new(keys);
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
        let sea_store = SeaStore::with_cache(
            db.clone(),
            &settings.database_url,
            settings.token_cache_capacity,
        )
        .await?;
        let store: Arc<dyn Store> = Arc::new(sea_store.clone());
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
            settings: settings.clone(),
            usage,
            metrics: Arc::new(Metrics::new(
                &settings.registry_service,
                &settings.virtual_registry_service,
            )),
        });
        let workers = if settings.workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            settings.workers
        };
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::routes::observe::observe))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(crate::routes::configure)
        })
        .workers(workers)
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
            store: sea_store,
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
