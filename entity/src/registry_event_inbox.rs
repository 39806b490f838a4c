//! A registry notification envelope written as it came, before its events are attributed
//! and recorded (and the row deleted, in the same transaction).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_event_inbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub received_at: DateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub envelope: String,
    /// Failed attempts to record it.
    pub attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
