//! Expiry notices: one row per deploy token, window (60, 30 or 7 days) and recipient.
//! `sent_at` is null while a run holds the claim and is sending; a failed delivery deletes
//! the row so that the next run retries.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "expiry_notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deploy_token_id: i64,
    /// 60, 30 or 7.
    pub window_days: i32,
    pub user_id: i64,
    /// The address the notice went to (the user's address at the time).
    pub email: String,
    pub claimed_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
