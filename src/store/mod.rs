//! Persistence behind async traits; [`SeaStore`] is the sea-orm implementation of all of
//! them, for SQLite and PostgreSQL. The services are tested against it (tests/api, a fresh
//! database each); only the notification job also has a fake store, in its unit tests
//! (`service/notifications`).

mod sea;

pub use sea::{connect, SeaStore, MEMORY_URL_PREFIX};

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::access::repository::NamespacePath;
use crate::domain::{
    AuditEvent, DeployToken, DeployTokenScope, Namespace, NamespaceKind, NewDeployToken,
    NoticeWindow, PersonalAccessToken, Role, SecretDigest, User,
};

/// Database errors seen by this process, for `regauth_database_errors_total`.
static DATABASE_ERRORS: AtomicU64 = AtomicU64::new(0);

pub fn database_errors() -> u64 {
    DATABASE_ERRORS.load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    /// A row holds something the domain cannot represent (edited by hand, or a bug).
    #[error("corrupt row in {table} (id {id}): {message}")]
    Corrupt {
        table: &'static str,
        id: i64,
        message: String,
    },
    #[error("{0} is already taken")]
    Taken(String),
    /// The database named by `memory://PATH` cannot be loaded, or cannot be watched.
    #[error("{0}")]
    Seed(String),
}

impl From<sea_orm::DbErr> for StoreError {
    fn from(error: sea_orm::DbErr) -> Self {
        DATABASE_ERRORS.fetch_add(1, Ordering::Relaxed);
        StoreError::Database(error)
    }
}

/// How many deploy tokens ever had a scope, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub created: u64,
    pub revoked: u64,
    pub deleted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeCounts([StateCounts; 7]);

impl ScopeCounts {
    pub fn get(&self, scope: DeployTokenScope) -> StateCounts {
        self.0[scope as usize]
    }

    pub fn set(&mut self, scope: DeployTokenScope, counts: StateCounts) {
        self.0[scope as usize] = counts;
    }
}

/// Which deploy tokens to list, and which page.
#[derive(Debug, Clone)]
pub struct TokenQuery {
    /// `None`: every token of the instance.
    pub owner_id: Option<i64>,
    /// Only tokens neither revoked nor expired at this instant.
    pub active_at: Option<DateTime<Utc>>,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A stored refresh token and the deploy token it stands for.
#[derive(Debug, Clone)]
pub struct RefreshTokenGrant {
    pub service: String,
    pub expires_at: DateTime<Utc>,
    pub deploy_token: DeployToken,
}

#[async_trait]
pub trait NamespaceStore: Send + Sync {
    async fn find_namespace(&self, path: &NamespacePath) -> Result<Option<Namespace>, StoreError>;

    async fn find_namespace_by_id(&self, id: i64) -> Result<Option<Namespace>, StoreError>;

    /// Creates a group or project; the parent (if any) must be given.
    async fn create_namespace(
        &self,
        kind: NamespaceKind,
        path: &NamespacePath,
        name: &str,
        parent_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Namespace, StoreError>;

    /// The projects among `full_paths` that exist (one query, whatever the count).
    async fn existing_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError>;
}

#[async_trait]
pub trait DeployTokenStore: Send + Sync {
    /// The hot path of every token request: one indexed lookup by digest, owner joined in.
    /// Returns tokens that are neither revoked nor deleted; expiry is the caller's check
    /// (it owns the clock).
    async fn find_usable_deploy_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError>;

    async fn create_deploy_token(
        &self,
        owner: &Namespace,
        token: &NewDeployToken,
        digest: &SecretDigest,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<DeployToken, StoreError>;

    /// Tokens that are not deleted, oldest first, one page of them.
    async fn list_deploy_tokens(&self, query: &TokenQuery)
        -> Result<Page<DeployToken>, StoreError>;

    /// A token that is not deleted.
    async fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, StoreError>;

    /// Revokes (the first revocation time is kept); the token as it is afterwards.
    async fn revoke_deploy_token(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// Revokes and soft-deletes: the row stays for the audit trail.
    async fn delete_deploy_token(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Per-scope counts of every token ever created (deleted ones included).
    async fn deploy_token_scope_counts(&self) -> Result<ScopeCounts, StoreError>;

    /// Stores a refresh token bound to a deploy token and a service.
    async fn create_refresh_token(
        &self,
        deploy_token_id: i64,
        service: &str,
        digest: &SecretDigest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The refresh token's service and expiry, with its deploy token if that is still
    /// neither revoked nor deleted.
    async fn find_refresh_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<RefreshTokenGrant>, StoreError>;

    /// Sets `last_used_at` for several tokens at once.
    async fn record_deploy_token_usage(
        &self,
        usage: &[(i64, DateTime<Utc>)],
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(
        &self,
        username: &str,
        email: &str,
        admin: bool,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError>;

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    async fn set_user_blocked(&self, user_id: i64, blocked: bool) -> Result<(), StoreError>;

    /// Adds or changes a membership.
    async fn set_membership(
        &self,
        user_id: i64,
        namespace_id: i64,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes a membership; false when there was none.
    async fn remove_membership(&self, user_id: i64, namespace_id: i64) -> Result<bool, StoreError>;

    /// The highest role of the user on the namespace or any of its ancestors (one query).
    async fn highest_role(
        &self,
        user_id: i64,
        namespace: &Namespace,
    ) -> Result<Option<Role>, StoreError>;

    async fn create_personal_access_token(
        &self,
        user: &User,
        name: &str,
        scopes: &[crate::domain::ApiScope],
        expires_at: Option<DateTime<Utc>>,
        digest: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<PersonalAccessToken, StoreError>;

    /// Revokes a personal access token; false when there is no such token.
    async fn revoke_personal_access_token(&self, id: i64) -> Result<bool, StoreError>;

    /// A personal access token that is not revoked, with its user (one query).
    async fn find_usable_personal_access_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(PersonalAccessToken, User)>, StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// Deletes registry-token-issue events older than `before`; how many went.
    async fn prune_registry_token_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The events about one deploy token, oldest first.
    async fn audit_events_for_deploy_token(
        &self,
        deploy_token_id: i64,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

/// A user with a role on a namespace: their highest, direct or inherited from an ancestor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
}

/// One expiry notice: about one deploy token, in one window, to one user. Sent at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NoticeKey {
    pub deploy_token_id: i64,
    pub window: NoticeWindow,
    pub user_id: i64,
}

/// What the expiry notifications need (DOMAIN.md "Expiry notifications").
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Tokens neither revoked nor deleted that expire after `after` and before `before`,
    /// owner joined in, oldest first.
    async fn deploy_tokens_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<DeployToken>, StoreError>;

    /// Everyone with a membership on the namespace or one of its ancestors, each once with
    /// their highest role there.
    async fn namespace_members(&self, namespace: &Namespace) -> Result<Vec<Member>, StoreError>;

    /// Claims a notice before sending it: true when this run should send it; false when it
    /// was sent already, or another run holds a claim newer than `stale_before` (a claim
    /// older than that belonged to a run that died while sending, and is taken over).
    async fn claim_notice(
        &self,
        key: &NoticeKey,
        email: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records that the claimed notice was delivered.
    async fn mark_notice_sent(&self, key: &NoticeKey, now: DateTime<Utc>)
        -> Result<(), StoreError>;

    /// Gives up a claim whose delivery failed, so that the next run tries again.
    async fn release_notice(&self, key: &NoticeKey) -> Result<(), StoreError>;
}

/// Everything the application needs from its database.
#[async_trait]
pub trait Store:
    NamespaceStore + DeployTokenStore + UserStore + AuditStore + NotificationStore
{
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
