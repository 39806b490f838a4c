//! OAuth2 refresh tokens ("identity tokens" to docker), bound to one deploy token and one
//! registry service; stored as SHA-256 digests.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deploy_token_id: i64,
    pub service: String,
    #[sea_orm(unique)]
    pub token_digest: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("refresh_token::Model")
            .field("id", &self.id)
            .field("deploy_token_id", &self.deploy_token_id)
            .field("service", &self.service)
            .field("token_digest", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::deploy_token::Entity",
        from = "Column::DeployTokenId",
        to = "super::deploy_token::Column::Id"
    )]
    DeployToken,
}

impl Related<super::deploy_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DeployToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
