//! Deploy tokens (DOMAIN.md "Deploy tokens"). One boolean column per scope, as GitLab does,
//! so that per-scope counts and filters are plain SQL.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deploy_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The owning project or group.
    pub namespace_id: i64,
    pub name: String,
    /// A custom username; `None` means the default `gitlab+deploy-token-{id}`.
    pub username: Option<String>,
    /// Lowercase hex SHA-256 of the secret; unique, the only way a secret is looked up.
    #[sea_orm(unique)]
    pub token_digest: String,
    pub read_repository: bool,
    pub read_registry: bool,
    pub write_registry: bool,
    pub read_virtual_registry: bool,
    pub write_virtual_registry: bool,
    pub read_package_registry: bool,
    pub write_package_registry: bool,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked: bool,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Who created it (a username, or `cli` for the command line).
    pub created_by: Option<String>,
    pub last_used_at: Option<DateTimeUtc>,
    /// Soft delete: the row stays for the audit trail.
    pub deleted_at: Option<DateTimeUtc>,
    /// Only for tokens named `gitlab-deploy-token`: the secret sealed with AES-256-GCM under
    /// the `ci_secret_key_file` key (`v1.<key id>.<base64 nonce+ciphertext>`). NULL otherwise.
    pub ci_secret: Option<String>,
    /// Canonical CIDRs joined by commas; NULL: usable from anywhere.
    pub ip_restriction_ranges: Option<String>,
    /// A JSON list of globs below the owner; NULL: every repository the owner reaches.
    pub repository_patterns: Option<String>,
    /// After a rotation: the digest of the secret it replaced, which keeps working until
    /// `previous_token_expires_at` (the grace period); looked up by its own index.
    pub previous_token_digest: Option<String>,
    pub previous_token_expires_at: Option<DateTimeUtc>,
    /// The last rotation.
    pub rotated_at: Option<DateTimeUtc>,
}

// The digest is not a secret by itself, but it identifies one: keep it out of Debug output.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("deploy_token::Model")
            .field("id", &self.id)
            .field("namespace_id", &self.namespace_id)
            .field("name", &self.name)
            .field("username", &self.username)
            .field("token_digest", &"<redacted>")
            .field("previous_token_expires_at", &self.previous_token_expires_at)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .field("deleted_at", &self.deleted_at)
            .finish_non_exhaustive()
    }
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
