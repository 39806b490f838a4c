//! [`TokenLifecycleStore`] for [`SeaStore`]: rotations and groups' lifetime limits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{
    deploy_token, expiry_notification, namespace, namespace_token_policy, personal_access_token,
};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::{
    deploy_token_from_rows, insert_audit_events, personal_access_token_from_row, SeaStore,
};
use crate::domain::token_lifetime::LifetimeLimits;
use crate::domain::{AuditEvent, DeployToken, NamespacePath, PersonalAccessToken};
use crate::store::lifecycle::{SecretChange, TokenLifecycleStore};
use crate::store::StoreError;

#[async_trait]
impl TokenLifecycleStore for SeaStore {
    async fn rotate_deploy_token(
        &self,
        id: i64,
        change: &SecretChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<DeployToken>, StoreError> {
        let transaction = self.db.begin().await?;
        let Some(row) = deploy_token::Entity::find_by_id(id)
            .filter(deploy_token::Column::Revoked.eq(false))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .one(&transaction)
            .await?
        else {
            return Ok(None);
        };
        // Conditional on the digest read: of two concurrent rotations one wins, the other
        // finds nothing to rotate (and says so) rather than hand out a secret that was lost.
        let updated = deploy_token::Entity::update_many()
            .col_expr(
                deploy_token::Column::PreviousTokenDigest,
                Expr::value(Some(row.token_digest.clone())),
            )
            .col_expr(
                deploy_token::Column::PreviousTokenExpiresAt,
                Expr::value(Some(change.previous_secret_expires_at)),
            )
            .col_expr(
                deploy_token::Column::TokenDigest,
                Expr::value(change.new_digest.as_hex().to_owned()),
            )
            .col_expr(
                deploy_token::Column::RotatedAt,
                Expr::value(Some(change.now)),
            )
            .col_expr(
                deploy_token::Column::ExpiresAt,
                Expr::value(change.expires_at),
            )
            .col_expr(
                deploy_token::Column::CiSecret,
                Expr::value(change.ci_secret.map(str::to_owned)),
            )
            .filter(deploy_token::Column::Id.eq(id))
            .filter(deploy_token::Column::TokenDigest.eq(row.token_digest.as_str()))
            .filter(deploy_token::Column::Revoked.eq(false))
            .exec(&transaction)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        if change.expires_at != row.expires_at {
            // A new expiry gets its own notices: those sent for the old date would otherwise
            // stand for the new one's windows.
            expiry_notification::Entity::delete_many()
                .filter(expiry_notification::Column::DeployTokenId.eq(id))
                .exec(&transaction)
                .await?;
        }
        let token = deploy_token::Entity::find_by_id(id)
            .find_also_related(namespace::Entity)
            .one(&transaction)
            .await?
            .map(|(row, owner)| deploy_token_from_rows(row, owner))
            .transpose()?;
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        self.wrote();
        // As for a revocation: once the rotation has answered, no replica serves the old
        // secret as the current one (it knows the grace period's end).
        self.settle().await;
        Ok(token)
    }

    async fn rotate_personal_access_token(
        &self,
        id: i64,
        change: &SecretChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let transaction = self.db.begin().await?;
        let Some(row) = personal_access_token::Entity::find_by_id(id)
            .filter(personal_access_token::Column::Revoked.eq(false))
            .one(&transaction)
            .await?
        else {
            return Ok(None);
        };
        let updated = personal_access_token::Entity::update_many()
            .col_expr(
                personal_access_token::Column::PreviousTokenDigest,
                Expr::value(Some(row.token_digest.clone())),
            )
            .col_expr(
                personal_access_token::Column::PreviousTokenExpiresAt,
                Expr::value(Some(change.previous_secret_expires_at)),
            )
            .col_expr(
                personal_access_token::Column::TokenDigest,
                Expr::value(change.new_digest.as_hex().to_owned()),
            )
            .col_expr(
                personal_access_token::Column::RotatedAt,
                Expr::value(Some(change.now)),
            )
            .col_expr(
                personal_access_token::Column::ExpiresAt,
                Expr::value(change.expires_at),
            )
            .filter(personal_access_token::Column::Id.eq(id))
            .filter(personal_access_token::Column::TokenDigest.eq(row.token_digest.as_str()))
            .filter(personal_access_token::Column::Revoked.eq(false))
            .exec(&transaction)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        let token = personal_access_token::Entity::find_by_id(id)
            .one(&transaction)
            .await?
            .map(personal_access_token_from_row)
            .transpose()?;
        insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        Ok(token)
    }

    async fn group_token_limits(
        &self,
        paths: &[NamespacePath],
    ) -> Result<Vec<(String, LifetimeLimits)>, StoreError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let groups: Vec<(i64, String)> = namespace::Entity::find()
            .filter(namespace::Column::Kind.eq(namespace::KIND_GROUP))
            .filter(namespace::Column::FullPath.is_in(paths.iter().map(NamespacePath::as_str)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.id, row.full_path))
            .collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let rows = namespace_token_policy::Entity::find()
            .filter(
                namespace_token_policy::Column::NamespaceId.is_in(groups.iter().map(|(id, _)| *id)),
            )
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let path = groups
                    .iter()
                    .find(|(id, _)| *id == row.namespace_id)
                    .map(|(_, path)| path.clone())?;
                let limits = LifetimeLimits {
                    // A negative or zero value cannot be written through regauth: ignored.
                    max_days: row
                        .max_token_lifetime_days
                        .and_then(|days| u32::try_from(days).ok())
                        .filter(|days| *days > 0),
                    require_expiry: row.require_token_expiry,
                };
                Some((path, limits))
            })
            .collect())
    }

    async fn set_group_token_limits(
        &self,
        group_id: i64,
        limits: LifetimeLimits,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = namespace_token_policy::ActiveModel {
            namespace_id: Set(group_id),
            max_token_lifetime_days: Set(limits
                .max_days
                .map(|days| i32::try_from(days).unwrap_or(i32::MAX))),
            require_token_expiry: Set(limits.require_expiry),
            updated_at: Set(now),
        };
        namespace_token_policy::Entity::insert(row)
            .on_conflict(
                OnConflict::column(namespace_token_policy::Column::NamespaceId)
                    .update_columns([
                        namespace_token_policy::Column::MaxTokenLifetimeDays,
                        namespace_token_policy::Column::RequireTokenExpiry,
                        namespace_token_policy::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
