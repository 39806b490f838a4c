//! Persistence behind one small async trait, so the services above it can be tested with a
//! fake; [`SeaStore`] is the sea-orm implementation used everywhere else.

mod sea;

pub use sea::{connect, SeaStore};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::access::repository::NamespacePath;
use crate::domain::{DeployToken, Namespace, NamespaceKind, NewDeployToken, SecretDigest};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A row holds something the domain cannot represent (edited by hand, or a bug).
    #[error("corrupt row in {table} (id {id}): {message}")]
    Corrupt {
        table: &'static str,
        id: i64,
        message: String,
    },
    #[error("{0} is already taken")]
    PathTaken(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// The hot path of every token request: one indexed lookup by digest, owner joined in.
    /// Returns tokens that are neither revoked nor deleted; expiry is the caller's check
    /// (it owns the clock).
    async fn find_usable_deploy_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// The projects among `full_paths` that exist (one query, whatever the count).
    async fn existing_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError>;

    async fn find_namespace(&self, path: &NamespacePath) -> Result<Option<Namespace>, StoreError>;

    /// Creates a group or project; the parent (if any) must be given.
    async fn create_namespace(
        &self,
        kind: NamespaceKind,
        path: &NamespacePath,
        name: &str,
        parent_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Namespace, StoreError>;

    async fn create_deploy_token(
        &self,
        owner: &Namespace,
        token: &NewDeployToken,
        digest: &SecretDigest,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<DeployToken, StoreError>;

    /// Tokens of one namespace, not deleted, oldest first.
    async fn list_deploy_tokens(&self, owner: &Namespace) -> Result<Vec<DeployToken>, StoreError>;

    async fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, StoreError>;

    /// Revokes; returns the token as it is afterwards, `None` when there is no such token.
    async fn revoke_deploy_token(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
