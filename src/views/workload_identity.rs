//! Workload identity policies.

use serde::Serialize;

use super::Timestamp;
use crate::domain::workload_identity::{Conditions, WorkloadIdentity};

/// A workload identity policy: `GET /api/v4/{projects|groups}/:id/workload_identities[/:id]`;
/// `regauth workload-identity list|create --json`; inside the admin token API's answer for
/// an exchanged credential.
#[derive(Debug, Serialize)]
pub struct WorkloadIdentityView<'a> {
    pub id: i64,
    pub name: &'a str,
    /// What a federated login presents as its username (`gitlab+workload-<id>`).
    pub username: String,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub conditions: &'a Conditions,
    pub scopes: Vec<&'static str>,
    /// Seconds.
    pub max_ttl: u32,
    /// Comma-separated, `""` when none.
    pub ip_restriction_ranges: String,
    pub created_at: Timestamp,
    pub created_by: &'a str,
}

impl<'a> WorkloadIdentityView<'a> {
    pub fn new(policy: &'a WorkloadIdentity) -> Self {
        WorkloadIdentityView {
            id: policy.id,
            name: &policy.name,
            username: policy.username(),
            issuer: &policy.issuer,
            audience: &policy.audience,
            conditions: &policy.conditions,
            scopes: policy.scopes.names(),
            max_ttl: policy.max_ttl_seconds,
            ip_restriction_ranges: policy.restrictions.ip_ranges.to_text(),
            created_at: Timestamp(policy.created_at),
            created_by: &policy.created_by,
        }
    }
}

/// A new policy with what its creator should know about it (`warnings`, possibly empty):
/// `POST /api/v4/{projects|groups}/:id/workload_identities` (201).
#[derive(Debug, Serialize)]
pub struct CreatedWorkloadIdentityView<'a> {
    #[serde(flatten)]
    pub policy: WorkloadIdentityView<'a>,
    pub warnings: &'a [String],
}
