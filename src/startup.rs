//! Building and running the HTTP server. [`Application::build`] binds its own listener, so
//! tests start it on port 0 and ask for the port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::jwt::{self, GeneratedKey, KeyRing};
use crate::store::{self, SeaStore, Store};

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub settings: Settings,
}

pub struct Application {
    port: u16,
    server: Server,
    keys: Arc<KeyRing>,
    generated_key: Option<GeneratedKey>,
}

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
        let listener = TcpListener::bind(settings.listen).map_err(|source| StartupError::Listen {
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
        let state = web::Data::new(AppState {
            store: Arc::new(SeaStore::new(db)),
            keys: Arc::clone(&keys),
            settings,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(crate::routes::configure)
        })
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
