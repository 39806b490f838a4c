//! A network (/24, /64, or the address as given) a deploy token acted from at the registry,
//! and when: what the new-address warning compares against.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_event_addresses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deploy_token_id: i64,
    pub network: String,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
