//! The registry's notifications taken in (`POST /api/v4/container_registry_event/events`):
//! each envelope written to the inbox as it came ([`accept`]), then, in batches
//! ([`record_inbox`], driven by `registry_event_inbox`), each event attributed to the
//! credential its `actor.name` (the registry JWT's `sub`) names, then kept once however often
//! the registry retries it. Events whose actor is unknown, and
//! anonymous pulls, are kept too, without a credential. Odd events are set apart for the
//! caller to log and count: one never costs the envelope its other events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::registry_event::NewAddress;
use crate::domain::registry_event::{
    matching_issuance, parse_envelope, ActorName, Issuance, IssueMatch, OddEvent, RegistryAction,
    RegistryEvent, StoredRegistryEvent,
};
use crate::domain::{ActorKind, AuditAction, AuditEvent, DeployToken, Namespace};
use crate::error::Error;
use crate::service::caller::Caller;
use crate::service::deploy_tokens;
use crate::store::{
    Credential, EventCredential, InboxEnvelope, NewAddressCheck, NewRegistryEvent, Page, Store,
};

/// Receipts are kept this long. A retry that could count twice is one of an event already
/// written whose answer the registry did not see: it comes within its timeout and backoff
/// (seconds). An event the registry could not deliver at all has no receipt to lose. A day
/// is far more than enough, and bounds the table by a day of events.
pub const RECEIPT_DAYS: i64 = 1;

/// An envelope taken in: written to the inbox (`inbox_id`, none when it held no event to
/// keep), its odd events set apart for the caller to log and count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub inbox_id: Option<i64>,
    /// Events to be recorded.
    pub events: usize,
    pub odd: Vec<OddEvent>,
}

/// Takes one envelope in: `Ok` once it is committed to the inbox, one insert, so that
/// the registry (which delivers one event at a time, waiting for each answer) is answered
/// quickly; [`record_inbox`] attributes and records its events right after. An envelope that
/// is not one (not JSON, no `events`) is refused here; an odd event is not (see `parse_envelope`).
#[tracing::instrument(skip_all)]
pub async fn accept(store: &dyn Store, body: &[u8], now: DateTime<Utc>) -> Result<Accepted, Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::InvalidRequest("the envelope is not UTF-8".to_owned()))?;
    let parsed =
        parse_envelope(body, now).map_err(|error| Error::InvalidRequest(error.to_string()))?;
    let mut accepted = Accepted::default();
    for event in parsed {
        match event {
            Ok(_) => accepted.events += 1,
            Err(odd) => accepted.odd.push(odd),
        }
    }
    if accepted.events > 0 {
        accepted.inbox_id = Some(store.enqueue_registry_envelope(text, now).await?);
    }
    Ok(accepted)
}

/// What became of the events of the envelopes recorded from the inbox.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Intake {
    /// Kept, by action.
    pub recorded: Vec<RegistryAction>,
    /// Seen before (the registry retried), by action.
    pub duplicates: Vec<RegistryAction>,
    /// Tokens seen acting from a network they had not used within the window.
    pub new_addresses: Vec<NewAddress>,
}

/// Records the events of these inbox envelopes in one transaction that also deletes them
/// from the inbox: each event attributed to its credential and kept once, however often the
/// registry retried it. Odd events were counted when the envelope was accepted and are
/// skipped. `new_address_days`: how long a network a token acted from stays known (0: no
/// new-address warning).
#[tracing::instrument(skip_all, fields(envelopes = envelopes.len()))]
pub async fn record_inbox(
    store: &dyn Store,
    envelopes: &[InboxEnvelope],
    now: DateTime<Utc>,
    new_address_days: u32,
) -> Result<Intake, Error> {
    let mut events = Vec::new();
    for envelope in envelopes {
        // Accepted envelopes parse; one that no longer does (written by another version)
        // has nothing to record and leaves the inbox all the same.
        if let Ok(parsed) = parse_envelope(envelope.envelope.as_bytes(), envelope.received_at) {
            events.extend(parsed.into_iter().flatten());
        }
    }
    let mut actors: Vec<ActorName> = events
        .iter()
        .map(|event| ActorName::parse(&event.actor))
        .collect();
    actors.sort();
    actors.dedup();
    let credentials = if actors.is_empty() {
        Vec::new()
    } else {
        store.credentials_for_actors(&actors).await?
    };
    let new = attribute(events, &credentials);
    let check = NewAddressCheck {
        window: chrono::TimeDelta::days(i64::from(new_address_days)),
        audit: &new_address_audit,
    };
    let ids: Vec<i64> = envelopes.iter().map(|envelope| envelope.id).collect();
    let recorded = store
        .record_registry_events(&new, now, (new_address_days > 0).then_some(&check), &ids)
        .await?;
    let mut intake = Intake {
        new_addresses: recorded.new_addresses,
        ..Intake::default()
    };
    for (new, taken) in new.iter().zip(recorded.taken) {
        if taken {
            intake.recorded.push(new.event.action);
        } else {
            intake.duplicates.push(new.event.action);
        }
    }
    Ok(intake)
}

/// The audit record of a token seen acting from a new network.
fn new_address_audit(news: &NewAddress) -> AuditEvent {
    AuditEvent {
        created_at: news.at,
        actor_kind: ActorKind::DeployToken,
        actor: news.actor.clone(),
        action: AuditAction::DeployTokenNewAddress,
        deploy_token_id: Some(news.deploy_token_id),
        namespace_id: news.namespace_id,
        ip_address: Some(news.address.clone()),
        details: serde_json::json!({
            "network": news.network,
            "action": news.action.as_str(),
            "repository": news.repository,
        }),
    }
}

/// Each event with the deploy token its actor names, if any.
pub fn attribute(
    events: Vec<RegistryEvent>,
    credentials: &[EventCredential],
) -> Vec<NewRegistryEvent> {
    let by_actor: HashMap<&ActorName, &EventCredential> = credentials
        .iter()
        .map(|credential| (&credential.actor, credential))
        .collect();
    events
        .into_iter()
        .map(|event| {
            let credential = by_actor.get(&ActorName::parse(&event.actor)).copied();
            NewRegistryEvent {
                credential: credential.map(|c| c.credential),
                namespace_id: credential.map(|c| c.namespace_id),
                event,
            }
        })
        .collect()
}

/// One page of what a deploy token did at the registry, the latest first: for whoever may
/// read the tokens of its owner. `owner` `None` (the command line): the token's own owner.
#[tracing::instrument(skip_all)]
pub async fn of_deploy_token(
    store: &dyn Store,
    caller: &Caller,
    owner: Option<&Namespace>,
    deploy_token_id: i64,
    page: u64,
    per_page: u64,
) -> Result<(DeployToken, Page<StoredRegistryEvent>), Error> {
    let token = match owner {
        Some(owner) => deploy_tokens::get(store, caller, owner, deploy_token_id).await?,
        None => {
            let token = store
                .find_deploy_token(deploy_token_id)
                .await?
                .ok_or_else(|| Error::not_found("Deploy token", deploy_token_id))?;
            deploy_tokens::get(store, caller, &token.owner, deploy_token_id).await?
        }
    };
    let events = store
        .registry_events_of(Credential::DeployToken(token.id), page, per_page)
        .await?;
    Ok((token, events))
}

/// One page of what a workload identity policy's jobs and pods did at the registry, the
/// latest first: for whoever may read the policies of `owner`.
#[tracing::instrument(skip_all)]
pub async fn of_workload_identity(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    policy_id: i64,
    page: u64,
    per_page: u64,
) -> Result<Page<StoredRegistryEvent>, Error> {
    let policy = crate::service::workload_identity::get(store, caller, owner, policy_id).await?;
    Ok(store
        .registry_events_of(Credential::WorkloadIdentity(policy.id), page, per_page)
        .await?)
}

/// Most issuance records looked at for one page of events.
const ISSUANCES_LOOKED_AT: u64 = 5_000;

/// For each event, the registry token regauth issued that most likely did it (best effort:
/// the event names the credential, not the token; see `matching_issuance`). One query for the
/// page: the issuance records from a lifetime before its first event to just after its last.
pub async fn issued_tokens_behind(
    store: &dyn Store,
    deploy_token_id: i64,
    events: &[StoredRegistryEvent],
    token_ttl: std::time::Duration,
) -> Result<Vec<Option<(Issuance, IssueMatch)>>, Error> {
    let (Some(earliest), Some(latest)) = (
        events.iter().map(|event| event.last_at).min(),
        events.iter().map(|event| event.last_at).max(),
    ) else {
        return Ok(Vec::new());
    };
    let ttl = chrono::TimeDelta::from_std(token_ttl).unwrap_or(chrono::TimeDelta::MAX);
    // An aggregated issue record spans about a second (the usage writer's flush).
    let slack = chrono::TimeDelta::seconds(10);
    let from = earliest.checked_sub_signed(ttl + slack).unwrap_or(earliest);
    let issuances: Vec<Issuance> = store
        .registry_token_issues(deploy_token_id, from, latest + slack, ISSUANCES_LOOKED_AT)
        .await?
        .into_iter()
        .map(|record| Issuance {
            last: record.details["last"]
                .as_str()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map_or(record.created_at, |at| at.with_timezone(&Utc)),
            first: record.created_at,
            address: record.ip_address,
            granted: record.details["granted"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    Ok(events
        .iter()
        .map(|event| {
            matching_issuance(event, &issuances, ttl)
                .map(|(issuance, confidence)| (issuance.clone(), confidence))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::registry_event::TargetKind;

    fn event(actor: &str) -> RegistryEvent {
        RegistryEvent {
            id: format!("id-{actor}"),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            action: RegistryAction::Push,
            kind: TargetKind::Manifest,
            actor: actor.into(),
            repository: "a/b".into(),
            from_repository: None,
            tag: Some("v1".into()),
            digest: Some("sha256:1".into()),
            media_type: None,
            size: None,
            address: None,
            user_agent: None,
        }
    }

    #[test]
    fn events_are_linked_to_the_credential_their_actor_names_and_unknown_actors_are_kept() {
        let credentials = [
            EventCredential {
                actor: ActorName::DeployTokenId(5),
                credential: Credential::DeployToken(5),
                namespace_id: 1,
            },
            EventCredential {
                actor: ActorName::Username("ci".into()),
                credential: Credential::DeployToken(9),
                namespace_id: 2,
            },
            EventCredential {
                actor: ActorName::WorkloadIdentityId(3),
                credential: Credential::WorkloadIdentity(3),
                namespace_id: 4,
            },
        ];
        let linked = attribute(
            vec![
                event("gitlab+deploy-token-5"),
                event("ci"),
                event("stranger"),
                event(""),
                event("gitlab+workload-3"),
                event("gitlab+workload-03"),
            ],
            &credentials,
        );
        let found: Vec<Option<Credential>> = linked.iter().map(|new| new.credential).collect();
        assert_eq!(
            found,
            [
                Some(Credential::DeployToken(5)),
                Some(Credential::DeployToken(9)),
                None,
                None,
                Some(Credential::WorkloadIdentity(3)),
                None,
            ]
        );
        assert_eq!(linked[1].namespace_id, Some(2));
        assert_eq!(linked[2].event.actor, "stranger");
        assert_eq!(linked[4].deploy_token_id(), None);
        assert_eq!(linked[4].workload_identity_id(), Some(3));
    }
}
