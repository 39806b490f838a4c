//! `regauth migrate`: brings the database schema up to date.

use crate::config::Settings;
use crate::redact::redact_url_password;
use crate::startup::StartupError;
use crate::store;

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    store::connect_with(
        &settings.database.url,
        1,
        settings.database.acquire_timeout,
        true,
    )
    .await
    .map_err(|source| StartupError::database(settings, source))?;
    println!(
        "database {} is up to date",
        redact_url_password(&settings.database.url)
    );
    Ok(())
}
