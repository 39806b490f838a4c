//! [`WebStore`] for [`SeaStore`]: passwords, browser sessions, and the namespaces the
//! pages list.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{membership, namespace, user, user_password, web_session};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};

use super::{namespace_from_row, user_from_row, SeaStore};
use crate::domain::NamespacePath;
use crate::domain::{AuditEvent, Namespace, Role, SecretDigest, User};
use crate::store::{NewWebSession, StoreError, WebSession, WebStore};

fn session_from_row(row: web_session::Model) -> WebSession {
    WebSession {
        id: row.id,
        user_id: row.user_id,
        csrf_token: row.csrf_token,
        may_write: row.may_write,
        created_at: row.created_at,
        expires_at: row.expires_at,
        personal_access_token_id: row.personal_access_token_id,
    }
}

#[async_trait]
impl WebStore for SeaStore {
    async fn set_user_password(
        &self,
        user_id: i64,
        password_hash: &str,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let transaction = self.db.begin().await?;
        user_password::Entity::insert(user_password::ActiveModel {
            user_id: Set(user_id),
            password_hash: Set(password_hash.to_owned()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(user_password::Column::UserId)
                .update_columns([
                    user_password::Column::PasswordHash,
                    user_password::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await?;
        super::insert_audit_events(&transaction, std::slice::from_ref(audit)).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn find_user_password(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        Ok(user_password::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .map(|row| row.password_hash))
    }

    async fn create_web_session(
        &self,
        session: NewWebSession<'_>,
    ) -> Result<WebSession, StoreError> {
        let row = web_session::ActiveModel {
            session_digest: Set(session.digest.as_hex().to_owned()),
            user_id: Set(session.user_id),
            csrf_token: Set(session.csrf_token.to_owned()),
            may_write: Set(session.may_write),
            last_form_nonce: Set(None),
            created_at: Set(session.created_at),
            expires_at: Set(session.expires_at),
            personal_access_token_id: Set(session.personal_access_token_id),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(session_from_row(row))
    }

    async fn find_web_session(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(WebSession, User)>, StoreError> {
        let Some(session) = web_session::Entity::find()
            .filter(web_session::Column::SessionDigest.eq(digest.as_hex()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = user::Entity::find_by_id(session.user_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((session_from_row(session), user_from_row(user))))
    }

    async fn delete_web_session(&self, session_id: i64) -> Result<(), StoreError> {
        web_session::Entity::delete_by_id(session_id)
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn delete_web_sessions_of_user(&self, user_id: i64) -> Result<u64, StoreError> {
        let result = web_session::Entity::delete_many()
            .filter(web_session::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    async fn delete_expired_web_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = web_session::Entity::delete_many()
            .filter(web_session::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    async fn consume_form_nonce(&self, session_id: i64, nonce: &str) -> Result<bool, StoreError> {
        // One conditional UPDATE: two concurrent submissions of one form cannot both win.
        let result = web_session::Entity::update_many()
            .col_expr(web_session::Column::LastFormNonce, Expr::value(nonce))
            .filter(web_session::Column::Id.eq(session_id))
            .filter(
                Condition::any()
                    .add(web_session::Column::LastFormNonce.is_null())
                    .add(web_session::Column::LastFormNonce.ne(nonce)),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    async fn memberships_of_user(
        &self,
        user_id: i64,
    ) -> Result<Vec<(Namespace, Role)>, StoreError> {
        let rows = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .find_also_related(namespace::Entity)
            .all(&self.db)
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for (membership, namespace) in rows {
            let (Some(namespace), Some(role)) =
                (namespace, Role::from_access_level(membership.access_level))
            else {
                continue;
            };
            found.push((namespace_from_row(namespace)?, role));
        }
        Ok(found)
    }

    async fn search_namespaces(
        &self,
        within: Option<&[NamespacePath]>,
        search: &str,
        limit: u64,
    ) -> Result<Vec<Namespace>, StoreError> {
        let mut query = namespace::Entity::find();
        if let Some(paths) = within {
            if paths.is_empty() {
                return Ok(Vec::new());
            }
            let mut condition = Condition::any();
            for path in paths {
                condition = condition
                    .add(namespace::Column::FullPath.eq(path.as_str()))
                    .add(namespace::Column::FullPath.starts_with(format!("{}/", path.as_str())));
            }
            query = query.filter(condition);
        }
        let search = search.trim();
        if !search.is_empty() {
            query = query.filter(namespace::Column::FullPath.contains(search));
        }
        let rows = query
            .order_by_asc(namespace::Column::FullPath)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(namespace_from_row).collect()
    }
}
