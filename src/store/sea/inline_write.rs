//! The registry events inbox's insert, on SQLite, through the calling thread's own
//! connection. The registry sends one event at a time and waits for each answer, so the
//! receiver's latency is the registry's throughput; through the pool, each statement is a
//! hand-off to the connection's worker thread and back, and under a burst (twenty clients and
//! the registry on the same cores) each hand-off waits for a core: milliseconds per envelope
//! where the insert itself takes tens of microseconds.
//!
//! It never waits on the request thread: no busy timeout (a database another writer holds
//! answers "busy" at once, and the caller takes the pool instead), no checkpoint (this
//! connection leaves the WAL to the pool's connections), and `synchronous = NORMAL` as on the
//! pool's connections, so a commit is a write to the WAL and no `fsync`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

thread_local! {
    /// This thread's connections, by database path (tests run several servers in a process).
    static WRITERS: RefCell<HashMap<String, Writer>> = RefCell::new(HashMap::new());
}

/// How long a thread writes through the pool after its connection could not be opened, before
/// it tries again (an open is file system work on the request thread).
const RETRY_OPEN_AFTER: Duration = Duration::from_secs(10);

enum Writer {
    Open(rusqlite::Connection),
    FailedAt(Instant),
}

fn open(path: &str) -> Result<rusqlite::Connection, rusqlite::Error> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::ZERO)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(connection)
}

/// The time as the pool writes it (sqlx's text form of a `DateTime<Utc>`), so that both
/// kinds of rows compare and read alike.
fn stored_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Writes an envelope to the inbox of the SQLite file at `path`: `Some(id)`, or `None` when
/// the database is busy with another writer (or this thread's connection failed, and is
/// dropped): the caller then writes through the pool.
pub(super) fn try_enqueue(path: &str, envelope: &str, received_at: DateTime<Utc>) -> Option<i64> {
    WRITERS.with(|writers| {
        let mut writers = writers.borrow_mut();
        let reopen = match writers.get(path) {
            Some(Writer::Open(_)) => false,
            Some(Writer::FailedAt(at)) => at.elapsed() >= RETRY_OPEN_AFTER,
            None => true,
        };
        if reopen {
            let writer = open(path).map_or_else(
                |error| {
                    tracing::debug!(%error, "cannot open a connection for inline inbox writes");
                    Writer::FailedAt(Instant::now())
                },
                Writer::Open,
            );
            writers.insert(path.to_owned(), writer);
        }
        let Some(Writer::Open(connection)) = writers.get_mut(path) else {
            return None;
        };
        let inserted = connection
            .prepare_cached(
                "INSERT INTO registry_event_inbox (received_at, envelope) VALUES (?1, ?2)",
            )
            .and_then(|mut insert| insert.insert((stored_time(received_at), envelope)));
        match inserted {
            Ok(id) => Some(id),
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if matches!(
                    failure.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                None
            }
            Err(error) => {
                tracing::debug!(%error, "inline inbox write failed; written through the pool");
                writers.insert(path.to_owned(), Writer::FailedAt(Instant::now()));
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::registry_event_inbox;
    use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

    /// An envelope written here reads back through sea-orm exactly as one the pool wrote,
    /// time included (the sweep compares the stored times).
    #[tokio::test]
    async fn an_inline_row_is_stored_as_the_pool_stores_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regauth.db");
        let path = path.to_str().unwrap();
        let db = super::super::connection::connect(&format!("sqlite://{path}?mode=rwc"), 1, true)
            .await
            .unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let inline = try_enqueue(path, "{\"events\":[]}", at).unwrap();
        let pooled = registry_event_inbox::ActiveModel {
            received_at: Set(at),
            envelope: Set("{\"events\":[]}".to_owned()),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let rows = registry_event_inbox::Entity::find().all(&db).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, inline);
        assert_eq!(rows[0].received_at, at);
        assert_eq!(rows[0].envelope, rows[1].envelope);
        assert_eq!(rows[1].id, pooled.id);
        let texts = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "SELECT received_at FROM registry_event_inbox ORDER BY id",
            ))
            .await
            .unwrap();
        let texts: Vec<String> = texts
            .iter()
            .map(|row| row.try_get::<String>("", "received_at").unwrap())
            .collect();
        assert_eq!(texts[0], texts[1]);
    }
}
