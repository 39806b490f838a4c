//! Groups and projects share one table because they share one space of full paths
//! (DOMAIN.md "Namespaces"): the unique index on `full_path` enforces that a path names
//! at most one of them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "namespaces")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `group` or `project`.
    pub kind: String,
    pub parent_id: Option<i64>,
    /// The last component of `full_path`.
    pub path: String,
    #[sea_orm(unique)]
    pub full_path: String,
    pub name: String,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    pub created_at: DateTimeUtc,
    /// Groups only: canonical CIDRs joined by commas, applying to every token below the
    /// group; NULL: anywhere.
    pub ip_restriction_ranges: Option<String>,
}

pub const KIND_GROUP: &str = "group";
pub const KIND_PROJECT: &str = "project";
pub const VISIBILITY_PUBLIC: &str = "public";

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::deploy_token::Entity")]
    DeployToken,
    #[sea_orm(belongs_to = "Entity", from = "Column::ParentId", to = "Column::Id")]
    Parent,
}

impl Related<super::deploy_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DeployToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
