//! [`UserStore`] for [`SeaStore`]: users, memberships, personal access tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{membership, namespace, personal_access_token, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::{
    insert_audit_events, is_unique_violation, personal_access_token_from_row, user_from_row,
    SeaStore,
};
use crate::domain::{
    ApiScope, AuditEvent, Email, Namespace, PersonalAccessToken, Role, SecretDigest, User, Username,
};
use crate::store::{AuditOf, StoreError, UserStore};

#[async_trait]
impl UserStore for SeaStore {
    async fn create_user(
        &self,
        username: &Username,
        email: &Email,
        admin: bool,
        now: DateTime<Utc>,
        audit: AuditOf<'_, User>,
    ) -> Result<User, StoreError> {
        let row = user::ActiveModel {
            username: Set(username.as_str().to_owned()),
            email: Set(email.as_str().to_owned()),
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
