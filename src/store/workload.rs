//! Persistence of workload identity policies ([`WorkloadIdentityStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::workload_identity::{NewWorkloadIdentity, WorkloadIdentity};
use crate::domain::{AuditEvent, Namespace, ScopeSet, SecretDigest};

/// Builds the audit record of a policy once the store knows its id.
pub type PolicyAudit<'a> = &'a (dyn for<'t> Fn(&'t WorkloadIdentity) -> AuditEvent + Send + Sync);

/// What one token exchange stores: the `jti` (so that the token is never exchanged again)
/// and the credential minted. Without a `jti`: a refresh credential of a direct login
/// (`offline_token`), which may be asked for at every login.
#[derive(Debug)]
pub struct NewWorkloadCredential<'a> {
    pub policy_id: i64,
    pub issuer: &'a str,
    pub jti: Option<&'a str>,
    /// Until when the `jti` is kept: the OIDC token's `exp` plus the leeway.
    pub jti_expires_at: DateTime<Utc>,
    pub digest: &'a SecretDigest,
    pub scopes: ScopeSet,
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// A minted credential with its policy.
#[derive(Debug, Clone)]
pub struct WorkloadCredential {
    pub id: i64,
    pub policy: WorkloadIdentity,
    pub scopes: ScopeSet,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait WorkloadIdentityStore: Send + Sync {
    /// Stores a validated policy with its audit record, in one transaction.
    async fn create_workload_identity(
        &self,
        owner: &Namespace,
        policy: &NewWorkloadIdentity,
        created_by: &str,
        now: DateTime<Utc>,
        audit: PolicyAudit<'_>,
    ) -> Result<WorkloadIdentity, StoreError>;

    /// The policies of one namespace, oldest first.
    async fn list_workload_identities(
        &self,
        owner: &Namespace,
    ) -> Result<Vec<WorkloadIdentity>, StoreError>;

    /// One policy with its owner: the federated login's lookup (by the username's id).
    async fn find_workload_identity(&self, id: i64)
        -> Result<Option<WorkloadIdentity>, StoreError>;

    /// Deletes a policy with its audit record; false when there was none.
    async fn delete_workload_identity(
        &self,
        id: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// The policies trusting one issuer (the exchange without `resource`).
    async fn workload_identities_of_issuer(
        &self,
        issuer: &str,
    ) -> Result<Vec<WorkloadIdentity>, StoreError>;

    /// Records the `jti` and the credential with its audit record, in one transaction.
    /// `Ok(None)` when the `jti` was exchanged before (a replay): nothing is stored then.
    async fn exchange_workload_token(
        &self,
        credential: NewWorkloadCredential<'_>,
        audit: &(dyn for<'t> Fn(i64) -> AuditEvent + Send + Sync),
    ) -> Result<Option<i64>, StoreError>;

    /// The credential with this digest and its policy (expired ones too: the caller checks).
    async fn find_workload_credential(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<WorkloadCredential>, StoreError>;

    /// Deletes one credential (revoked as leaked) with its audit record, in one transaction;
    /// false when there was none.
    async fn delete_workload_credential(
        &self,
        id: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Deletes credentials and exchanged `jti`s whose time has passed.
    async fn delete_expired_workload_credentials(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// The most recent federated logins through one policy, newest first.
    async fn recent_workload_logins(
        &self,
        policy: &WorkloadIdentity,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}
