//! [`WorkloadIdentityStore`] for [`SeaStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{
    audit_event, namespace, workload_credential, workload_exchanged_jti, workload_identity,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::{
    audit_event_from_row, corrupt, insert_audit_events, is_unique_violation, namespace_from_row,
    SeaStore,
};
use crate::domain::workload_identity::{
    Conditions, NewWorkloadIdentity, WorkloadIdentity, MAX_TTL_SECONDS,
};
use crate::domain::{AuditAction, AuditEvent, DeployTokenScope, Namespace, ScopeSet, SecretDigest};
use crate::store::workload::{
    NewWorkloadCredential, PolicyAudit, WorkloadCredential, WorkloadIdentityStore,
};
use crate::store::StoreError;

const TABLE: &str = "workload_identities";

fn policy_from_rows(
    row: workload_identity::Model,
    owner: Option<namespace::Model>,
) -> Result<WorkloadIdentity, StoreError> {
    let owner = owner.ok_or_else(|| corrupt(TABLE, row.id, "no namespace"))?;
    let conditions: Conditions = serde_json::from_str(&row.conditions)
        .map_err(|error| corrupt(TABLE, row.id, format!("conditions: {error}")))?;
    let scopes = scopes_from_text(&row.scopes, TABLE, row.id)?;
    let max_ttl_seconds = u32::try_from(row.max_ttl_seconds)
        .ok()
        .filter(|ttl| (1..=MAX_TTL_SECONDS).contains(ttl))
        .ok_or_else(|| corrupt(TABLE, row.id, "max_ttl_seconds out of range"))?;
    Ok(WorkloadIdentity {
        id: row.id,
        name: row.name,
        owner: namespace_from_row(owner)?,
        issuer: row.issuer,
        audience: row.audience,
        conditions,
        scopes,
        max_ttl_seconds,
        restrictions: crate::domain::TokenRestrictions {
            ip_ranges: super::restrictions::ranges_of(
                row.ip_restriction_ranges.as_deref(),
                TABLE,
                row.id,
            )?,
            ..Default::default()
        },
        created_at: row.created_at,
        created_by: row.created_by,
    })
}

fn scopes_from_text(text: &str, table: &'static str, id: i64) -> Result<ScopeSet, StoreError> {
    let mut scopes = ScopeSet::empty();
    for name in text.split(',').filter(|name| !name.is_empty()) {
        let scope = DeployTokenScope::parse(name)
            .ok_or_else(|| corrupt(table, id, format!("unknown scope {name:?}")))?;
        scopes.insert(scope);
    }
    Ok(scopes)
}

impl SeaStore {
    async fn find_workload_identity_uncached(
        &self,
        id: i64,
    ) -> Result<Option<WorkloadIdentity>, StoreError> {
        use crate::store::restrictions::RestrictionStore as _;
        let Some((row, owner)) = workload_identity::Entity::find_by_id(id)
            .find_also_related(namespace::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut policy = policy_from_rows(row, owner)?;
        // Read to authenticate (logins, exchanges, exchanged credentials): its groups'
        // allow-lists apply as to a deploy token.
        policy.restrictions.group_ip_ranges = self
            .group_ip_ranges_above(&policy.owner.full_path)
            .await?
            .into();
        Ok(Some(policy))
    }
}

#[async_trait]
impl WorkloadIdentityStore for SeaStore {
    async fn workload_identities_of_issuer(
        &self,
        issuer: &str,
    ) -> Result<Vec<WorkloadIdentity>, StoreError> {
        workload_identity::Entity::find()
            .filter(workload_identity::Column::Issuer.eq(issuer))
            .order_by_asc(workload_identity::Column::Id)
            .find_also_related(namespace::Entity)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(row, owner)| policy_from_rows(row, owner))
            .collect()
    }

    async fn exchange_workload_token(
        &self,
        credential: NewWorkloadCredential<'_>,
        audit: &(dyn for<'t> Fn(i64) -> AuditEvent + Send + Sync),
    ) -> Result<Option<i64>, StoreError> {
        let transaction = self.db.begin().await?;
        if let Some(jti) = credential.jti {
            let used = workload_exchanged_jti::ActiveModel {
                issuer: Set(credential.issuer.to_owned()),
                jti: Set(jti.to_owned()),
                expires_at: Set(credential.jti_expires_at),
                ..Default::default()
            }
            .insert(&transaction)
            .await;
            match used {
                Ok(_) => {}
                // Dropping the transaction rolls it back (PostgreSQL has aborted it anyway).
                Err(error) if is_unique_violation(&error) => return Ok(None),
                Err(error) => return Err(error.into()),
            }
        }
        let row = workload_credential::ActiveModel {
            workload_identity_id: Set(credential.policy_id),
            token_digest: Set(credential.digest.as_hex().to_owned()),
            scopes: Set(credential.scopes.names().join(",")),
            expires_at: Set(credential.expires_at),
            created_at: Set(credential.now),
            ..Default::default()
        }
        .insert(&transaction)
        .await?;
        insert_audit_events(&transaction, &[audit(row.id)]).await?;
        transaction.commit().await?;
        Ok(Some(row.id))
    }

    async fn find_workload_credential(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<WorkloadCredential>, StoreError> {
        let Some(row) = workload_credential::Entity::find()
            .filter(workload_credential::Column::TokenDigest.eq(digest.as_hex()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(policy) = self
            .find_workload_identity(row.workload_identity_id)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(WorkloadCredential {
            id: row.id,
            scopes: scopes_from_text(&row.scopes, "workload_credentials", row.id)?,
            policy,
            expires_at: row.expires_at,
        }))
    }

    async fn delete_workload_credential(
        &self,
        id: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let transaction = self.db.begin().await?;
        let deleted = workload_credential::Entity::delete_by_id(id)
            .exec(&transaction)
            .await?
            .rows_affected
            > 0;
        if deleted {
            insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        }
        transaction.commit().await?;
        // Credentials are looked up in the database at every use (never cached): the next
        // use on any replica is refused, with nothing to invalidate.
        Ok(deleted)
    }

    async fn delete_expired_workload_credentials(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let credentials = workload_credential::Entity::delete_many()
            .filter(workload_credential::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected;
        let jtis = workload_exchanged_jti::Entity::delete_many()
            .filter(workload_exchanged_jti::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(credentials + jtis)
    }

    async fn create_workload_identity(
        &self,
        owner: &Namespace,
        policy: &NewWorkloadIdentity,
        created_by: &str,
        now: DateTime<Utc>,
        audit: PolicyAudit<'_>,
    ) -> Result<WorkloadIdentity, StoreError> {
        let conditions =
            serde_json::to_string(&policy.conditions).map_err(|error| StoreError::Corrupt {
                table: TABLE,
                id: 0,
                message: format!("conditions: {error}"),
            })?;
        let row = workload_identity::ActiveModel {
            namespace_id: Set(owner.id),
            name: Set(policy.name.clone()),
            issuer: Set(policy.issuer.clone()),
            audience: Set(policy.audience.clone()),
            conditions: Set(conditions),
            scopes: Set(policy.scopes.names().join(",")),
            max_ttl_seconds: Set(policy.max_ttl_seconds as i32),
            created_at: Set(now),
            created_by: Set(created_by.to_owned()),
            ip_restriction_ranges: Set(super::restrictions::stored_ranges(
                &policy.ip_restriction_ranges,
            )),
            ..Default::default()
        };
        let transaction = self.db.begin().await?;
        let row = row.insert(&transaction).await?;
        let owner_row = namespace::Entity::find_by_id(owner.id)
            .one(&transaction)
            .await?;
        let created = policy_from_rows(row, owner_row)?;
        insert_audit_events(&transaction, &[audit(&created)]).await?;
        transaction.commit().await?;
        self.wrote();
        Ok(created)
    }

    async fn list_workload_identities(
        &self,
        owner: &Namespace,
    ) -> Result<Vec<WorkloadIdentity>, StoreError> {
        workload_identity::Entity::find()
            .filter(workload_identity::Column::NamespaceId.eq(owner.id))
            .order_by_asc(workload_identity::Column::Id)
            .find_also_related(namespace::Entity)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(row, owner)| policy_from_rows(row, owner))
            .collect()
    }

    async fn find_workload_identity(
        &self,
        id: i64,
    ) -> Result<Option<WorkloadIdentity>, StoreError> {
        // Held like deploy tokens: valid while the database has not changed (policy writes
        // bump the change counter); unknown ids are not kept.
        let Some(cache) = &self.cache else {
            return self.find_workload_identity_uncached(id).await;
        };
        let Some(generation) = cache.generation() else {
            return self.find_workload_identity_uncached(id).await;
        };
        if let Some(policy) = cache.policy(generation, id) {
            return Ok(Some(policy));
        }
        let found = self.find_workload_identity_uncached(id).await?;
        if let Some(policy) = &found {
            cache.keep_policy(generation, policy);
        }
        Ok(found)
    }

    async fn delete_workload_identity(
        &self,
        id: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let transaction = self.db.begin().await?;
        let deleted = workload_identity::Entity::delete_by_id(id)
            .exec(&transaction)
            .await?
            .rows_affected
            > 0;
        if deleted {
            insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        }
        transaction.commit().await?;
        self.wrote();
        // As for a revoked token: once this returns, no replica admits the policy's jobs.
        self.settle().await;
        Ok(deleted)
    }

    async fn recent_workload_logins(
        &self,
        policy: &WorkloadIdentity,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        // The policy id lives in the details: read the namespace's recent federated logins
        // (indexed by namespace) and keep this policy's.
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::NamespaceId.eq(policy.owner.id))
            .filter(audit_event::Column::Action.is_in([
                AuditAction::WorkloadLogin.as_str(),
                AuditAction::WorkloadExchange.as_str(),
                AuditAction::WorkloadCredentialRevoke.as_str(),
            ]))
            .order_by_desc(audit_event::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?;
        let mut events = Vec::new();
        for row in rows {
            let event = audit_event_from_row(row)?;
            if event
                .details
                .get("policy_id")
                .and_then(serde_json::Value::as_i64)
                == Some(policy.id)
            {
                events.push(event);
                if events.len() == limit {
                    break;
                }
            }
        }
        Ok(events)
    }
}
