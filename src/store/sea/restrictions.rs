//! [`RestrictionStore`] for SQLite and PostgreSQL.

use async_trait::async_trait;
use entity::{deploy_token, namespace, personal_access_token};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

use super::{corrupt, insert_audit_events, SeaStore};
use crate::domain::address_range::IpRanges;
use crate::domain::{AuditEvent, DeployToken, NamespacePath};
use crate::store::restrictions::RestrictionStore;
use crate::store::{DeployTokenStore, StoreError};

/// The stored form of an allow-list: NULL when empty.
pub(super) fn stored_ranges(ranges: &IpRanges) -> Option<String> {
    (!ranges.is_empty()).then(|| ranges.to_text())
}

/// A stored allow-list back; a value that no longer parses is a corrupt row, never "anywhere".
pub(super) fn ranges_of(
    stored: Option<&str>,
    table: &'static str,
    id: i64,
) -> Result<IpRanges, StoreError> {
    match stored {
        None => Ok(IpRanges::default()),
        Some(text) => {
            IpRanges::parse_text(text).map_err(|error| corrupt(table, id, error.to_string()))
        }
    }
}

#[async_trait]
impl RestrictionStore for SeaStore {
    async fn set_deploy_token_ip_ranges(
        &self,
        id: i64,
        ranges: &IpRanges,
        audit: &AuditEvent,
    ) -> Result<Option<DeployToken>, StoreError> {
        let transaction = self.db.begin().await?;
        let updated = deploy_token::Entity::update_many()
            .col_expr(
                deploy_token::Column::IpRestrictionRanges,
                Expr::value(stored_ranges(ranges)),
            )
            .filter(deploy_token::Column::Id.eq(id))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .exec(&transaction)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        self.wrote();
        // Like a revocation: once the change returns, every replica enforces it.
        self.settle().await;
        self.find_deploy_token(id).await
    }

    async fn set_group_ip_ranges(
        &self,
        group_id: i64,
        ranges: &IpRanges,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let transaction = self.db.begin().await?;
        let updated = namespace::Entity::update_many()
            .col_expr(
                namespace::Column::IpRestrictionRanges,
                Expr::value(stored_ranges(ranges)),
            )
            .filter(namespace::Column::Id.eq(group_id))
            .filter(namespace::Column::Kind.eq(namespace::KIND_GROUP))
            .exec(&transaction)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        self.wrote();
        self.settle().await;
        Ok(true)
    }

    async fn set_personal_access_token_ip_ranges(
        &self,
        id: i64,
        ranges: &IpRanges,
    ) -> Result<bool, StoreError> {
        let updated = personal_access_token::Entity::update_many()
            .col_expr(
                personal_access_token::Column::IpRestrictionRanges,
                Expr::value(stored_ranges(ranges)),
            )
            .filter(personal_access_token::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected > 0)
    }

    async fn namespace_ip_ranges(&self, namespace_id: i64) -> Result<IpRanges, StoreError> {
        let row = namespace::Entity::find_by_id(namespace_id)
            .one(&self.db)
            .await?;
        match row {
            Some(row) => ranges_of(row.ip_restriction_ranges.as_deref(), "namespaces", row.id),
            None => Ok(IpRanges::default()),
        }
    }

    async fn group_ip_ranges_above(
        &self,
        path: &NamespacePath,
    ) -> Result<Vec<IpRanges>, StoreError> {
        let paths: Vec<String> = path
            .self_and_ancestors()
            .iter()
            .map(|path| path.as_str().to_owned())
            .collect();
        let rows = namespace::Entity::find()
            .filter(namespace::Column::FullPath.is_in(paths))
            .filter(namespace::Column::Kind.eq(namespace::KIND_GROUP))
            .filter(namespace::Column::IpRestrictionRanges.is_not_null())
            .order_by_asc(namespace::Column::FullPath)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| ranges_of(row.ip_restriction_ranges.as_deref(), "namespaces", row.id))
            .filter(|ranges| !matches!(ranges, Ok(ranges) if ranges.is_empty()))
            .collect()
    }
}
