//! Persistence behind async traits; [`SeaStore`] is the sea-orm implementation of all of
//! them, for SQLite and PostgreSQL. The services are tested against it (tests/api, a fresh
//! database each); only the notification job also has a fake store, in its unit tests
//! (`service/notifications`).

pub mod lifecycle;
pub mod restrictions;
mod sea;
pub mod workload;

pub use sea::{connect, connect_with, one_view, vacuum_into, SeaStore};

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::registry_event::{ActorName, NewAddress, RegistryEvent, StoredRegistryEvent};
use crate::domain::NamespacePath;
use crate::domain::{
    AuditEvent, DeployToken, DeployTokenScope, Email, Namespace, NamespaceKind, NewDeployToken,
    NoticeWindow, PersonalAccessToken, Role, SecretDigest, User, Username, Visibility,
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
    /// The database cannot be reached: connection refused or lost, no pooled connection
    /// within `database_acquire_timeout`, or the server is shutting down. Worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database was migrated by a newer regauth (the migrations named are unknown here).
    #[error("the database schema is newer than this regauth (unknown migrations: {0}); run the newer regauth, or restore the backup taken before the upgrade")]
    SchemaTooNew(String),
    /// The database refuses writes: a read-only file or file system, or a full disk.
    #[error("database refuses writes: {0}")]
    ReadOnly(String),
    /// The database named by `memory://PATH` cannot be loaded, or cannot be watched.
    #[error("{0}")]
    Seed(String),
}

impl From<sea_orm::DbErr> for StoreError {
    fn from(error: sea_orm::DbErr) -> Self {
        DATABASE_ERRORS.fetch_add(1, Ordering::Relaxed);
        classify(error)
    }
}

/// Sorts database errors into "cannot reach it", "it refuses writes" and the rest.
fn classify(error: sea_orm::DbErr) -> StoreError {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    let sqlx = match &error {
        DbErr::ConnectionAcquire(_) => return StoreError::Unavailable(error.to_string()),
        DbErr::Conn(RuntimeErr::SqlxError(inner))
        | DbErr::Exec(RuntimeErr::SqlxError(inner))
        | DbErr::Query(RuntimeErr::SqlxError(inner)) => inner.as_ref(),
        DbErr::Conn(_) => return StoreError::Unavailable(error.to_string()),
        _ => return StoreError::Database(error),
    };
    match sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => StoreError::Unavailable(sqlx.to_string()),
        Sqlx::Database(database) => {
            let code = database
                .code()
                .map(|code| code.into_owned())
                .unwrap_or_default();
            let message = database.message().to_owned();
            match code.parse::<i32>() {
                // SQLite: SQLITE_READONLY (8) and its extended codes, SQLITE_FULL (13).
                Ok(sqlite) if matches!(sqlite & 0xff, 8 | 13) => StoreError::ReadOnly(message),
                // SQLite: SQLITE_IOERR (10), SQLITE_CANTOPEN (14).
                Ok(sqlite) if matches!(sqlite & 0xff, 10 | 14) => StoreError::Unavailable(message),
                // PostgreSQL: class 08 (connection exception), 57P01-57P03 (shutting down,
                // cannot connect now), 53300 (too many connections).
                _ if code.starts_with("08") || code.starts_with("57P") || code == "53300" => {
                    StoreError::Unavailable(message)
                }
                // PostgreSQL: 25006 read-only transaction (a standby), 53100 disk full.
                _ if code == "25006" || code == "53100" => StoreError::ReadOnly(message),
                _ => StoreError::Database(error),
            }
        }
        _ => StoreError::Database(error),
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
pub struct ScopeCounts([StateCounts; <DeployTokenScope as strum::EnumCount>::COUNT]);

impl ScopeCounts {
    pub fn get(&self, scope: DeployTokenScope) -> StateCounts {
        self.0[scope as usize]
    }

    pub fn set(&mut self, scope: DeployTokenScope, counts: StateCounts) {
        self.0[scope as usize] = counts;
    }
}

/// How this process's deploy-token lookups went through its cache (for `/metrics`): found in
/// it, read from the database and kept, or read from the database because the cache could not
/// tell whether the database had changed (SQLite busy, PostgreSQL's change counter not read
/// within its trust window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCacheLookups {
    pub hits: u64,
    pub misses: u64,
    pub bypassed: u64,
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

/// Builds the audit record of a new row once the store knows its id (written in the same
/// transaction as the row).
pub type AuditOf<'a, T> = &'a (dyn Fn(&T) -> AuditEvent + Send + Sync);

#[async_trait]
pub trait NamespaceStore: Send + Sync {
    async fn find_namespace(&self, path: &NamespacePath) -> Result<Option<Namespace>, StoreError>;

    async fn find_namespace_by_id(&self, id: i64) -> Result<Option<Namespace>, StoreError>;

    /// Creates a group or project (the parent, if any, must be given) with its audit record,
    /// in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn create_namespace(
        &self,
        kind: NamespaceKind,
        path: &NamespacePath,
        name: &str,
        parent_id: Option<i64>,
        visibility: Visibility,
        now: DateTime<Utc>,
        audit: AuditOf<'_, Namespace>,
    ) -> Result<Namespace, StoreError>;

    /// Changes a namespace's visibility with its audit record, in one transaction; the
    /// namespace afterwards, `None` (and nothing recorded) when there is none.
    async fn set_visibility(
        &self,
        id: i64,
        visibility: Visibility,
        audit: &AuditEvent,
    ) -> Result<Option<Namespace>, StoreError>;

    /// The public projects among `full_paths` (one query, whatever the count): what an
    /// anonymous caller may pull.
    async fn public_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError>;

    /// The projects among `full_paths` that exist (one query, whatever the count).
    async fn existing_projects(
        &self,
        full_paths: &[NamespacePath],
    ) -> Result<Vec<NamespacePath>, StoreError>;
}

/// A deploy token with what the CI credentials endpoint needs. `Debug` leaves the sealed
/// value and the digest out.
pub struct SealedDeployToken {
    pub token: DeployToken,
    pub digest_hex: String,
    pub ci_secret: Option<String>,
}

impl std::fmt::Debug for SealedDeployToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedDeployToken")
            .field("token", &self.token)
            .field("ci_secret", &self.ci_secret.as_ref().map(|_| "<sealed>"))
            .finish_non_exhaustive()
    }
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

    /// Creates the token and its audit record (`audit` composes it from the stored token)
    /// in one transaction: both or neither.
    /// `ci_secret`: the sealed secret, only for tokens named `gitlab-deploy-token`.
    async fn create_deploy_token(
        &self,
        owner: &Namespace,
        token: &NewDeployToken,
        digest: &SecretDigest,
        ci_secret: Option<&str>,
        created_by: &str,
        now: DateTime<Utc>,
        audit: &(dyn for<'t> Fn(&'t DeployToken) -> AuditEvent + Send + Sync),
    ) -> Result<DeployToken, StoreError>;

    /// The newest active (not revoked, not deleted, unexpired at `now`) token named `name`
    /// owned by the namespace `owner_id`, with its digest (hex) and sealed CI secret.
    async fn find_active_named_token(
        &self,
        owner_id: i64,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SealedDeployToken>, StoreError>;

    /// Tokens that are not deleted, oldest first, one page of them.
    async fn list_deploy_tokens(&self, query: &TokenQuery)
        -> Result<Page<DeployToken>, StoreError>;

    /// A token that is not deleted.
    async fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, StoreError>;

    /// The token whose secret has this digest, revoked or not (deleted ones excluded): what a
    /// leaked secret was. Never cached: leak reports are rare.
    async fn find_deploy_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// Deletes the refresh token with this digest and records `audit` (if any) in one
    /// transaction; the id of its deploy token, if it existed (nothing recorded otherwise).
    async fn delete_refresh_token(
        &self,
        digest: &SecretDigest,
        audit: Option<&AuditEvent>,
    ) -> Result<Option<i64>, StoreError>;

    /// Revokes (the first revocation time is kept), removes its refresh tokens and records
    /// `audit`, in one transaction; the token as it is afterwards.
    async fn revoke_deploy_token(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// Revokes and soft-deletes (the row stays for the audit trail) and records `audit`, in
    /// one transaction; false (and nothing recorded) when there was no such token.
    async fn delete_deploy_token(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Per-scope counts of every token ever created (deleted ones included).
    async fn deploy_token_scope_counts(&self) -> Result<ScopeCounts, StoreError>;

    /// The token cache's lookups so far; `None` when this store keeps no cache.
    fn token_cache_lookups(&self) -> Option<TokenCacheLookups> {
        None
    }

    /// Stores a refresh token bound to a deploy token and a service, then keeps only the
    /// `keep` newest of that deploy token (expired ones of it are removed as well).
    async fn create_refresh_token(
        &self,
        deploy_token_id: i64,
        service: &str,
        digest: &SecretDigest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        keep: u32,
    ) -> Result<(), StoreError>;

    /// Deletes every refresh token expired at `now`; how many went.
    async fn delete_expired_refresh_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

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
    /// Creates a user with the audit record, in one transaction.
    async fn create_user(
        &self,
        username: &Username,
        email: &Email,
        admin: bool,
        now: DateTime<Utc>,
        audit: AuditOf<'_, User>,
    ) -> Result<User, StoreError>;

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// Every user, ordered by username.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Blocks or unblocks a user with the audit record, in one transaction.
    async fn set_user_blocked(
        &self,
        user_id: i64,
        blocked: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Adds or changes a membership with the audit record, in one transaction.
    async fn set_membership(
        &self,
        user_id: i64,
        namespace_id: i64,
        role: Role,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Removes a membership with the audit record, in one transaction; false (and nothing
    /// recorded) when there was none.
    async fn remove_membership(
        &self,
        user_id: i64,
        namespace_id: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// The highest role of the user on the namespace or any of its ancestors (one query).
    async fn highest_role(
        &self,
        user_id: i64,
        namespace: &Namespace,
    ) -> Result<Option<Role>, StoreError>;

    /// Stores a personal access token with its audit record, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn create_personal_access_token(
        &self,
        user: &User,
        name: &str,
        scopes: &[crate::domain::ApiScope],
        expires_at: Option<DateTime<Utc>>,
        digest: &SecretDigest,
        now: DateTime<Utc>,
        audit: AuditOf<'_, PersonalAccessToken>,
    ) -> Result<PersonalAccessToken, StoreError>;

    /// Revokes a personal access token and records `audit` (if any) in one transaction;
    /// false (and nothing recorded) when there is no such token.
    async fn revoke_personal_access_token(
        &self,
        id: i64,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StoreError>;

    /// A personal access token that is not revoked, with its user (one query).
    async fn find_usable_personal_access_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(PersonalAccessToken, User)>, StoreError>;

    /// A personal access token by the digest of its secret, revoked or not, with its user.
    async fn find_personal_access_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(PersonalAccessToken, User)>, StoreError>;

    /// A personal access token by id, revoked or not.
    async fn find_personal_access_token(
        &self,
        id: i64,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// Deletes per-request events (registry token issues, refused logins) older than
    /// `before`; how many went.
    async fn prune_registry_token_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The events about one deploy token, oldest first.
    async fn audit_events_for_deploy_token(
        &self,
        deploy_token_id: i64,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The token's `registry_token.issue` records first seen between `from` and `to`
    /// (inclusive), oldest first, at most `limit`.
    async fn registry_token_issues(
        &self,
        deploy_token_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Failed logins of one key within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub key: String,
    pub failures: u32,
    pub last_failure: DateTime<Utc>,
}

/// Failed logins, shared by every replica (brute-force protection).
#[async_trait]
pub trait LoginFailureStore: Send + Sync {
    /// One row per failed login and key.
    async fn record_login_failures(
        &self,
        failures: &[(String, DateTime<Utc>)],
    ) -> Result<(), StoreError>;

    /// Keys with at least `min_failures` failures after `since`, most failures first, at
    /// most `limit` of them.
    async fn login_failure_counts(
        &self,
        since: DateTime<Utc>,
        min_failures: u32,
        limit: u64,
    ) -> Result<Vec<FailureCount>, StoreError>;

    /// Deletes failures older than `before`; how many went.
    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
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

/// A signed-in browser session as stored (the session id itself is never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id: i64,
    pub user_id: i64,
    /// The per-session CSRF token every form carries back.
    pub csrf_token: String,
    /// False when signed in with a `read_api` personal access token.
    pub may_write: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The personal access token it was signed in with (none: a password). The session ends
    /// when that token is revoked or expires.
    pub personal_access_token_id: Option<i64>,
}

/// A session to store: only the digest of its id, never the id.
pub struct NewWebSession<'a> {
    pub digest: &'a SecretDigest,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub may_write: bool,
    pub personal_access_token_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

// The CSRF token stays out of Debug output.
impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("may_write", &self.may_write)
            .field("expires_at", &self.expires_at)
            .field("personal_access_token_id", &self.personal_access_token_id)
            .finish_non_exhaustive()
    }
}

/// What the web pages need: passwords, sessions, and the namespaces a user may reach.
#[async_trait]
pub trait WebStore: Send + Sync {
    /// Sets (or replaces) a user's password hash (an argon2id PHC string) with the audit
    /// record, in one transaction.
    async fn set_user_password(
        &self,
        user_id: i64,
        password_hash: &str,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    async fn find_user_password(&self, user_id: i64) -> Result<Option<String>, StoreError>;

    async fn create_web_session(
        &self,
        session: NewWebSession<'_>,
    ) -> Result<WebSession, StoreError>;

    /// The session with this digest and its user; expiry is the caller's check.
    async fn find_web_session(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(WebSession, User)>, StoreError>;

    async fn delete_web_session(&self, session_id: i64) -> Result<(), StoreError>;

    /// Ends every session of a user (blocked, password changed); how many ended.
    async fn delete_web_sessions_of_user(&self, user_id: i64) -> Result<u64, StoreError>;

    /// Deletes sessions that expired before `now`; how many went.
    async fn delete_expired_web_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records that the form with `nonce` was submitted: true the first time, false when
    /// this session already submitted it (a reload re-posting the form).
    async fn consume_form_nonce(&self, session_id: i64, nonce: &str) -> Result<bool, StoreError>;

    /// The user's direct memberships, with their namespaces.
    async fn memberships_of_user(&self, user_id: i64)
        -> Result<Vec<(Namespace, Role)>, StoreError>;

    /// Namespaces whose path contains `search`, ordered by path, at most `limit`; when
    /// `within` is given, only those paths and the namespaces below them.
    async fn search_namespaces(
        &self,
        within: Option<&[NamespacePath]>,
        search: &str,
        limit: u64,
    ) -> Result<Vec<Namespace>, StoreError>;
}

/// A registry event to keep, with the credential its actor names (none: unknown actor or
/// anonymous, kept all the same).
#[derive(Debug, Clone)]
pub struct NewRegistryEvent {
    pub event: RegistryEvent,
    pub credential: Option<Credential>,
    pub namespace_id: Option<i64>,
}

impl NewRegistryEvent {
    pub fn deploy_token_id(&self) -> Option<i64> {
        match self.credential {
            Some(Credential::DeployToken(id)) => Some(id),
            _ => None,
        }
    }

    pub fn workload_identity_id(&self) -> Option<i64> {
        match self.credential {
            Some(Credential::WorkloadIdentity(id)) => Some(id),
            _ => None,
        }
    }
}

/// What [`RegistryEventStore::record_registry_events`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedEvents {
    /// Per event: new (true) or a retry of one kept before (false).
    pub taken: Vec<bool>,
    pub new_addresses: Vec<NewAddress>,
}

/// The new-address warning: how long a network stays known, and the audit record a new one
/// gets (composed by the service).
pub struct NewAddressCheck<'a> {
    pub window: chrono::TimeDelta,
    pub audit: &'a (dyn Fn(&NewAddress) -> AuditEvent + Send + Sync),
}

/// A registry notification envelope waiting in the inbox to be attributed and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEnvelope {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub envelope: String,
}

/// Which of the inbox's envelopes to take.
#[derive(Debug, Clone, Copy)]
pub enum InboxSelection<'a> {
    /// These (those still there).
    Ids(&'a [i64]),
    /// Those received before `before` that failed fewer than `attempts_below` times: left
    /// by a process that stopped before recording them, or whose recording failed.
    LeftBehind {
        before: DateTime<Utc>,
        attempts_below: u32,
    },
}

/// The credential an actor name stands for, with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCredential {
    pub actor: ActorName,
    pub credential: Credential,
    pub namespace_id: i64,
}

/// Who acted at the registry: a deploy token or a workload identity policy (through one of
/// its federated logins or exchanged credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    DeployToken(i64),
    WorkloadIdentity(i64),
}

/// The registry's notifications (`service::registry_events`).
#[async_trait]
pub trait RegistryEventStore: Send + Sync {
    /// The credentials these actor names stand for: deploy tokens (revoked and deleted ones
    /// included: an event may arrive after the revocation) and workload identity policies.
    async fn credentials_for_actors(
        &self,
        actors: &[ActorName],
    ) -> Result<Vec<EventCredential>, StoreError>;

    /// In one transaction: each event whose id was not taken in before is kept (a blob pull
    /// added to its actor's, repository's and day's row), moves its token's `last_used_at`
    /// forward and, with `new_addresses`, notes its token's network: one the token had not
    /// used within the window (while it used another) is a new address, recorded in the audit
    /// trail with the change. For each event whether it was new (false: a retry, nothing
    /// changed), and the new addresses.
    /// Also deletes the inbox envelopes `from_inbox` the events came from, in the same
    /// transaction: an envelope is gone exactly when its events are kept.
    async fn record_registry_events(
        &self,
        events: &[NewRegistryEvent],
        received_at: DateTime<Utc>,
        new_addresses: Option<&NewAddressCheck<'_>>,
        from_inbox: &[i64],
    ) -> Result<RecordedEvents, StoreError>;

    /// Writes an envelope, as received, to the inbox (one insert, committed); its id.
    async fn enqueue_registry_envelope(
        &self,
        envelope: &str,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Notes a failed attempt to record an inbox envelope; how many there were.
    async fn inbox_envelope_failed(&self, id: i64) -> Result<u32, StoreError>;

    /// Up to `limit` envelopes waiting in the inbox, the oldest first.
    async fn inbox_envelopes(
        &self,
        which: InboxSelection<'_>,
        limit: u64,
    ) -> Result<Vec<InboxEnvelope>, StoreError>;

    /// One page of a credential's events, the latest first.
    async fn registry_events_of(
        &self,
        credential: Credential,
        page: u64,
        per_page: u64,
    ) -> Result<Page<StoredRegistryEvent>, StoreError>;

    /// Turns the new-address mail on or off for a user.
    async fn set_new_address_mail(
        &self,
        user_id: i64,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The users among `user_ids` who asked for the new-address mail.
    async fn new_address_mail_users(&self, user_ids: &[i64]) -> Result<Vec<i64>, StoreError>;

    /// Claims the new-address mail about `network` of a token for a user: true the first
    /// time, false when it was claimed (sent) before.
    async fn claim_new_address_notice(
        &self,
        deploy_token_id: i64,
        network: &str,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives up a claim whose mail was not delivered.
    async fn release_new_address_notice(
        &self,
        deploy_token_id: i64,
        network: &str,
        user_id: i64,
    ) -> Result<(), StoreError>;

    /// Deletes events last seen before `events_before` (none: kept for ever) and receipts
    /// older than `receipts_before`; how many events went.
    async fn prune_registry_events(
        &self,
        events_before: Option<DateTime<Utc>>,
        receipts_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Everything the application needs from its database.
#[async_trait]
pub trait Store:
    NamespaceStore
    + DeployTokenStore
    + UserStore
    + AuditStore
    + NotificationStore
    + LoginFailureStore
    + WebStore
    + workload::WorkloadIdentityStore
    + RegistryEventStore
    + restrictions::RestrictionStore
    + lifecycle::TokenLifecycleStore
{
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
