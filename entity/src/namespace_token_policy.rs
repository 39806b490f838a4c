//! A group's limits on the lifetime of tokens created in it and below it (issue #27).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "namespace_token_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub namespace_id: i64,
    /// Days a new token may live at most; NULL: no limit of the group's own.
    pub max_token_lifetime_days: Option<i32>,
    /// New tokens must have an expiry.
    pub require_token_expiry: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
