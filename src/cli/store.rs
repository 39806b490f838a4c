//! Opening the database for a command (the same settings as `serve`); everything else goes
//! through the services.

use std::sync::Arc;

use crate::config::Settings;
use crate::startup::StartupError;
use crate::store::{self, SeaStore, Store};

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let db = store::connect_with(
        &settings.database_url,
        2,
        settings.database_acquire_timeout,
        true,
    )
    .await
    .map_err(|source| StartupError::database(settings, source))?;
    Ok(Arc::new(SeaStore::new(db)))
}
