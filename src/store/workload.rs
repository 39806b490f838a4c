//! Persistence of workload identity policies ([`WorkloadIdentityStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::workload_identity::{NewWorkloadIdentity, WorkloadIdentity};
use crate::domain::{AuditEvent, Namespace};

/// Builds the audit record of a policy once the store knows its id.
pub type PolicyAudit<'a> = &'a (dyn for<'t> Fn(&'t WorkloadIdentity) -> AuditEvent + Send + Sync);

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

    /// The most recent federated logins through one policy, newest first.
    async fn recent_workload_logins(
        &self,
        policy: &WorkloadIdentity,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}
