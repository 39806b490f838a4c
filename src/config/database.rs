//! The database: where it is, its connection pool, and the token cache in front of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, Seconds, SettingsError, MEMORY_URL_PREFIX};
use crate::redact::redact_url_password;

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// SQLite file, `postgres://user:pass@host/db`, or `memory://` (see [Durability and
    /// outages](operations.md#durability-and-outages)). Outside `serve` and `migrate`, a SQLite
    /// file that does not exist is refused.
    database_url: String,
    /// Connection pool size (see [Performance](performance.md)).
    database_max_connections: u32,
    /// Time (1 s – 5 m) a request waits for a database connection before it fails with 503, and
    /// that a start waits for the database before it gives up.
    database_acquire_timeout: Seconds,
    /// Deploy tokens (and project paths) a server keeps in memory; `0` turns the cache off.
    token_cache_capacity: usize,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            database_url: "sqlite://regauth.db?mode=rwc".into(),
            database_max_connections: 10,
            database_acquire_timeout: Seconds(5),
            token_cache_capacity: 10_000,
        }
    }
}

#[derive(Clone)]
pub struct DatabaseSettings {
    /// `database_url`; it may hold a password (its `Debug` hides it).
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a database connection (and a start for the database to
    /// answer) before it fails with 503: during an outage requests fail fast, they do not
    /// pile up.
    pub acquire_timeout: Duration,
    /// Deploy tokens (and project paths) a server keeps in memory; 0 turns the cache off.
    pub token_cache_capacity: usize,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("token_cache_capacity", &self.token_cache_capacity)
            .finish()
    }
}

impl Raw {
    pub(super) fn validate(self) -> Result<DatabaseSettings, SettingsError> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres")
            || self.database_url.starts_with(MEMORY_URL_PREFIX))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:, postgres:// (or postgresql://) or memory://",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        let acquire_timeout =
            self.database_acquire_timeout
                .within("database_acquire_timeout", 1, 300, " (5m)")?;
        if self.token_cache_capacity > 10_000_000 {
            return Err(invalid(
                "token_cache_capacity",
                "at most 10000000 (0 turns the cache off)",
            ));
        }
        Ok(DatabaseSettings {
            url: self.database_url,
            max_connections: self.database_max_connections,
            acquire_timeout,
            token_cache_capacity: self.token_cache_capacity,
        })
    }
}
