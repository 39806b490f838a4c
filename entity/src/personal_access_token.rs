//! Personal access tokens for the management API; secrets stored as SHA-256 digests.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "personal_access_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    #[sea_orm(unique)]
    pub token_digest: String,
    /// Comma-separated: `api`, `read_api`.
    pub scopes: String,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked: bool,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    /// Canonical CIDRs joined by commas; NULL: usable from anywhere.
    pub ip_restriction_ranges: Option<String>,
    /// After a rotation: the digest of the secret it replaced, which keeps working until
    /// `previous_token_expires_at` (the grace period); looked up by its own index.
    pub previous_token_digest: Option<String>,
    pub previous_token_expires_at: Option<DateTimeUtc>,
    /// The last rotation.
    pub rotated_at: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("personal_access_token::Model")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("token_digest", &"<redacted>")
            .field("previous_token_expires_at", &self.previous_token_expires_at)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
