//! What the registry reported: a token's or a policy's events, and the answer to the
//! registry's own notification.

use serde::Serialize;

use super::Timestamp;
use crate::domain::registry_event::{Issuance, IssueMatch, StoredRegistryEvent};

/// One registry event of a token or a workload identity: what it did to which repository,
/// from where, when. Blob pulls of a day are one entry (`count`, first at `created_at`, last
/// at `last_at`). `GET /api/v4/{projects|groups}/:id/deploy_tokens/:token_id/events`, `GET
/// .../workload_identities/:policy_id/events`; `regauth deploy-token events --json`.
#[derive(Debug, Serialize)]
pub struct RegistryEventView<'a> {
    pub id: i64,
    pub action: &'static str,
    pub target: &'static str,
    pub repository: &'a str,
    pub from_repository: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub media_type: Option<&'a str>,
    pub size: Option<i64>,
    pub address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub actor: &'a str,
    pub count: i64,
    pub created_at: Timestamp,
    pub last_at: Timestamp,
    /// The registry token regauth issued that most likely did it (best effort); `null` when
    /// none is known or not looked for.
    pub issued_token: Option<IssuedTokenView<'a>>,
}

/// The registry token behind an event (in [`RegistryEventView`]).
#[derive(Debug, Serialize)]
pub struct IssuedTokenView<'a> {
    pub issued_at: Timestamp,
    pub address: Option<&'a str>,
    /// `repository:<name>:<actions>` entries separated by spaces.
    pub granted: &'a str,
    /// How sure the link is: `same_address` or `other_address`.
    #[serde(rename = "match")]
    pub confidence: &'static str,
}

impl<'a> RegistryEventView<'a> {
    pub fn new(event: &'a StoredRegistryEvent, issued: Option<&'a (Issuance, IssueMatch)>) -> Self {
        RegistryEventView {
            id: event.id,
            action: event.action.as_str(),
            target: event.kind.as_str(),
            repository: &event.repository,
            from_repository: event.from_repository.as_deref(),
            tag: event.tag.as_deref(),
            digest: event.digest.as_deref(),
            media_type: event.media_type.as_deref(),
            size: event.size,
            address: event.address.as_deref(),
            user_agent: event.user_agent.as_deref(),
            actor: &event.actor,
            count: event.count,
            created_at: Timestamp(event.created_at),
            last_at: Timestamp(event.last_at),
            issued_token: issued.map(|(issuance, confidence)| IssuedTokenView {
                issued_at: Timestamp(issuance.first),
                address: issuance.address.as_deref(),
                granted: &issuance.granted,
                confidence: confidence.as_str(),
            }),
        }
    }
}

/// The answer to a notification envelope: how many events were written to the inbox (to be
/// recorded right after) and how many were set aside. `POST
/// /api/v4/container_registry_event/events`.
#[derive(Debug, Serialize)]
pub struct EnvelopeReceiptView {
    pub accepted: usize,
    pub odd: usize,
}
