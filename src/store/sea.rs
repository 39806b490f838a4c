//! The sea-orm implementation of [`Store`], for SQLite and PostgreSQL alike.

mod audit;
mod cache;
mod connection;
mod deploy_tokens;
mod inline_write;
mod lifecycle;
mod namespaces;
mod notifications;
mod registry_events;
mod restrictions;
mod users;
mod web;
mod workload;

use audit::insert_audit_events;
pub use cache::one_view;
use connection::sqlite_file;
pub use connection::{connect, connect_with, vacuum_into};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{audit_event, deploy_token, namespace, personal_access_token, refresh_token, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, SqlErr};

use self::cache::{ChangeWatch, PolledCounter, SqliteWatch, TokenCache};
use super::{Store, StoreError};
use crate::domain::deploy_token::default_username;
use crate::domain::repository_pattern::RepositoryPatterns;
use crate::domain::rotation::SecretRotation;
use crate::domain::{
    ActorKind, ApiScope, AuditAction, AuditEvent, DeployToken, DeployTokenScope, Namespace,
    NamespaceKind, PersonalAccessToken, ScopeSet, SecretDigest, User, Visibility,
};
use crate::domain::{NamespacePath, TokenRestrictions};

use crate::config::MEMORY_URL_PREFIX;

#[derive(Clone)]
pub struct SeaStore {
    db: DatabaseConnection,
    /// Writes by this process to what the cache holds, bumped after each commit.
    local_writes: Arc<AtomicU64>,
    cache: Option<Arc<TokenCache>>,
    /// The SQLite file, for the registry events inbox's inline insert (`inline_write`).
    sqlite_path: Option<String>,
}

impl SeaStore {
    /// A store without a cache: every read goes to the database (the CLI, tests).
    pub fn new(db: DatabaseConnection) -> SeaStore {
        SeaStore {
            db,
            local_writes: Arc::new(AtomicU64::new(0)),
            cache: None,
            sqlite_path: None,
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
        store.sqlite_path = sqlite_file(url).map(str::to_owned);
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
    let actor_kind: ActorKind = row
        .actor_kind
        .parse()
        .map_err(|_| corrupt("audit_events", row.id, "unknown actor kind"))?;
    let action: AuditAction = row
        .action
        .parse()
        .map_err(|_| corrupt("audit_events", row.id, "unknown action"))?;
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
impl Store for SeaStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }
}
