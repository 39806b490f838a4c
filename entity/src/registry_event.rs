//! One registry action as the registry reported it: a manifest, tag, repository or blob
//! event kept whole, or the blob pulls of one actor, repository and day added up (`count`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When it happened (the registry's timestamp); for an aggregate, the first.
    pub created_at: DateTimeUtc,
    /// For an aggregate, the last; otherwise `created_at`.
    pub last_at: DateTimeUtc,
    /// The registry's event id; `None` for an aggregate.
    pub event_id: Option<String>,
    /// `blob-pull/<day>/<actor>/<repository>` for an aggregate; `None` otherwise.
    pub aggregate_key: Option<String>,
    /// `push`, `pull`, `mount` or `delete`.
    pub action: String,
    /// `manifest`, `blob`, `tag` or `repository`.
    pub target_kind: String,
    /// `actor.name` (the registry JWT's `sub`); empty for anonymous pulls.
    pub actor: String,
    pub deploy_token_id: Option<i64>,
    /// The workload identity policy whose credential acted (`gitlab+workload-<id>`).
    pub workload_identity_id: Option<i64>,
    pub namespace_id: Option<i64>,
    pub repository: String,
    pub from_repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
