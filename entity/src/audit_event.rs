//! The audit trail: who did what to which token, when, from where.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    /// `user`, `cli` or `deploy_token`.
    pub actor_kind: String,
    /// The username (for the CLI: the operating-system user, when known).
    pub actor: String,
    /// e.g. `deploy_token.create`, `deploy_token.revoke`, `deploy_token.delete`, `registry_token.issue`.
    pub action: String,
    pub deploy_token_id: Option<i64>,
    pub namespace_id: Option<i64>,
    pub ip_address: Option<String>,
    /// Free-form JSON with the specifics (scopes, granted access, service).
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
