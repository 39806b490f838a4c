//! Opening the database: SQLite files, `memory://` copies, PostgreSQL; migrations run once
//! and a schema newer than the binary refused; `vacuum_into` for backups.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::config::MEMORY_URL_PREFIX;
use crate::store::StoreError;

/// The SQLite file behind a `sqlite:` URL, if it is one (and not in memory).
pub(super) fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:" && !url.contains("mode=memory")).then_some(path)
}

/// Opens the database (creating a SQLite file when asked by `mode=rwc`) and, when `migrate`,
/// brings the schema up to date.
pub async fn connect(
    url: &str,
    max_connections: u32,
    migrate: bool,
) -> Result<DatabaseConnection, StoreError> {
    connect_with(url, max_connections, Duration::from_secs(10), migrate).await
}

/// [`connect`], with `acquire_timeout` bounding both the first connection and every later
/// wait for a pooled one (`database_acquire_timeout`).
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    migrate: bool,
) -> Result<DatabaseConnection, StoreError> {
    if let Some(seed) = url.strip_prefix(MEMORY_URL_PREFIX) {
        return connect_memory(seed).await;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        // sqlx pings before every query by default; that doubles the cost of a token lookup
        // (PERFORMANCE.md). A broken connection surfaces as a query error instead.
        .test_before_acquire(false)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // Reads straight from the page cache: the token lookup is read-mostly.
                .pragma("mmap_size", "268435456")
                // Token requests run the same few statements: keep them all prepared.
                .statement_cache_capacity(256)
        });
    }
    let db = Database::connect(options).await?;
    if migrate {
        refuse_newer_schema(&db).await?;
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            migrate_postgres_exclusively(url).await?;
        } else {
            migrate_step_by_step(&db).await?;
        }
    }
    Ok(db)
}

/// Applies the pending migrations one at a time, logging each with the time it took: a long
/// migration on a big database shows what it is doing, not a silent start.
pub(super) async fn migrate_step_by_step(db: &DatabaseConnection) -> Result<(), StoreError> {
    let pending: Vec<String> = Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    if pending.is_empty() {
        tracing::info!("database schema up to date: no migration to apply");
        return Ok(());
    }
    let total = pending.len();
    let all = std::time::Instant::now();
    for (step, name) in pending.iter().enumerate() {
        let step = step + 1;
        tracing::info!("migration {step} of {total}: {name}");
        let started = std::time::Instant::now();
        Migrator::up(db, Some(1)).await?;
        let elapsed_ms = started.elapsed().as_millis();
        tracing::info!(
            elapsed_ms,
            "migration {step} of {total} applied in {elapsed_ms} ms: {name}"
        );
    }
    let elapsed_ms = all.elapsed().as_millis();
    tracing::info!(
        elapsed_ms,
        "{total} migration(s) applied in {elapsed_ms} ms"
    );
    Ok(())
}

/// The key of the PostgreSQL advisory lock held while migrating ("regauth" in ASCII).
pub(super) const MIGRATION_LOCK_KEY: i64 = 0x0072_6567_6175_7468;

/// Brings a PostgreSQL schema up to date while holding an advisory lock, so that replicas
/// started together never run the same migration twice (two concurrent `CREATE TABLE`s make
/// one of them fail): the first replica migrates, the others wait for the lock, then find
/// nothing pending. The lock belongs to a connection of its own (a pool of one), held for
/// the whole run and released on unlock or when that connection closes, even if this process
/// dies half-way.
pub(super) async fn migrate_postgres_exclusively(url: &str) -> Result<(), StoreError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let lock_db = Database::connect(options).await?;
    let backend = lock_db.get_database_backend();
    tracing::info!("waiting for the migration lock");
    lock_db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_lock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
    let migrated = migrate_step_by_step(&lock_db).await;
    let unlocked = lock_db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_unlock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await;
    lock_db.close().await.ok();
    migrated?;
    unlocked?;
    Ok(())
}

/// A database migrated by a newer regauth holds migrations this binary does not know: running
/// on it could misread rows, so the start stops (a downgrade needs the backup taken before the
/// upgrade).
pub(super) async fn refuse_newer_schema(db: &DatabaseConnection) -> Result<(), StoreError> {
    let statement = Statement::from_string(
        db.get_database_backend(),
        "SELECT version FROM seaql_migrations",
    );
    // No table yet: a new database.
    let Ok(rows) = db.query_all_raw(statement).await else {
        return Ok(());
    };
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    let mut unknown = Vec::new();
    for row in rows {
        let version: String = row.try_get("", "version")?;
        if !known.contains(&version) {
            unknown.push(version);
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(StoreError::SchemaTooNew(unknown.join(", ")))
    }
}

/// Writes a consistent copy of a SQLite database to `target` (which must not exist) while
/// others keep reading and writing: `VACUUM INTO` copies one read snapshot.
pub async fn vacuum_into(
    db: &DatabaseConnection,
    target: &std::path::Path,
) -> Result<(), StoreError> {
    let path = target.to_string_lossy().replace('\'', "''");
    db.execute_unprepared(&format!("VACUUM INTO '{path}'"))
        .await?;
    Ok(())
}

/// What a path keeps verbatim in a `file:` URI.
pub(super) const URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_');

/// Tables copied from a seed database into `memory://`, parents first.
pub(super) const SEED_TABLES: [&str; 21] = [
    "namespaces",
    "deploy_tokens",
    "users",
    "memberships",
    "personal_access_tokens",
    "refresh_tokens",
    "audit_events",
    "expiry_notifications",
    "login_failures",
    "user_passwords",
    "web_sessions",
    "workload_identities",
    "workload_credentials",
    "workload_exchanged_jtis",
    "registry_events",
    "registry_event_receipts",
    "registry_event_addresses",
    "registry_event_inbox",
    "new_address_mail_subscribers",
    "new_address_notices",
    "namespace_token_policies",
];

/// One in-memory SQLite connection, kept for the life of the process (closing it would lose
/// the data), migrated, and filled from `seed` when a path is given.
pub(super) async fn connect_memory(seed: &str) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new("sqlite::memory:".to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .sqlx_logging(false);
    options.map_sqlx_sqlite_opts(|opts| opts.foreign_keys(true).statement_cache_capacity(256));
    let db = Database::connect(options).await?;
    migrate_step_by_step(&db).await?;
    if seed.is_empty() {
        return Ok(db);
    }
    let backend = db.get_database_backend();
    // As a read-only URI: a plain name would inherit the in-memory flag of the connection and
    // attach an empty database instead of the file.
    let uri = format!(
        "file:{}?mode=ro",
        percent_encoding::utf8_percent_encode(seed, URI_PATH)
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "ATTACH DATABASE ? AS seed",
        [uri.into()],
    ))
    .await
    .map_err(|error| StoreError::Seed(format!("cannot read {seed}: {error}")))?;
    let versions = |schema: &str| format!("SELECT COUNT(*) AS n FROM {schema}.seaql_migrations");
    let count = |row: Option<sea_orm::QueryResult>| -> Result<i64, StoreError> {
        Ok(row
            .map(|row| row.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0))
    };
    let mine = count(
        db.query_one_raw(Statement::from_string(backend, versions("main")))
            .await?,
    )?;
    let theirs = count(
        db.query_one_raw(Statement::from_string(backend, versions("seed")))
            .await
            .map_err(|error| {
                StoreError::Seed(format!("{seed} is not a regauth SQLite database ({error})"))
            })?,
    )?;
    if mine != theirs {
        return Err(StoreError::Seed(format!(
            "{seed} is at another schema version: run `regauth migrate` on it first"
        )));
    }
    db.execute_unprepared("DELETE FROM main.regauth_changes")
        .await?;
    for table in SEED_TABLES
        .iter()
        .chain(std::iter::once(&"regauth_changes"))
    {
        db.execute_unprepared(&format!(
            "INSERT INTO main.{table} SELECT * FROM seed.{table}"
        ))
        .await?;
    }
    db.execute_unprepared("DETACH DATABASE seed").await?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `memory://PATH` copies the tables in `SEED_TABLES`: a table the migrations add and the
    /// list forgets would be silently empty there. Every table of the migrated schema is in
    /// the list (or is one of the few kept apart on purpose), and nothing else.
    #[tokio::test]
    async fn the_memory_seed_copies_every_table_of_the_schema() {
        let db = connect("memory://", 1, true).await.unwrap();
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            ))
            .await
            .unwrap();
        let mut schema: Vec<String> = rows
            .iter()
            .map(|row| row.try_get::<String>("", "name").unwrap())
            // The migrations' own bookkeeping, SQLite's, and the change counter (copied
            // separately, after the tables).
            .filter(|name| {
                !matches!(
                    name.as_str(),
                    "seaql_migrations" | "sqlite_sequence" | "regauth_changes"
                )
            })
            .collect();
        schema.sort();
        let mut seeded: Vec<String> = SEED_TABLES.iter().map(|name| name.to_string()).collect();
        seeded.sort();
        assert_eq!(schema, seeded, "SEED_TABLES must list every table");
    }
}
