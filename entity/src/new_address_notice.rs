//! A new-address mail claimed for one user: sent at most once per token, network and user.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "new_address_notices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deploy_token_id: i64,
    pub network: String,
    pub user_id: i64,
    pub claimed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
