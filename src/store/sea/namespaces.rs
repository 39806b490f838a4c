//! [`NamespaceStore`] for [`SeaStore`]: groups and projects.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::namespace;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::{insert_audit_events, is_unique_violation, namespace_from_row, SeaStore};
use crate::domain::{AuditEvent, Namespace, NamespaceKind, NamespacePath, Visibility};
use crate::store::{AuditOf, NamespaceStore, StoreError};

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
