//! [`AuditStore`] and [`LoginFailureStore`] for [`SeaStore`]: the audit trail and failed logins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{audit_event, login_failure};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::{audit_event_from_row, SeaStore};
use crate::domain::{AuditAction, AuditEvent};
use crate::store::{AuditStore, FailureCount, LoginFailureStore, StoreError};

/// Audit records go in with the change they describe: `connection` is the change's transaction.
pub(super) async fn insert_audit_events<C: ConnectionTrait>(
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
