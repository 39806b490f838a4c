//! Persistence of address allow-lists set after creation (issue #27): a deploy token's
//! `ip_restriction_ranges` (PUT) and a group's. Patterns and a token's first ranges are
//! written with the token itself (`DeployTokenStore::create_deploy_token`).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::address_range::IpRanges;
use crate::domain::{AuditEvent, DeployToken, NamespacePath};

#[async_trait]
pub trait RestrictionStore: Send + Sync {
    /// Replaces a live token's allow-list (empty clears it) and records `audit`, in one
    /// transaction; the token as it is now, or `None` when there is no such live token.
    async fn set_deploy_token_ip_ranges(
        &self,
        id: i64,
        ranges: &IpRanges,
        audit: &AuditEvent,
    ) -> Result<Option<DeployToken>, StoreError>;

    /// Replaces a group's allow-list (empty clears it) and records `audit`; false when no
    /// group has that id.
    async fn set_group_ip_ranges(
        &self,
        group_id: i64,
        ranges: &IpRanges,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Replaces a personal access token's allow-list; false when there is no such token.
    async fn set_personal_access_token_ip_ranges(
        &self,
        id: i64,
        ranges: &IpRanges,
    ) -> Result<bool, StoreError>;

    /// A namespace's own allow-list (groups only ever have one).
    async fn namespace_ip_ranges(&self, namespace_id: i64) -> Result<IpRanges, StoreError>;

    /// The non-empty allow-lists of the groups at or above `path`, outermost first: what
    /// every token below them must also satisfy.
    async fn group_ip_ranges_above(
        &self,
        path: &NamespacePath,
    ) -> Result<Vec<IpRanges>, StoreError>;
}
