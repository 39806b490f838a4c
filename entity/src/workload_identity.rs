//! A workload identity policy: OIDC tokens of `issuer` for `audience` whose claims meet
//! `conditions` act with `scopes` on the namespace, for at most `max_ttl_seconds`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workload_identities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub namespace_id: i64,
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub conditions: String,
    pub scopes: String,
    pub max_ttl_seconds: i32,
    pub created_at: DateTimeUtc,
    pub created_by: String,
    /// Canonical CIDRs joined by commas; NULL: anywhere.
    pub ip_restriction_ranges: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::namespace::Entity",
        from = "Column::NamespaceId",
        to = "super::namespace::Column::Id"
    )]
    Namespace,
}

impl Related<super::namespace::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Namespace.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
