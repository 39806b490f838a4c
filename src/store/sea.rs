//! The sea-orm implementation of [`Store`], for SQLite and PostgreSQL alike.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{deploy_token, namespace};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set, SqlErr,
};

use super::{Store, StoreError};
use crate::access::repository::NamespacePath;
use crate::domain::deploy_token::default_username;
use crate::domain::{
    DeployToken, DeployTokenScope, Namespace, NamespaceKind, NewDeployToken, ScopeSet,
    SecretDigest,
};

/// Opens the database (creating a SQLite file when asked by `mode=rwc`) and, when `migrate`,
/// brings the schema up to date.
pub async fn connect(
    url: &str,
    max_connections: u32,
    migrate: bool,
) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
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
        });
    }
    let db = Database::connect(options).await?;
    if migrate {
        Migrator::up(&db, None).await?;
    }
    Ok(db)
}

#[derive(Clone)]
pub struct SeaStore {
    db: DatabaseConnection,
}

impl SeaStore {
    pub fn new(db: DatabaseConnection) -> SeaStore {
        SeaStore { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
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
    Ok(Namespace {
        id: row.id,
        kind,
        parent_id: row.parent_id,
        full_path,
        name: row.name,
        created_at: row.created_at,
    })
}

fn scopes_of(row: &deploy_token::Model) -> ScopeSet {
    [
        (row.read_repository, DeployTokenScope::ReadRepository),
        (row.read_registry, DeployTokenScope::ReadRegistry),
        (row.write_registry, DeployTokenScope::WriteRegistry),
        (row.read_virtual_registry, DeployTokenScope::ReadVirtualRegistry),
        (row.write_virtual_registry, DeployTokenScope::WriteVirtualRegistry),
        (row.read_package_registry, DeployTokenScope::ReadPackageRegistry),
        (row.write_package_registry, DeployTokenScope::WritePackageRegistry),
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

fn deploy_token_from_row(row: deploy_token::Model, owner: Namespace) -> Result<DeployToken, StoreError> {
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
    })
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[async_trait]
impl Store for SeaStore {
    async fn find_usable_deploy_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError> {
        let found = deploy_token::Entity::find()
            .filter(deploy_token::Column::TokenDigest.eq(digest.as_hex()))
            .filter(deploy_token::Column::Revoked.eq(false))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .find_also_related(namespace::Entity)
            .one(&self.db)
            .await?;
        found
            .map(|(row, owner)| deploy_token_from_rows(row, owner))
            .transpose()
    }

    async fn existing_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError> {
        if full_paths.is_empty() {
            return Ok(Vec::new());
        }
        let rows = namespace::Entity::find()
            .filter(namespace::Column::Kind.eq(namespace::KIND_PROJECT))
            .filter(namespace::Column::FullPath.is_in(full_paths.iter().map(|p| p.as_str())))
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                NamespacePath::parse(&row.full_path)
                    .map_err(|error| corrupt("namespaces", row.id, error.to_string()))
            })
            .collect()
    }

    async fn find_namespace(&self, path: &NamespacePath) -> Result<Option<Namespace>, StoreError> {
        namespace::Entity::find()
            .filter(namespace::Column::FullPath.eq(path.as_str()))
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
        now: DateTime<Utc>,
    ) -> Result<Namespace, StoreError> {
        let row = namespace::ActiveModel {
            kind: Set(kind.as_str().to_owned()),
            parent_id: Set(parent_id),
            path: Set(path.last_component().to_owned()),
            full_path: Set(path.as_str().to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(now),
            ..Default::default()
        };
        // The unique index on full_path is the arbiter: no check-then-insert race.
        match row.insert(&self.db).await {
            Ok(row) => namespace_from_row(row),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::PathTaken(path.as_str().to_owned()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn create_deploy_token(
        &self,
        owner: &Namespace,
        token: &NewDeployToken,
        digest: &SecretDigest,
        created_by: &str,
        now: DateTime<Utc>,
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
            ..Default::default()
        };
        let row = row.insert(&self.db).await?;
        deploy_token_from_row(row, owner.clone())
    }

    async fn list_deploy_tokens(&self, owner: &Namespace) -> Result<Vec<DeployToken>, StoreError> {
        let rows = deploy_token::Entity::find()
            .filter(deploy_token::Column::NamespaceId.eq(owner.id))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .order_by_asc(deploy_token::Column::Id)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| deploy_token_from_row(row, owner.clone()))
            .collect()
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
    ) -> Result<Option<DeployToken>, StoreError> {
        // Only the first revocation sets revoked_at: revoking twice keeps the original time.
        deploy_token::Entity::update_many()
            .col_expr(deploy_token::Column::Revoked, true.into())
            .col_expr(deploy_token::Column::RevokedAt, now.into())
            .filter(deploy_token::Column::Id.eq(id))
            .filter(deploy_token::Column::Revoked.eq(false))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await?;
        self.find_deploy_token(id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }
}
