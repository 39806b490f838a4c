//! [`DeployTokenStore`] for [`SeaStore`]: deploy tokens, their refresh tokens and uses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{deploy_token, namespace, refresh_token};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};

use super::cache::Lookup;
use super::{
    corrupt, delete_refresh_tokens, deploy_token_from_row, deploy_token_from_rows,
    insert_audit_events, is_unique_violation, restrictions, revoke_statement, SeaStore,
};
use crate::domain::{
    AuditEvent, DeployToken, DeployTokenScope, Namespace, NewDeployToken, SecretDigest,
};
use crate::store::{
    DeployTokenStore, Page, RefreshTokenGrant, ScopeCounts, SealedDeployToken, StateCounts,
    StoreError, TokenCacheLookups, TokenQuery,
};

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
