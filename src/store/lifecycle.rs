//! Persistence of secret rotation and of groups' token lifetime limits (issue #27, items 3
//! and 4): [`TokenLifecycleStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::token_lifetime::LifetimeLimits;
use crate::domain::{AuditEvent, DeployToken, NamespacePath, PersonalAccessToken, SecretDigest};

/// One rotation as the store applies it: the current digest becomes the previous one (valid
/// until `previous_secret_expires_at`), `new_digest` the current one. `Debug` leaves the
/// digest and the sealed CI secret out.
pub struct SecretChange<'a> {
    pub new_digest: &'a SecretDigest,
    pub previous_secret_expires_at: DateTime<Utc>,
    /// The token's expiry after the rotation (unchanged unless the request extended it).
    pub expires_at: Option<DateTime<Utc>>,
    /// Deploy tokens named `gitlab-deploy-token`: the new secret sealed for CI.
    pub ci_secret: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for SecretChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretChange")
            .field(
                "previous_secret_expires_at",
                &self.previous_secret_expires_at,
            )
            .field("expires_at", &self.expires_at)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait TokenLifecycleStore: Send + Sync {
    /// Rotates a live (neither revoked nor deleted) deploy token and records `audit`, in one
    /// transaction; its refresh tokens are left alone (they end with the token). `None` when
    /// there is no such live token.
    async fn rotate_deploy_token(
        &self,
        id: i64,
        change: &SecretChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// Rotates a personal access token that is not revoked, and records `audit`, in one
    /// transaction; `None` when there is none.
    async fn rotate_personal_access_token(
        &self,
        id: i64,
        change: &SecretChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;

    /// The limits set by the groups among `paths` (one entry per group that set any), with
    /// the group's full path.
    async fn group_token_limits(
        &self,
        paths: &[NamespacePath],
    ) -> Result<Vec<(String, LifetimeLimits)>, StoreError>;

    /// Sets (replaces) a group's own limits.
    async fn set_group_token_limits(
        &self,
        group_id: i64,
        limits: LifetimeLimits,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
