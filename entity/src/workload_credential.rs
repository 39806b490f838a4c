//! A short-lived credential minted by the token exchange from a workload identity policy;
//! only the SHA-256 digest of its secret is stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workload_credentials")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workload_identity_id: i64,
    #[sea_orm(unique)]
    pub token_digest: String,
    pub scopes: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("workload_credential::Model")
            .field("id", &self.id)
            .field("workload_identity_id", &self.workload_identity_id)
            .field("token_digest", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::workload_identity::Entity",
        from = "Column::WorkloadIdentityId",
        to = "super::workload_identity::Column::Id"
    )]
    WorkloadIdentity,
}

impl Related<super::workload_identity::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::WorkloadIdentity.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
