//! The sea-orm implementation of [`Store`], for SQLite and PostgreSQL alike.

mod cache;
mod lifecycle;
mod notifications;
mod registry_events;
mod restrictions;
mod web;
mod workload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{
    audit_event, deploy_token, login_failure, membership, namespace, personal_access_token,
    refresh_token, user,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    SqlErr, Statement, TransactionTrait,
};

use self::cache::{ChangeWatch, Lookup, PolledCounter, SqliteWatch, TokenCache};
use super::{
    AuditOf, AuditStore, DeployTokenStore, FailureCount, LoginFailureStore, NamespaceStore, Page,
    RefreshTokenGrant, ScopeCounts, SealedDeployToken, StateCounts, Store, StoreError,
    TokenCacheLookups, TokenQuery, UserStore,
};
use crate::domain::deploy_token::default_username;
use crate::domain::repository_pattern::RepositoryPatterns;
use crate::domain::rotation::SecretRotation;
use crate::domain::{
    ActorKind, ApiScope, AuditAction, AuditEvent, DeployToken, DeployTokenScope, Namespace,
    NamespaceKind, NewDeployToken, PersonalAccessToken, Role, ScopeSet, SecretDigest, User,
    Visibility,
};
use crate::domain::{NamespacePath, TokenRestrictions};

use crate::config::MEMORY_URL_PREFIX;

/// The SQLite file behind a `sqlite:` URL, if it is one (and not in memory).
fn sqlite_file(url: &str) -> Option<&str> {
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
async fn migrate_step_by_step(db: &DatabaseConnection) -> Result<(), StoreError> {
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
const MIGRATION_LOCK_KEY: i64 = 0x0072_6567_6175_7468;

/// Brings a PostgreSQL schema up to date while holding an advisory lock, so that replicas
/// started together never run the same migration twice (two concurrent `CREATE TABLE`s make
/// one of them fail): the first replica migrates, the others wait for the lock, then find
/// nothing pending. The lock belongs to a connection of its own (a pool of one), held for
/// the whole run and released on unlock or when that connection closes, even if this process
/// dies half-way.
async fn migrate_postgres_exclusively(url: &str) -> Result<(), StoreError> {
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
async fn refuse_newer_schema(db: &DatabaseConnection) -> Result<(), StoreError> {
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
const URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_');

/// Tables copied from a seed database into `memory://`, parents first.
const SEED_TABLES: [&str; 20] = [
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
    "new_address_mail_subscribers",
    "new_address_notices",
    "namespace_token_policies",
];

/// One in-memory SQLite connection, kept for the life of the process (closing it would lose
/// the data), migrated, and filled from `seed` when a path is given.
async fn connect_memory(seed: &str) -> Result<DatabaseConnection, StoreError> {
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

#[derive(Clone)]
pub struct SeaStore {
    db: DatabaseConnection,
    /// Writes by this process to what the cache holds, bumped after each commit.
    local_writes: Arc<AtomicU64>,
    cache: Option<Arc<TokenCache>>,
}

impl SeaStore {
    /// A store without a cache: every read goes to the database (the CLI, tests).
    pub fn new(db: DatabaseConnection) -> SeaStore {
        SeaStore {
            db,
            local_writes: Arc::new(AtomicU64::new(0)),
            cache: None,
        }
    }

    /// A store that keeps up to `capacity` deploy tokens and project paths in memory (0: none),
    /// watching the database at `url` for changes by anyone (see `cache`).
    pub async fn with_cache(
        db: DatabaseConnection,
        url: &str,
        capacity: usize,
    ) -> Result<SeaStore, StoreError> {
        let mut store = SeaStore::new(db.clone());
        if capacity == 0 {
            return Ok(store);
        }
        let watch = if url.starts_with(MEMORY_URL_PREFIX) {
            ChangeWatch::LocalOnly
        } else if let Some(path) = sqlite_file(url) {
            // Opened once here so that a start fails at once if it cannot be; the request
            // threads open their own.
            SqliteWatch::open(path).map_err(|error| {
                StoreError::Seed(format!("cannot open {path} to watch for changes: {error}"))
            })?;
            ChangeWatch::Sqlite(path.to_owned())
        } else if url.starts_with("sqlite:") {
            // An in-memory SQLite URL: other connections of this pool may write unseen.
            return Ok(store);
        } else {
            ChangeWatch::Polled(PolledCounter::start(db).await)
        };
        store.cache = Some(Arc::new(TokenCache::new(
            watch,
            Arc::clone(&store.local_writes),
            capacity,
        )));
        Ok(store)
    }

    /// Called after a write to anything the cache holds has committed.
    fn wrote(&self) {
        self.local_writes.fetch_add(1, Ordering::Release);
    }

    /// After a write that ends a token's access: on PostgreSQL, other processes see it when
    /// they next read the change counter, and trust a reading for at most `cache::TRUST_FOR`.
    /// Waiting that long before answering means that once a revocation returns (API or CLI),
    /// every replica refuses the token. SQLite servers see it on their next request anyway.
    async fn settle(&self) {
        if self.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            tokio::time::sleep(cache::TRUST_FOR + Duration::from_millis(50)).await;
        }
    }

    async fn find_usable_deploy_token_uncached(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError> {
        let live = deploy_token::Entity::find()
            .filter(deploy_token::Column::Revoked.eq(false))
            .filter(deploy_token::Column::DeletedAt.is_null());
        self.deploy_token_by_either_digest(live, digest).await
    }

    /// The token among `select` whose current secret has `digest`, else (a second indexed
    /// lookup, only on a miss) the one whose previous secret has it, marked as found so.
    async fn deploy_token_by_either_digest(
        &self,
        select: sea_orm::Select<deploy_token::Entity>,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError> {
        let current = select
            .clone()
            .filter(deploy_token::Column::TokenDigest.eq(digest.as_hex()))
            .find_also_related(namespace::Entity)
            .one(&self.db)
            .await?;
        let token = match current {
            Some((row, owner)) => Some(deploy_token_from_rows(row, owner)?),
            None => select
                .filter(deploy_token::Column::PreviousTokenDigest.eq(digest.as_hex()))
                .find_also_related(namespace::Entity)
                .one(&self.db)
                .await?
                .map(|(row, owner)| {
                    deploy_token_from_rows(row, owner).map(|mut token| {
                        token.rotation.found_by_previous_secret = true;
                        token
                    })
                })
                .transpose()?,
        };
        match token {
            Some(token) => self.with_group_ip_ranges(token).await.map(Some),
            None => Ok(None),
        }
    }

    /// A token about to authenticate, with the allow-lists of the groups above it.
    async fn with_group_ip_ranges(
        &self,
        mut token: DeployToken,
    ) -> Result<DeployToken, StoreError> {
        use crate::store::restrictions::RestrictionStore as _;
        std::sync::Arc::make_mut(&mut token.restrictions).group_ip_ranges = self
            .group_ip_ranges_above(&token.owner.full_path)
            .await?
            .into();
        Ok(token)
    }

    /// As [`Self::deploy_token_by_either_digest`], for personal access tokens with their user.
    async fn personal_access_token_by_either_digest(
        &self,
        select: sea_orm::Select<personal_access_token::Entity>,
        digest: &SecretDigest,
    ) -> Result<Option<(PersonalAccessToken, User)>, StoreError> {
        let mut found = select
            .clone()
            .filter(personal_access_token::Column::TokenDigest.eq(digest.as_hex()))
            .find_also_related(user::Entity)
            .one(&self.db)
            .await?;
        let mut by_previous = false;
        if found.is_none() {
            found = select
                .filter(personal_access_token::Column::PreviousTokenDigest.eq(digest.as_hex()))
                .find_also_related(user::Entity)
                .one(&self.db)
                .await?;
            by_previous = true;
        }
        match found {
            Some((token, Some(user))) => {
                let mut token = personal_access_token_from_row(token)?;
                token.rotation.found_by_previous_secret = by_previous;
                Ok(Some((token, user_from_row(user))))
            }
            Some((token, None)) => Err(corrupt("personal_access_tokens", token.id, "user missing")),
            None => Ok(None),
        }
    }

    async fn existing_projects_uncached(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError> {
        self.projects_among(full_paths, false).await
    }

    /// The projects among `full_paths` (only the public ones when `public_only`), one query.
    async fn projects_among(
        &self,
        full_paths: &[NamespacePath],
        public_only: bool,
    ) -> Result<Vec<NamespacePath>, StoreError> {
        if full_paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = namespace::Entity::find()
            .filter(namespace::Column::Kind.eq(namespace::KIND_PROJECT))
            .filter(namespace::Column::FullPath.is_in(full_paths.iter().map(|p| p.as_str())));
        if public_only {
            query = query.filter(namespace::Column::Visibility.eq(namespace::VISIBILITY_PUBLIC));
        }
        let rows = query.all(&self.db).await?;
        rows.into_iter()
            .map(|row| {
                NamespacePath::parse(&row.full_path)
                    .map_err(|error| corrupt("namespaces", row.id, error.to_string()))
            })
            .collect()
    }
}

fn corrupt(table: &'static str, id: i64, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        id,
        message: message.into(),
    }
}

fn namespace_from_row(row: namespace::Model) -> Result<Namespace, StoreError> {
    let kind = NamespaceKind::parse(&row.kind)
        .ok_or_else(|| corrupt("namespaces", row.id, format!("unknown kind {:?}", row.kind)))?;
    let full_path = NamespacePath::parse(&row.full_path)
        .map_err(|error| corrupt("namespaces", row.id, error.to_string()))?;
    let visibility = Visibility::parse(&row.visibility)
        .map_err(|error| corrupt("namespaces", row.id, error.to_string()))?;
    Ok(Namespace {
        id: row.id,
        kind,
        parent_id: row.parent_id,
        full_path,
        name: row.name,
        visibility,
        created_at: row.created_at,
    })
}

fn scopes_of(row: &deploy_token::Model) -> ScopeSet {
    [
        (row.read_repository, DeployTokenScope::ReadRepository),
        (row.read_registry, DeployTokenScope::ReadRegistry),
        (row.write_registry, DeployTokenScope::WriteRegistry),
        (
            row.read_virtual_registry,
            DeployTokenScope::ReadVirtualRegistry,
        ),
        (
            row.write_virtual_registry,
            DeployTokenScope::WriteVirtualRegistry,
        ),
        (
            row.read_package_registry,
            DeployTokenScope::ReadPackageRegistry,
        ),
        (
            row.write_package_registry,
            DeployTokenScope::WritePackageRegistry,
        ),
    ]
    .into_iter()
    .filter_map(|(held, scope)| held.then_some(scope))
    .collect()
}

/// A token row joined with its owner row.
fn deploy_token_from_rows(
    row: deploy_token::Model,
    owner: Option<namespace::Model>,
) -> Result<DeployToken, StoreError> {
    let owner = owner.ok_or_else(|| corrupt("deploy_tokens", row.id, "owner namespace missing"))?;
    deploy_token_from_row(row, namespace_from_row(owner)?)
}

fn deploy_token_from_row(
    row: deploy_token::Model,
    owner: Namespace,
) -> Result<DeployToken, StoreError> {
    let username = row
        .username
        .clone()
        .unwrap_or_else(|| default_username(row.id));
    Ok(DeployToken {
        id: row.id,
        scopes: scopes_of(&row),
        name: row.name,
        username,
        owner,
        expires_at: row.expires_at,
        revoked: row.revoked,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        restrictions: std::sync::Arc::new(TokenRestrictions {
            ip_ranges: restrictions::ranges_of(
                row.ip_restriction_ranges.as_deref(),
                "deploy_tokens",
                row.id,
            )?,
            group_ip_ranges: Default::default(),
            repository_patterns: RepositoryPatterns::from_stored(
                row.repository_patterns.as_deref(),
            )
            .map_err(|error| corrupt("deploy_tokens", row.id, error))?,
        }),
        rotation: SecretRotation {
            rotated_at: row.rotated_at,
            previous_secret_expires_at: row.previous_token_expires_at,
            found_by_previous_secret: false,
        },
    })
}

/// Revokes a live token. Only the first revocation sets `revoked_at`: revoking twice keeps
/// the original time.
fn revoke_statement(id: i64, now: DateTime<Utc>) -> sea_orm::UpdateMany<deploy_token::Entity> {
    deploy_token::Entity::update_many()
        .col_expr(deploy_token::Column::Revoked, Expr::value(true))
        .col_expr(deploy_token::Column::RevokedAt, Expr::value(now))
        .filter(deploy_token::Column::Id.eq(id))
        .filter(deploy_token::Column::Revoked.eq(false))
        .filter(deploy_token::Column::DeletedAt.is_null())
}

/// A revoked token's refresh tokens are dead already (checked on use); this removes them.
fn delete_refresh_tokens(deploy_token_id: i64) -> sea_orm::DeleteMany<refresh_token::Entity> {
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::DeployTokenId.eq(deploy_token_id))
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn user_from_row(row: user::Model) -> User {
    User {
        id: row.id,
        username: row.username,
        email: row.email,
        admin: row.admin,
        blocked: row.blocked,
        created_at: row.created_at,
    }
}

fn personal_access_token_from_row(
    row: personal_access_token::Model,
) -> Result<PersonalAccessToken, StoreError> {
    let scopes = row
        .scopes
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            ApiScope::parse(name).ok_or_else(|| {
                corrupt(
                    "personal_access_tokens",
                    row.id,
                    format!("unknown scope {name:?}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PersonalAccessToken {
        id: row.id,
        user_id: row.user_id,
        name: row.name,
        scopes,
        expires_at: row.expires_at,
        revoked: row.revoked,
        created_at: row.created_at,
        ip_ranges: restrictions::ranges_of(
            row.ip_restriction_ranges.as_deref(),
            "personal_access_tokens",
            row.id,
        )?,
        rotation: SecretRotation {
            rotated_at: row.rotated_at,
            previous_secret_expires_at: row.previous_token_expires_at,
            found_by_previous_secret: false,
        },
    })
}

fn audit_event_from_row(row: audit_event::Model) -> Result<AuditEvent, StoreError> {
    let actor_kind = ActorKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == row.actor_kind)
        .ok_or_else(|| corrupt("audit_events", row.id, "unknown actor kind"))?;
    let action = AuditAction::ALL
        .into_iter()
        .find(|action| action.as_str() == row.action)
        .ok_or_else(|| corrupt("audit_events", row.id, "unknown action"))?;
    Ok(AuditEvent {
        created_at: row.created_at,
        actor_kind,
        actor: row.actor,
        action,
        deploy_token_id: row.deploy_token_id,
        namespace_id: row.namespace_id,
        ip_address: row.ip_address,
        details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
    })
}

#[async_trait]
impl NamespaceStore for SeaStore {
    async fn find_namespace(&self, path: &NamespacePath) -> Result<Option<Namespace>, StoreError> {
        namespace::Entity::find()
            .filter(namespace::Column::FullPath.eq(path.as_str()))
            .one(&self.db)
            .await?
            .map(namespace_from_row)
            .transpose()
    }

    async fn find_namespace_by_id(&self, id: i64) -> Result<Option<Namespace>, StoreError> {
        namespace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(namespace_from_row)
            .transpose()
    }

    async fn create_namespace(
        &self,
        kind: NamespaceKind,
        path: &NamespacePath,
        name: &str,
        parent_id: Option<i64>,
        visibility: Visibility,
        now: DateTime<Utc>,
        audit: AuditOf<'_, Namespace>,
    ) -> Result<Namespace, StoreError> {
        let row = namespace::ActiveModel {
            kind: Set(kind.as_str().to_owned()),
            parent_id: Set(parent_id),
            path: Set(path.last_component().to_owned()),
            full_path: Set(path.as_str().to_owned()),
            name: Set(name.to_owned()),
            visibility: Set(visibility.as_str().to_owned()),
            created_at: Set(now),
            ..Default::default()
        };
        let transaction = self.db.begin().await?;
        // The unique index on full_path is the arbiter: no check-then-insert race.
        let created = match row.insert(&transaction).await {
            Ok(row) => namespace_from_row(row)?,
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Taken(path.as_str().to_owned()))
            }
            Err(error) => return Err(error.into()),
        };
        insert_audit_events(&transaction, &[audit(&created)]).await?;
        transaction.commit().await?;
        self.wrote();
        Ok(created)
    }

    async fn set_visibility(
        &self,
        id: i64,
        visibility: Visibility,
        audit: &AuditEvent,
    ) -> Result<Option<Namespace>, StoreError> {
        let transaction = self.db.begin().await?;
        let updated = namespace::Entity::update_many()
            .col_expr(
                namespace::Column::Visibility,
                Expr::value(visibility.as_str()),
            )
            .filter(namespace::Column::Id.eq(id))
            .exec(&transaction)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        self.wrote();
        self.find_namespace_by_id(id).await
    }

    async fn public_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError> {
        self.projects_among(full_paths, true).await
    }

    async fn existing_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError> {
        let Some(cache) = &self.cache else {
            return self.existing_projects_uncached(full_paths).await;
        };
        let Some(generation) = cache.generation() else {
            return self.existing_projects_uncached(full_paths).await;
        };
        let paths: Vec<&str> = full_paths.iter().map(NamespacePath::as_str).collect();
        if let Some(known) = cache.projects(generation, &paths) {
            return Ok(full_paths
                .iter()
                .zip(known)
                .filter(|(_, is_project)| *is_project)
                .map(|(path, _)| path.clone())
                .collect());
        }
        let existing = self.existing_projects_uncached(full_paths).await?;
        cache.keep_projects(
            generation,
            full_paths
                .iter()
                .map(|path| (path.as_str().to_owned(), existing.contains(path))),
        );
        Ok(existing)
    }
}

#[async_trait]
impl DeployTokenStore for SeaStore {
    async fn find_usable_deploy_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError> {
        let Some(cache) = &self.cache else {
            return self.find_usable_deploy_token_uncached(digest).await;
        };
        let Some(generation) = cache.generation() else {
            cache.count(Lookup::Bypassed);
            return self.find_usable_deploy_token_uncached(digest).await;
        };
        if let Some(token) = cache.token(generation, digest.as_hex()) {
            cache.count(Lookup::Hit);
            return Ok(Some(token));
        }
        cache.count(Lookup::Miss);
        // Unknown digests are not kept: nothing an attacker sends fills the cache.
        let found = self.find_usable_deploy_token_uncached(digest).await?;
        if let Some(token) = &found {
            cache.keep_token(generation, digest.as_hex(), token);
        }
        Ok(found)
    }

    async fn create_deploy_token(
        &self,
        owner: &Namespace,
        token: &NewDeployToken,
        digest: &SecretDigest,
        ci_secret: Option<&str>,
        created_by: &str,
        now: DateTime<Utc>,
        audit: &(dyn for<'t> Fn(&'t DeployToken) -> AuditEvent + Send + Sync),
    ) -> Result<DeployToken, StoreError> {
        let scopes = token.scopes();
        let row = deploy_token::ActiveModel {
            namespace_id: Set(owner.id),
            name: Set(token.name().to_owned()),
            username: Set(token.username().map(str::to_owned)),
            token_digest: Set(digest.as_hex().to_owned()),
            read_repository: Set(scopes.contains(DeployTokenScope::ReadRepository)),
            read_registry: Set(scopes.contains(DeployTokenScope::ReadRegistry)),
            write_registry: Set(scopes.contains(DeployTokenScope::WriteRegistry)),
            read_virtual_registry: Set(scopes.contains(DeployTokenScope::ReadVirtualRegistry)),
            write_virtual_registry: Set(scopes.contains(DeployTokenScope::WriteVirtualRegistry)),
            read_package_registry: Set(scopes.contains(DeployTokenScope::ReadPackageRegistry)),
            write_package_registry: Set(scopes.contains(DeployTokenScope::WritePackageRegistry)),
            expires_at: Set(token.expires_at()),
            revoked: Set(false),
            revoked_at: Set(None),
            created_at: Set(now),
            created_by: Set(Some(created_by.to_owned())),
            last_used_at: Set(None),
            deleted_at: Set(None),
            ci_secret: Set(ci_secret.map(str::to_owned)),
            ip_restriction_ranges: Set(restrictions::stored_ranges(
                &token.restrictions().ip_ranges,
            )),
            repository_patterns: Set(token.restrictions().repository_patterns.to_stored()),
            ..Default::default()
        };
        let transaction = self.db.begin().await?;
        let row = match row.insert(&transaction).await {
            Ok(row) => row,
            // The digest is 192 random bits: a clash can only be the username.
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Taken(format!(
                    "username {}",
                    token.username().unwrap_or_default()
                )))
            }
            Err(error) => return Err(error.into()),
        };
        let created = deploy_token_from_row(row, owner.clone())?;
        insert_audit_events(&transaction, &[audit(&created)]).await?;
        transaction.commit().await?;
        self.wrote();
        Ok(created)
    }

    async fn find_active_named_token(
        &self,
        owner_id: i64,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SealedDeployToken>, StoreError> {
        let found = deploy_token::Entity::find()
            .filter(deploy_token::Column::NamespaceId.eq(owner_id))
            .filter(deploy_token::Column::Name.eq(name))
            .filter(deploy_token::Column::Revoked.eq(false))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .filter(
                Condition::any()
                    .add(deploy_token::Column::ExpiresAt.is_null())
                    .add(deploy_token::Column::ExpiresAt.gt(now)),
            )
            .order_by_desc(deploy_token::Column::Id)
            .find_also_related(namespace::Entity)
            .one(&self.db)
            .await?;
        found
            .map(|(row, owner)| {
                let digest_hex = row.token_digest.clone();
                let ci_secret = row.ci_secret.clone();
                deploy_token_from_rows(row, owner).map(|token| SealedDeployToken {
                    token,
                    digest_hex,
                    ci_secret,
                })
            })
            .transpose()
    }

    async fn list_deploy_tokens(
        &self,
        query: &TokenQuery,
    ) -> Result<Page<DeployToken>, StoreError> {
        let mut select = deploy_token::Entity::find()
            .filter(deploy_token::Column::DeletedAt.is_null())
            .order_by_asc(deploy_token::Column::Id);
        if let Some(owner_id) = query.owner_id {
            select = select.filter(deploy_token::Column::NamespaceId.eq(owner_id));
        }
        if let Some(now) = query.active_at {
            select = select
                .filter(deploy_token::Column::Revoked.eq(false))
                .filter(
                    Condition::any()
                        .add(deploy_token::Column::ExpiresAt.is_null())
                        .add(deploy_token::Column::ExpiresAt.gt(now)),
                );
        }
        let total = select.clone().count(&self.db).await?;
        let per_page = query.per_page.max(1);
        let rows = select
            .find_also_related(namespace::Entity)
            .offset(query.page.saturating_sub(1).saturating_mul(per_page))
            .limit(per_page)
            .all(&self.db)
            .await?;
        let items = rows
            .into_iter()
            .map(|(row, owner)| deploy_token_from_rows(row, owner))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total })
    }

    async fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
        deploy_token::Entity::find_by_id(id)
            .filter(deploy_token::Column::DeletedAt.is_null())
            .find_also_related(namespace::Entity)
            .one(&self.db)
            .await?
            .map(|(row, owner)| deploy_token_from_rows(row, owner))
            .transpose()
    }

    async fn revoke_deploy_token(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<DeployToken>, StoreError> {
        let transaction = self.db.begin().await?;
        revoke_statement(id, now).exec(&transaction).await?;
        delete_refresh_tokens(id).exec(&transaction).await?;
        let token = deploy_token::Entity::find_by_id(id)
            .filter(deploy_token::Column::DeletedAt.is_null())
            .find_also_related(namespace::Entity)
            .one(&transaction)
            .await?
            .map(|(row, owner)| deploy_token_from_rows(row, owner))
            .transpose()?;
        if token.is_none() {
            // Nothing to revoke: nothing changed, nothing to record.
            return Ok(None);
        }
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        self.wrote();
        self.settle().await;
        Ok(token)
    }

    async fn delete_deploy_token(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let transaction = self.db.begin().await?;
        revoke_statement(id, now).exec(&transaction).await?;
        delete_refresh_tokens(id).exec(&transaction).await?;
        let deleted = deploy_token::Entity::update_many()
            .col_expr(deploy_token::Column::DeletedAt, Expr::value(now))
            .filter(deploy_token::Column::Id.eq(id))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .exec(&transaction)
            .await?;
        if deleted.rows_affected == 0 {
            return Ok(false);
        }
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        self.wrote();
        self.settle().await;
        Ok(true)
    }

    fn token_cache_lookups(&self) -> Option<TokenCacheLookups> {
        self.cache.as_ref().map(|cache| cache.lookups())
    }

    async fn deploy_token_scope_counts(&self) -> Result<ScopeCounts, StoreError> {
        // One aggregate over the table, portable between SQLite (booleans as 0/1) and
        // PostgreSQL; column names come from the fixed scope list, never from input.
        let mut columns = Vec::new();
        for (index, scope) in DeployTokenScope::ALL.iter().enumerate() {
            let column = scope.as_str();
            columns.push(format!(
                "COALESCE(SUM(CASE WHEN {column} THEN 1 ELSE 0 END), 0) AS created_{index}, \
                 COALESCE(SUM(CASE WHEN {column} AND revoked THEN 1 ELSE 0 END), 0) AS revoked_{index}, \
                 COALESCE(SUM(CASE WHEN {column} AND deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS deleted_{index}"
            ));
        }
        let sql = format!("SELECT {} FROM deploy_tokens", columns.join(", "));
        let statement = Statement::from_string(self.db.get_database_backend(), sql);
        let row = self
            .db
            .query_one_raw(statement)
            .await?
            .ok_or_else(|| corrupt("deploy_tokens", 0, "aggregate returned no row"))?;
        let mut counts = ScopeCounts::default();
        for (index, scope) in DeployTokenScope::ALL.into_iter().enumerate() {
            let get = |prefix: &str| -> Result<u64, StoreError> {
                let value: i64 = row.try_get("", &format!("{prefix}_{index}"))?;
                Ok(u64::try_from(value).unwrap_or(0))
            };
            counts.set(
                scope,
                StateCounts {
                    created: get("created")?,
                    revoked: get("revoked")?,
                    deleted: get("deleted")?,
                },
            );
        }
        Ok(counts)
    }

    async fn create_refresh_token(
        &self,
        deploy_token_id: i64,
        service: &str,
        digest: &SecretDigest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        keep: u32,
    ) -> Result<(), StoreError> {
        // Every login with offline_token adds one; the expired ones of this token go now.
        let transaction = self.db.begin().await?;
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::DeployTokenId.eq(deploy_token_id))
            .filter(refresh_token::Column::ExpiresAt.lte(now))
            .exec(&transaction)
            .await?;
        refresh_token::ActiveModel {
            deploy_token_id: Set(deploy_token_id),
            service: Set(service.to_owned()),
            token_digest: Set(digest.as_hex().to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            ..Default::default()
        }
        .insert(&transaction)
        .await?;
        // At most `keep` live per deploy token: the oldest beyond that go.
        let beyond: Vec<i64> = refresh_token::Entity::find()
            .select_only()
            .column(refresh_token::Column::Id)
            .filter(refresh_token::Column::DeployTokenId.eq(deploy_token_id))
            .order_by_desc(refresh_token::Column::CreatedAt)
            .order_by_desc(refresh_token::Column::Id)
            .into_tuple::<i64>()
            .all(&transaction)
            .await?
            // In Rust, not OFFSET: SQLite accepts OFFSET only after a LIMIT. The list is
            // short, since every insert trims it back to `keep`.
            .into_iter()
            .skip(keep as usize)
            .collect();
        if !beyond.is_empty() {
            refresh_token::Entity::delete_many()
                .filter(refresh_token::Column::Id.is_in(beyond))
                .exec(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn delete_expired_refresh_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    async fn find_deploy_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError> {
        let not_deleted =
            deploy_token::Entity::find().filter(deploy_token::Column::DeletedAt.is_null());
        self.deploy_token_by_either_digest(not_deleted, digest)
            .await
    }

    async fn delete_refresh_token(
        &self,
        digest: &SecretDigest,
        audit: Option<&AuditEvent>,
    ) -> Result<Option<i64>, StoreError> {
        let transaction = self.db.begin().await?;
        let Some(row) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenDigest.eq(digest.as_hex()))
            .one(&transaction)
            .await?
        else {
            return Ok(None);
        };
        let deleted = refresh_token::Entity::delete_by_id(row.id)
            .exec(&transaction)
            .await?
            .rows_affected
            > 0;
        if !deleted {
            return Ok(None);
        }
        if let Some(audit) = audit {
            insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        }
        transaction.commit().await?;
        self.wrote();
        Ok(Some(row.deploy_token_id))
    }

    async fn find_refresh_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<RefreshTokenGrant>, StoreError> {
        let Some((refresh, Some(token))) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenDigest.eq(digest.as_hex()))
            .find_also_related(deploy_token::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if token.revoked || token.deleted_at.is_some() {
            return Ok(None);
        }
        let owner = namespace::Entity::find_by_id(token.namespace_id)
            .one(&self.db)
            .await?;
        let mut deploy_token = deploy_token_from_rows(token, owner)?;
        // Obtained before the last rotation, with the secret it replaced: it lives as long as
        // that secret (the grace period), not as long as the token (#27).
        if deploy_token
            .rotation
            .rotated_at
            .is_some_and(|rotated_at| refresh.created_at < rotated_at)
        {
            deploy_token.rotation.found_by_previous_secret = true;
        }
        Ok(Some(RefreshTokenGrant {
            service: refresh.service,
            expires_at: refresh.expires_at,
            // Refresh tokens inherit the deploy token's restrictions, and its groups'.
            deploy_token: self.with_group_ip_ranges(deploy_token).await?,
        }))
    }

    async fn record_deploy_token_usage(
        &self,
        usage: &[(i64, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if usage.is_empty() {
            return Ok(());
        }
        let transaction = self.db.begin().await?;
        for (id, used_at) in usage {
            deploy_token::Entity::update_many()
                .col_expr(deploy_token::Column::LastUsedAt, Expr::value(*used_at))
                .filter(deploy_token::Column::Id.eq(*id))
                .exec(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for SeaStore {
    async fn create_user(
        &self,
        username: &str,
        email: &str,
        admin: bool,
        now: DateTime<Utc>,
        audit: AuditOf<'_, User>,
    ) -> Result<User, StoreError> {
        let row = user::ActiveModel {
            username: Set(username.to_owned()),
            email: Set(email.to_owned()),
            admin: Set(admin),
            blocked: Set(false),
            created_at: Set(now),
            ..Default::default()
        };
        let transaction = self.db.begin().await?;
        let created = match row.insert(&transaction).await {
            Ok(row) => user_from_row(row),
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Taken(format!("username {username}")))
            }
            Err(error) => return Err(error.into()),
        };
        insert_audit_events(&transaction, &[audit(&created)]).await?;
        transaction.commit().await?;
        Ok(created)
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await?
            .map(user_from_row))
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?
            .into_iter()
            .map(user_from_row)
            .collect())
    }

    async fn set_user_blocked(
        &self,
        user_id: i64,
        blocked: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let transaction = self.db.begin().await?;
        user::Entity::update_many()
            .col_expr(user::Column::Blocked, Expr::value(blocked))
            .filter(user::Column::Id.eq(user_id))
            .exec(&transaction)
            .await?;
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn set_membership(
        &self,
        user_id: i64,
        namespace_id: i64,
        role: Role,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let transaction = self.db.begin().await?;
        let existing = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::NamespaceId.eq(namespace_id))
            .one(&transaction)
            .await?;
        match existing {
            Some(row) => {
                let mut row: membership::ActiveModel = row.into();
                row.access_level = Set(role.access_level());
                row.update(&transaction).await?;
            }
            None => {
                membership::ActiveModel {
                    user_id: Set(user_id),
                    namespace_id: Set(namespace_id),
                    access_level: Set(role.access_level()),
                    created_at: Set(now),
                    ..Default::default()
                }
                .insert(&transaction)
                .await?;
            }
        }
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn remove_membership(
        &self,
        user_id: i64,
        namespace_id: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let transaction = self.db.begin().await?;
        let removed = membership::Entity::delete_many()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::NamespaceId.eq(namespace_id))
            .exec(&transaction)
            .await?
            .rows_affected
            > 0;
        if removed {
            insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        }
        transaction.commit().await?;
        Ok(removed)
    }

    async fn highest_role(
        &self,
        user_id: i64,
        namespace: &Namespace,
    ) -> Result<Option<Role>, StoreError> {
        // Memberships are inherited down the tree: look at the namespace and every ancestor,
        // found by the prefixes of its full path, in one query.
        let paths = namespace.full_path.self_and_ancestors();
        let levels: Vec<i32> = membership::Entity::find()
            .select_only()
            .column(membership::Column::AccessLevel)
            .inner_join(namespace::Entity)
            .filter(membership::Column::UserId.eq(user_id))
            .filter(namespace::Column::FullPath.is_in(paths.iter().map(|p| p.as_str())))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(levels.into_iter().filter_map(Role::from_access_level).max())
    }

    async fn create_personal_access_token(
        &self,
        user: &User,
        name: &str,
        scopes: &[ApiScope],
        expires_at: Option<DateTime<Utc>>,
        digest: &SecretDigest,
        now: DateTime<Utc>,
        audit: AuditOf<'_, PersonalAccessToken>,
    ) -> Result<PersonalAccessToken, StoreError> {
        let scopes: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
        let transaction = self.db.begin().await?;
        let row = personal_access_token::ActiveModel {
            user_id: Set(user.id),
            name: Set(name.to_owned()),
            token_digest: Set(digest.as_hex().to_owned()),
            scopes: Set(scopes.join(",")),
            expires_at: Set(expires_at),
            revoked: Set(false),
            created_at: Set(now),
            last_used_at: Set(None),
            ..Default::default()
        }
        .insert(&transaction)
        .await?;
        let created = personal_access_token_from_row(row)?;
        insert_audit_events(&transaction, &[audit(&created)]).await?;
        transaction.commit().await?;
        Ok(created)
    }

    async fn revoke_personal_access_token(
        &self,
        id: i64,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        let transaction = self.db.begin().await?;
        let revoked = personal_access_token::Entity::update_many()
            .col_expr(personal_access_token::Column::Revoked, Expr::value(true))
            .filter(personal_access_token::Column::Id.eq(id))
            .exec(&transaction)
            .await?
            .rows_affected
            > 0;
        if let (true, Some(audit)) = (revoked, audit) {
            insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        }
        transaction.commit().await?;
        Ok(revoked)
    }

    async fn find_usable_personal_access_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(PersonalAccessToken, User)>, StoreError> {
        let live = personal_access_token::Entity::find()
            .filter(personal_access_token::Column::Revoked.eq(false));
        self.personal_access_token_by_either_digest(live, digest)
            .await
    }

    async fn find_personal_access_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(PersonalAccessToken, User)>, StoreError> {
        self.personal_access_token_by_either_digest(personal_access_token::Entity::find(), digest)
            .await
    }

    async fn find_personal_access_token(
        &self,
        id: i64,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        personal_access_token::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(personal_access_token_from_row)
            .transpose()
    }
}

/// Audit records go in with the change they describe: `connection` is the change's transaction.
async fn insert_audit_events<C: ConnectionTrait>(
    connection: &C,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = events.iter().map(|event| audit_event::ActiveModel {
        created_at: Set(event.created_at),
        actor_kind: Set(event.actor_kind.as_str().to_owned()),
        actor: Set(event.actor.clone()),
        action: Set(event.action.as_str().to_owned()),
        deploy_token_id: Set(event.deploy_token_id),
        namespace_id: Set(event.namespace_id),
        ip_address: Set(event.ip_address.clone()),
        details: Set(event.details.to_string()),
        ..Default::default()
    });
    audit_event::Entity::insert_many(rows)
        .exec(connection)
        .await?;
    Ok(())
}

#[async_trait]
impl AuditStore for SeaStore {
    async fn record_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        insert_audit_events(&self.db, events).await
    }

    async fn prune_registry_token_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = audit_event::Entity::delete_many()
            .filter(
                audit_event::Column::Action
                    .is_in(AuditAction::HIGH_VOLUME.map(AuditAction::as_str)),
            )
            .filter(audit_event::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    async fn audit_events_for_deploy_token(
        &self,
        deploy_token_id: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        audit_event::Entity::find()
            .filter(audit_event::Column::DeployTokenId.eq(deploy_token_id))
            .order_by_asc(audit_event::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(audit_event_from_row)
            .collect()
    }

    async fn registry_token_issues(
        &self,
        deploy_token_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        audit_event::Entity::find()
            .filter(audit_event::Column::DeployTokenId.eq(deploy_token_id))
            .filter(audit_event::Column::Action.eq(AuditAction::RegistryTokenIssue.as_str()))
            .filter(audit_event::Column::CreatedAt.between(from, to))
            .order_by_asc(audit_event::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(audit_event_from_row)
            .collect()
    }
}

#[async_trait]
impl Store for SeaStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }
}

#[async_trait]
impl LoginFailureStore for SeaStore {
    async fn record_login_failures(
        &self,
        failures: &[(String, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if failures.is_empty() {
            return Ok(());
        }
        let rows = failures.iter().map(|(key, at)| login_failure::ActiveModel {
            key: Set(key.clone()),
            failed_at: Set(*at),
            ..Default::default()
        });
        login_failure::Entity::insert_many(rows)
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn login_failure_counts(
        &self,
        since: DateTime<Utc>,
        min_failures: u32,
        limit: u64,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let rows: Vec<(String, i64, DateTime<Utc>)> = login_failure::Entity::find()
            .select_only()
            .column(login_failure::Column::Key)
            .column_as(login_failure::Column::Id.count(), "failures")
            .column_as(login_failure::Column::FailedAt.max(), "last_failure")
            .filter(login_failure::Column::FailedAt.gt(since))
            .group_by(login_failure::Column::Key)
            .having(sea_orm::sea_query::ExprTrait::gte(
                login_failure::Column::Id.count(),
                i64::from(min_failures),
            ))
            .order_by_desc(login_failure::Column::Id.count())
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(key, failures, last_failure)| FailureCount {
                key,
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                last_failure,
            })
            .collect())
    }

    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = login_failure::Entity::delete_many()
            .filter(login_failure::Column::FailedAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
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
