//! What a token request reads, kept in memory: deploy tokens by the SHA-256 digest of their
//! secret (never the secret), and whether a namespace path is a project. Exactness comes
//! first: before every use the cache asks whether the database changed since it was filled,
//! and empties itself if it did or if it cannot tell.
//!
//! "Changed" is the `regauth_changes` counter, bumped by database triggers in the writing
//! transaction whoever writes (this server, another replica, the CLI, SQL by hand), plus a
//! counter of this process's own writes:
//! - SQLite: `PRAGMA data_version` on a dedicated connection per thread (a few µs, no I/O: it
//!   moves whenever another connection commits); only when it moved is the counter read. One
//!   connection per thread, not one behind a lock: a worker preempted while holding a shared
//!   lock across the pragma's system calls stalled the other workers for a whole time slice
//!   (p99 ×10 under an open-loop load on two cores).
//! - PostgreSQL: a background task reads the counter every 250 ms; the cache is trusted only
//!   while the last successful read started less than 750 ms ago, so a change made on another
//!   replica is seen within 1 s, and a database that stops answering disables the cache.
//!   Revoking or deleting a token waits that long before it returns (`SeaStore::settle`), so
//!   once the API or the CLI has answered, no replica serves the token any more.
//! - `memory://`: nobody else can write; this process's writes are the only changes.
//!
//! Expiry is not cached state: callers check it against the clock at every use.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::domain::workload_identity::WorkloadIdentity;
use crate::domain::DeployToken;
use crate::store::TokenCacheLookups;

tokio::task_local! {
    /// The database's state as first read within the current [`one_view`].
    static REQUEST_VIEW: Cell<Option<Generation>>;
}

/// Runs `work` with one view of the database for the cache: its first lookup reads whether
/// the database changed, the later ones reuse that reading. A group token's request looks up
/// the token and then the projects: one change check (a `PRAGMA data_version` on SQLite), not
/// two, and both answers from the same state. A change committed meanwhile is seen by the
/// next request, as a change committed just after this one would be.
pub async fn one_view<F: std::future::Future>(work: F) -> F::Output {
    REQUEST_VIEW.scope(Cell::new(None), work).await
}

/// How often a PostgreSQL replica reads the change counter.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// A counter read older than this is not trusted (a change is seen within 1 s).
pub(super) const TRUST_FOR: Duration = Duration::from_millis(750);

/// The state of the database a cache entry was read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    local: u64,
    shared: i64,
}

/// How other writers' changes are detected.
pub enum ChangeWatch {
    /// `memory://`: only this process writes.
    LocalOnly,
    /// The path of the database file; each thread opens its own [`SqliteWatch`] on it.
    Sqlite(String),
    Polled(Arc<PolledCounter>),
}

pub struct SqliteWatch {
    connection: rusqlite::Connection,
    data_version: Option<i64>,
    counter: i64,
}

impl SqliteWatch {
    /// Opens a dedicated connection on the database file (after migrations ran).
    pub fn open(path: &str) -> Result<SqliteWatch, rusqlite::Error> {
        let connection = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Asked on request threads: never wait for a lock there. A busy database fails the
        // read, and that request bypasses the cache (and reopens the connection next time).
        connection.busy_timeout(Duration::ZERO)?;
        Ok(SqliteWatch {
            connection,
            data_version: None,
            counter: 0,
        })
    }

    fn counter(&mut self) -> Result<i64, rusqlite::Error> {
        let data_version: i64 = self
            .connection
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.data_version != Some(data_version) {
            // Another connection committed something: was it anything we cache?
            self.counter = self
                .connection
                .prepare_cached("SELECT version FROM regauth_changes WHERE id = 1")?
                .query_row([], |row| row.get(0))?;
            self.data_version = Some(data_version);
        }
        Ok(self.counter)
    }
}

thread_local! {
    /// This thread's watch connections, by database path (a server watches one file; tests
    /// run several servers in one process).
    static SQLITE_WATCHES: RefCell<HashMap<String, SqliteWatch>> = RefCell::new(HashMap::new());
}

/// The change counter of the SQLite file at `path`, through this thread's own connection
/// (opened on first use; dropped after an error, so the next call opens a fresh one).
fn sqlite_counter(path: &str) -> Result<i64, rusqlite::Error> {
    SQLITE_WATCHES.with(|watches| {
        let mut watches = watches.borrow_mut();
        let watch = match watches.get_mut(path) {
            Some(watch) => watch,
            None => watches
                .entry(path.to_owned())
                .or_insert(SqliteWatch::open(path)?),
        };
        let counter = watch.counter();
        if counter.is_err() {
            watches.remove(path);
        }
        counter
    })
}

/// The PostgreSQL change counter as last read, and when that read started.
pub struct PolledCounter {
    last: Mutex<Option<(i64, Instant)>>,
}

impl PolledCounter {
    fn current(&self) -> Option<i64> {
        let last = self.last.lock().ok()?;
        let (counter, read_at) = (*last)?;
        (read_at.elapsed() < TRUST_FOR).then_some(counter)
    }

    /// Reads the counter now, then every 250 ms for as long as the process runs.
    pub async fn start(db: DatabaseConnection) -> Arc<PolledCounter> {
        let polled = Arc::new(PolledCounter {
            last: Mutex::new(None),
        });
        polled.poll(&db).await;
        let task = Arc::clone(&polled);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(POLL_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                task.poll(&db).await;
            }
        });
        polled
    }

    async fn poll(&self, db: &DatabaseConnection) {
        let started = Instant::now();
        let statement = Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM regauth_changes WHERE id = 1",
        );
        let read = match db.query_one_raw(statement).await {
            Ok(Some(row)) => row.try_get::<i64>("", "version").ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "reading the change counter failed; token cache off until it works");
                None
            }
        };
        if let (Some(counter), Ok(mut last)) = (read, self.last.lock()) {
            *last = Some((counter, started));
        }
    }
}

#[derive(Default)]
struct Entries {
    generation: Option<Generation>,
    tokens: HashMap<String, DeployToken>,
    projects: HashMap<String, bool>,
    /// Workload identity policies by id (the federated login's lookup).
    policies: HashMap<i64, WorkloadIdentity>,
}

/// How one token lookup went.
#[derive(Debug, Clone, Copy, strum::EnumCount)]
pub enum Lookup {
    Hit,
    Miss,
    Bypassed,
}

/// The cache of one server process. `capacity` bounds each map (0 turns the cache off).
pub struct TokenCache {
    watch: ChangeWatch,
    local_writes: Arc<AtomicU64>,
    capacity: usize,
    entries: RwLock<Entries>,
    /// Token lookups by [`Lookup`], in that order.
    lookups: [AtomicU64; <Lookup as strum::EnumCount>::COUNT],
}

impl TokenCache {
    pub fn new(watch: ChangeWatch, local_writes: Arc<AtomicU64>, capacity: usize) -> TokenCache {
        TokenCache {
            watch,
            local_writes,
            capacity,
            entries: RwLock::new(Entries::default()),
            lookups: Default::default(),
        }
    }

    pub fn count(&self, lookup: Lookup) {
        self.lookups[lookup as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn lookups(&self) -> TokenCacheLookups {
        let [hits, misses, bypassed] = self
            .lookups
            .each_ref()
            .map(|count| count.load(Ordering::Relaxed));
        TokenCacheLookups {
            hits,
            misses,
            bypassed,
        }
    }

    /// The database's state now, or `None` when it cannot be told (the cache is bypassed).
    /// Within [`one_view`], the state first read is the request's: later lookups reuse it.
    pub fn generation(&self) -> Option<Generation> {
        if self.capacity == 0 {
            return None;
        }
        if let Ok(Some(generation)) = REQUEST_VIEW.try_with(Cell::get) {
            return Some(generation);
        }
        let generation = self.generation_now()?;
        // Outside `one_view` there is no request view to keep it in.
        let _ = REQUEST_VIEW.try_with(|view| view.set(Some(generation)));
        Some(generation)
    }

    fn generation_now(&self) -> Option<Generation> {
        // Read before the shared counter: a local write bumps after its commit.
        let local = self.local_writes.load(Ordering::Acquire);
        let shared = match &self.watch {
            ChangeWatch::LocalOnly => 0,
            ChangeWatch::Sqlite(path) => match sqlite_counter(path) {
                Ok(counter) => counter,
                Err(error) => {
                    tracing::warn!(%error, "reading the change counter failed; token cache bypassed");
                    return None;
                }
            },
            ChangeWatch::Polled(polled) => polled.current()?,
        };
        Some(Generation { local, shared })
    }

    /// Entries are valid for `generation` only; anything older is dropped first.
    fn read<T>(&self, generation: Generation, pick: impl FnOnce(&Entries) -> T) -> Option<T> {
        {
            let entries = self.entries.read().ok()?;
            if entries.generation == Some(generation) {
                return Some(pick(&entries));
            }
        }
        let mut entries = self.entries.write().ok()?;
        if entries.generation != Some(generation) {
            entries.tokens.clear();
            entries.projects.clear();
            entries.policies.clear();
            entries.generation = Some(generation);
        }
        Some(pick(&entries))
    }

    pub fn token(&self, generation: Generation, digest: &str) -> Option<DeployToken> {
        self.read(generation, |entries| entries.tokens.get(digest).cloned())
            .flatten()
    }

    /// Keeps a token read from the database under `generation` (the state observed before
    /// the read): if the database changed since, the entry is not kept.
    pub fn keep_token(&self, generation: Generation, digest: &str, token: &DeployToken) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.generation == Some(generation) {
                if entries.tokens.len() >= self.capacity {
                    entries.tokens.clear();
                }
                entries.tokens.insert(digest.to_owned(), token.clone());
            }
        }
    }

    pub fn policy(&self, generation: Generation, id: i64) -> Option<WorkloadIdentity> {
        self.read(generation, |entries| entries.policies.get(&id).cloned())
            .flatten()
    }

    /// Keeps a policy read from the database under `generation`, as [`TokenCache::keep_token`].
    pub fn keep_policy(&self, generation: Generation, policy: &WorkloadIdentity) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.generation == Some(generation) {
                if entries.policies.len() >= self.capacity {
                    entries.policies.clear();
                }
                entries.policies.insert(policy.id, policy.clone());
            }
        }
    }

    /// For each path: `Some(is a project)` when known.
    pub fn projects(&self, generation: Generation, paths: &[&str]) -> Option<Vec<bool>> {
        self.read(generation, |entries| {
            paths
                .iter()
                .map(|path| entries.projects.get(*path).copied())
                .collect::<Option<Vec<bool>>>()
        })
        .flatten()
    }

    pub fn keep_projects(
        &self,
        generation: Generation,
        known: impl Iterator<Item = (String, bool)>,
    ) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.generation == Some(generation) {
                for (path, is_project) in known {
                    if entries.projects.len() >= self.capacity {
                        entries.projects.clear();
                    }
                    entries.projects.insert(path, is_project);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within one view the change state is read once; outside, every lookup reads it.
    #[tokio::test]
    async fn one_view_reads_the_change_state_once() {
        let writes = Arc::new(AtomicU64::new(0));
        let cache = TokenCache::new(ChangeWatch::LocalOnly, Arc::clone(&writes), 10);
        let before = cache.generation().unwrap();
        one_view(async {
            let first = cache.generation().unwrap();
            assert_eq!(first, before);
            writes.fetch_add(1, Ordering::Release);
            assert_eq!(cache.generation().unwrap(), first, "the request's view");
        })
        .await;
        let after = cache.generation().unwrap();
        assert_ne!(after, before, "the next request sees the write");
        writes.fetch_add(1, Ordering::Release);
        assert_ne!(
            cache.generation().unwrap(),
            after,
            "no view outside one_view"
        );
    }
}
