//! [`NotificationStore`] for [`SeaStore`]: expiring tokens, the members who may be told, and
//! the `expiry_notifications` rows that make every notice go out once.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{deploy_token, expiry_notification, membership, namespace, user};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{deploy_token_from_rows, user_from_row, SeaStore};
use crate::domain::{DeployToken, Namespace, Role};
use crate::store::{Member, NoticeKey, NotificationStore, StoreError};

fn matches_key(key: &NoticeKey) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(expiry_notification::Column::DeployTokenId.eq(key.deploy_token_id))
        .add(expiry_notification::Column::WindowDays.eq(key.window.days()))
        .add(expiry_notification::Column::UserId.eq(key.user_id))
}

#[async_trait]
impl NotificationStore for SeaStore {
    async fn deploy_tokens_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<DeployToken>, StoreError> {
        deploy_token::Entity::find()
            .filter(deploy_token::Column::Revoked.eq(false))
            .filter(deploy_token::Column::DeletedAt.is_null())
            .filter(deploy_token::Column::ExpiresAt.gt(after))
            .filter(deploy_token::Column::ExpiresAt.lt(before))
            .order_by_asc(deploy_token::Column::Id)
            .find_also_related(namespace::Entity)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(row, owner)| deploy_token_from_rows(row, owner))
            .collect()
    }

    async fn namespace_members(&self, namespace: &Namespace) -> Result<Vec<Member>, StoreError> {
        // The namespace and its ancestors, by the prefixes of its full path (as highest_role).
        let paths = namespace.full_path.self_and_ancestors();
        let levels: Vec<(i64, i32)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::UserId)
            .column(membership::Column::AccessLevel)
            .inner_join(namespace::Entity)
            .filter(namespace::Column::FullPath.is_in(paths.iter().map(|p| p.as_str())))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut highest: HashMap<i64, Role> = HashMap::new();
        for (user_id, level) in levels {
            if let Some(role) = Role::from_access_level(level) {
                let entry = highest.entry(user_id).or_insert(role);
                *entry = (*entry).max(role);
            }
        }
        if highest.is_empty() {
            return Ok(Vec::new());
        }
        let users = user::Entity::find()
            .filter(user::Column::Id.is_in(highest.keys().copied()))
            .order_by_asc(user::Column::Id)
            .all(&self.db)
            .await?;
        Ok(users
            .into_iter()
            .filter_map(|row| {
                let role = *highest.get(&row.id)?;
                Some(Member {
                    user: user_from_row(row),
                    role,
                })
            })
            .collect())
    }

    async fn claim_notice(
        &self,
        key: &NoticeKey,
        email: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // The unique index on (token, window, user) decides between concurrent runs.
        let inserted = expiry_notification::Entity::insert(expiry_notification::ActiveModel {
            deploy_token_id: Set(key.deploy_token_id),
            window_days: Set(key.window.days()),
            user_id: Set(key.user_id),
            email: Set(email.to_owned()),
            claimed_at: Set(now),
            sent_at: Set(None),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                expiry_notification::Column::DeployTokenId,
                expiry_notification::Column::WindowDays,
                expiry_notification::Column::UserId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        if inserted == 1 {
            return Ok(true);
        }
        // Taken: sent already, or being sent. A claim that never finished is taken over.
        let taken_over = expiry_notification::Entity::update_many()
            .col_expr(expiry_notification::Column::ClaimedAt, Expr::value(now))
            .col_expr(expiry_notification::Column::Email, Expr::value(email))
            .filter(matches_key(key))
            .filter(expiry_notification::Column::SentAt.is_null())
            .filter(expiry_notification::Column::ClaimedAt.lt(stale_before))
            .exec(&self.db)
            .await?;
        Ok(taken_over.rows_affected == 1)
    }

    async fn mark_notice_sent(
        &self,
        key: &NoticeKey,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        expiry_notification::Entity::update_many()
            .col_expr(expiry_notification::Column::SentAt, Expr::value(now))
            .filter(matches_key(key))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn release_notice(&self, key: &NoticeKey) -> Result<(), StoreError> {
        expiry_notification::Entity::delete_many()
            .filter(matches_key(key))
            .filter(expiry_notification::Column::SentAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
