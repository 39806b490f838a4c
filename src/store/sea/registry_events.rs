//! [`RegistryEventStore`] for [`SeaStore`]: the registry's notifications, kept once each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{
    deploy_token, new_address_mail_subscriber, new_address_notice, registry_event,
    registry_event_address, registry_event_inbox, registry_event_receipt, workload_identity,
};
use sea_orm::sea_query::{CaseStatement, Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use super::{corrupt, insert_audit_events, SeaStore};
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::domain::registry_event::{
    network_of, note_network, ActorName, NewAddress, RegistryAction, RegistryEvent, SeenNetwork,
    StoredRegistryEvent, TargetKind,
};
use crate::store::{
    Credential, EventCredential, InboxEnvelope, InboxSelection, NewAddressCheck, NewRegistryEvent,
    Page, RecordedEvents, RegistryEventStore, StoreError,
};

fn stored_from_row(row: registry_event::Model) -> Result<StoredRegistryEvent, StoreError> {
    let action = RegistryAction::parse(&row.action)
        .ok_or_else(|| corrupt("registry_events", row.id, "unknown action"))?;
    let kind = TargetKind::parse(&row.target_kind)
        .ok_or_else(|| corrupt("registry_events", row.id, "unknown target kind"))?;
    Ok(StoredRegistryEvent {
        id: row.id,
        created_at: row.created_at,
        last_at: row.last_at,
        action,
        kind,
        actor: row.actor,
        deploy_token_id: row.deploy_token_id,
        repository: row.repository,
        from_repository: row.from_repository,
        tag: row.tag,
        digest: row.digest,
        media_type: row.media_type,
        size: row.size,
        address: row.address,
        user_agent: row.user_agent,
        count: row.count,
    })
}

/// The CASE keeps the later (or earlier) of the stored and the new time, on both databases.
const LATER_LAST_AT: &str = "CASE WHEN excluded.last_at > registry_events.last_at \
    THEN excluded.last_at ELSE registry_events.last_at END";
const EARLIER_FIRST_SEEN: &str =
    "CASE WHEN excluded.first_seen < registry_event_addresses.first_seen \
    THEN excluded.first_seen ELSE registry_event_addresses.first_seen END";
const LATER_LAST_SEEN: &str = "CASE WHEN excluded.last_seen > registry_event_addresses.last_seen \
    THEN excluded.last_seen ELSE registry_event_addresses.last_seen END";
const EARLIER_CREATED_AT: &str = "CASE WHEN excluded.created_at < registry_events.created_at \
    THEN excluded.created_at ELSE registry_events.created_at END";

/// Rows per multi-row statement: well under both databases' limits on bound parameters
/// (a `registry_events` row binds about twenty).
const ROWS_PER_STATEMENT: usize = 500;

/// Writes the receipts of the events' ids; the ids that were new (those seen before are a
/// retry). `RETURNING` names exactly the rows this transaction inserted, so two replicas
/// recording the same envelope at once take each event once between them.
async fn take_receipts<C: ConnectionTrait>(
    connection: &C,
    events: &[NewRegistryEvent],
    received_at: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let mut ids: Vec<&str> = events.iter().map(|new| new.event.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut fresh = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|id| registry_event_receipt::ActiveModel {
            event_id: Set((*id).to_owned()),
            received_at: Set(received_at),
        });
        let inserted = registry_event_receipt::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(registry_event_receipt::Column::EventId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_with_returning_keys(connection)
            .await;
        match inserted {
            Ok(keys) => fresh.extend(keys),
            // Every one of them seen before.
            Err(sea_orm::DbErr::RecordNotInserted) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(fresh)
}

/// Keeps the events taken: each whole, except blob pulls, added up per actor, repository and
/// day (first added up within the batch, so that one statement touches each row once).
async fn insert_events<C: ConnectionTrait>(
    connection: &C,
    kept: &[&NewRegistryEvent],
) -> Result<(), StoreError> {
    let mut whole = Vec::new();
    let mut added_up: Vec<(String, registry_event::ActiveModel, Tally)> = Vec::new();
    let mut row_of_key: HashMap<String, usize> = HashMap::new();
    for new in kept {
        let event = &new.event;
        let aggregate_key = event.aggregate_key();
        let row = registry_event::ActiveModel {
            event_id: Set(aggregate_key.is_none().then(|| event.id.clone())),
            aggregate_key: Set(aggregate_key.clone()),
            action: Set(event.action.as_str().to_owned()),
            target_kind: Set(event.kind.as_str().to_owned()),
            actor: Set(event.actor.clone()),
            deploy_token_id: Set(new.deploy_token_id()),
            workload_identity_id: Set(new.workload_identity_id()),
            namespace_id: Set(new.namespace_id),
            repository: Set(event.repository.clone()),
            from_repository: Set(event.from_repository.clone()),
            tag: Set(event.tag.clone()),
            // An aggregate counts many blobs: no one digest, size or media type is its own.
            digest: Set(aggregate_key
                .is_none()
                .then(|| event.digest.clone())
                .flatten()),
            media_type: Set(aggregate_key
                .is_none()
                .then(|| event.media_type.clone())
                .flatten()),
            size: Set(aggregate_key.is_none().then_some(event.size).flatten()),
            ..Default::default()
        };
        let Some(key) = aggregate_key else {
            whole.push(Tally::of(event).onto(row));
            continue;
        };
        match row_of_key.get(&key) {
            Some(&index) => added_up[index].2.add(event),
            None => {
                row_of_key.insert(key.clone(), added_up.len());
                added_up.push((key, row, Tally::of(event)));
            }
        }
    }
    // In key order, as every replica writes them (no deadlock between two batches).
    added_up.sort_by(|(a, ..), (b, ..)| a.cmp(b));
    let added_up: Vec<registry_event::ActiveModel> = added_up
        .into_iter()
        .map(|(_, row, tally)| tally.onto(row))
        .collect();
    for rows in whole.chunks(ROWS_PER_STATEMENT) {
        registry_event::Entity::insert_many(rows.iter().cloned())
            .exec_without_returning(connection)
            .await?;
    }
    for rows in added_up.chunks(ROWS_PER_STATEMENT) {
        registry_event::Entity::insert_many(rows.iter().cloned())
            .on_conflict(
                OnConflict::column(registry_event::Column::AggregateKey)
                    .value(
                        registry_event::Column::Count,
                        Expr::cust("registry_events.count + excluded.count"),
                    )
                    .value(registry_event::Column::LastAt, Expr::cust(LATER_LAST_AT))
                    .value(
                        registry_event::Column::CreatedAt,
                        Expr::cust(EARLIER_CREATED_AT),
                    )
                    // The latest pull's address and client describe the row.
                    .value(
                        registry_event::Column::Address,
                        Expr::cust("excluded.address"),
                    )
                    .value(
                        registry_event::Column::UserAgent,
                        Expr::cust("excluded.user_agent"),
                    )
                    .to_owned(),
            )
            .exec_without_returning(connection)
            .await?;
    }
    Ok(())
}

/// What a row of `registry_events` adds up: one event, or a batch's blob pulls of one actor,
/// repository and day.
struct Tally {
    count: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    address: Option<String>,
    user_agent: Option<String>,
}

impl Tally {
    fn of(event: &RegistryEvent) -> Tally {
        Tally {
            count: 1,
            first: event.at,
            last: event.at,
            address: event.address.clone(),
            user_agent: event.user_agent.clone(),
        }
    }

    /// One more: the latest pull's address and client describe the row.
    fn add(&mut self, event: &RegistryEvent) {
        self.count += 1;
        self.first = self.first.min(event.at);
        if event.at >= self.last {
            self.last = event.at;
            self.address = event.address.clone();
            self.user_agent = event.user_agent.clone();
        }
    }

    fn onto(self, mut row: registry_event::ActiveModel) -> registry_event::ActiveModel {
        row.count = Set(self.count);
        row.created_at = Set(self.first);
        row.last_at = Set(self.last);
        row.address = Set(self.address);
        row.user_agent = Set(self.user_agent);
        row
    }
}

/// Notes each token's networks (`note_network`), reading what each token is known to have
/// used once and writing each network touched once; the new addresses, recorded in the audit
/// trail with the change.
async fn note_networks<C: ConnectionTrait>(
    connection: &C,
    kept: &[&NewRegistryEvent],
    check: &NewAddressCheck<'_>,
) -> Result<Vec<NewAddress>, StoreError> {
    let mut by_token: BTreeMap<i64, Vec<(&NewRegistryEvent, &str)>> = BTreeMap::new();
    for new in kept {
        if let (Some(token_id), Some(address)) = (new.deploy_token_id(), &new.event.address) {
            by_token.entry(token_id).or_default().push((new, address));
        }
    }
    if by_token.is_empty() {
        return Ok(Vec::new());
    }
    let rows = registry_event_address::Entity::find()
        .filter(registry_event_address::Column::DeployTokenId.is_in(by_token.keys().copied()))
        .all(connection)
        .await?;
    let mut stored: HashMap<i64, Vec<registry_event_address::Model>> = HashMap::new();
    for row in rows {
        stored.entry(row.deploy_token_id).or_default().push(row);
    }
    let mut found = Vec::new();
    let mut noted = Vec::new();
    for (token_id, uses) in by_token {
        let mut known: Vec<SeenNetwork> = stored
            .remove(&token_id)
            .unwrap_or_default()
            .into_iter()
            .map(|row| SeenNetwork {
                network: row.network,
                first_seen: row.first_seen,
                last_seen: row.last_seen,
            })
            .collect();
        let mut touched = HashSet::new();
        for (new, address) in uses {
            let event = &new.event;
            let network = network_of(address);
            if note_network(&mut known, &network, event.at, check.window) {
                found.push(NewAddress {
                    deploy_token_id: token_id,
                    namespace_id: new.namespace_id,
                    actor: event.actor.clone(),
                    network: network.clone(),
                    address: address.to_owned(),
                    at: event.at,
                    action: event.action,
                    repository: event.repository.clone(),
                });
            }
            touched.insert(network);
        }
        noted.extend(
            known
                .into_iter()
                .filter(|seen| touched.contains(&seen.network))
                .map(|seen| (token_id, seen)),
        );
    }
    // In key order, as every replica writes them: two batches never wait on each other's
    // rows in opposite orders (a deadlock on PostgreSQL).
    noted.sort_by(|(a, a_seen), (b, b_seen)| (a, &a_seen.network).cmp(&(b, &b_seen.network)));
    let noted: Vec<registry_event_address::ActiveModel> = noted
        .into_iter()
        .map(|(token_id, seen)| registry_event_address::ActiveModel {
            deploy_token_id: Set(token_id),
            network: Set(seen.network),
            first_seen: Set(seen.first_seen),
            last_seen: Set(seen.last_seen),
            ..Default::default()
        })
        .collect();
    for rows in noted.chunks(ROWS_PER_STATEMENT) {
        registry_event_address::Entity::insert_many(rows.iter().cloned())
            .on_conflict(
                OnConflict::columns([
                    registry_event_address::Column::DeployTokenId,
                    registry_event_address::Column::Network,
                ])
                // Widened, never narrowed: another replica may have noted a later use since
                // this batch read the row.
                .value(
                    registry_event_address::Column::FirstSeen,
                    Expr::cust(EARLIER_FIRST_SEEN),
                )
                .value(
                    registry_event_address::Column::LastSeen,
                    Expr::cust(LATER_LAST_SEEN),
                )
                .to_owned(),
            )
            .exec_without_returning(connection)
            .await?;
    }
    let audit: Vec<_> = found.iter().map(|news| (check.audit)(news)).collect();
    insert_audit_events(connection, &audit).await?;
    Ok(found)
}

#[async_trait]
impl RegistryEventStore for SeaStore {
    async fn credentials_for_actors(
        &self,
        actors: &[ActorName],
    ) -> Result<Vec<EventCredential>, StoreError> {
        let mut ids = Vec::new();
        let mut usernames = Vec::new();
        let mut policy_ids = Vec::new();
        for actor in actors {
            match actor {
                ActorName::DeployTokenId(id) => ids.push(*id),
                ActorName::Username(name) => usernames.push(name.clone()),
                ActorName::WorkloadIdentityId(id) => policy_ids.push(*id),
                ActorName::Anonymous => {}
            }
        }
        let mut credentials = Vec::new();
        if !policy_ids.is_empty() {
            // A deleted policy's events are kept with their actor name only.
            let policies = workload_identity::Entity::find()
                .filter(workload_identity::Column::Id.is_in(policy_ids))
                .all(&self.db)
                .await?;
            credentials.extend(policies.into_iter().map(|row| EventCredential {
                actor: ActorName::WorkloadIdentityId(row.id),
                credential: Credential::WorkloadIdentity(row.id),
                namespace_id: row.namespace_id,
            }));
        }
        if ids.is_empty() && usernames.is_empty() {
            return Ok(credentials);
        }
        // Revoked and deleted tokens too: an event may arrive after the revocation.
        let rows = deploy_token::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(deploy_token::Column::Id.is_in(ids))
                            .add(deploy_token::Column::Username.is_null()),
                    )
                    .add(deploy_token::Column::Username.is_in(usernames)),
            )
            .all(&self.db)
            .await?;
        credentials.extend(rows.into_iter().map(|row| EventCredential {
            actor: match row.username {
                Some(name) => ActorName::Username(name),
                None => ActorName::DeployTokenId(row.id),
            },
            credential: Credential::DeployToken(row.id),
            namespace_id: row.namespace_id,
        }));
        Ok(credentials)
    }

    async fn record_registry_events(
        &self,
        events: &[NewRegistryEvent],
        received_at: DateTime<Utc>,
        new_addresses: Option<&NewAddressCheck<'_>>,
        from_inbox: &[i64],
    ) -> Result<RecordedEvents, StoreError> {
        // A handful of statements for the whole batch, not several per event: the
        // transaction holds SQLite's one write lock, which the receiver waits for.
        let transaction = self.db.begin().await?;
        for ids in from_inbox.chunks(ROWS_PER_STATEMENT) {
            registry_event_inbox::Entity::delete_many()
                .filter(registry_event_inbox::Column::Id.is_in(ids.iter().copied()))
                .exec(&transaction)
                .await?;
        }
        let fresh = take_receipts(&transaction, events, received_at).await?;
        // The first of the batch's events with a fresh id is taken; a later one with the
        // same id is a retry.
        let mut claimed = HashSet::new();
        let taken: Vec<bool> = events
            .iter()
            .map(|new| fresh.contains(&new.event.id) && claimed.insert(new.event.id.as_str()))
            .collect();
        let kept: Vec<&NewRegistryEvent> = events
            .iter()
            .zip(&taken)
            .filter_map(|(new, taken)| taken.then_some(new))
            .collect();
        insert_events(&transaction, &kept).await?;
        let found = match new_addresses {
            Some(check) => note_networks(&transaction, &kept, check).await?,
            None => Vec::new(),
        };
        // "Last used" is the last real registry action, moved only forward.
        let mut last_used: HashMap<i64, DateTime<Utc>> = HashMap::new();
        for new in &kept {
            if let Some(token_id) = new.deploy_token_id() {
                let at = last_used.entry(token_id).or_insert(new.event.at);
                *at = (*at).max(new.event.at);
            }
        }
        if !last_used.is_empty() {
            // One statement for all the batch's tokens: each its own time, by a CASE.
            let at_of_token = || {
                last_used
                    .iter()
                    .fold(CaseStatement::new(), |case, (token_id, at)| {
                        case.case(deploy_token::Column::Id.eq(*token_id), Expr::value(*at))
                    })
            };
            deploy_token::Entity::update_many()
                .col_expr(deploy_token::Column::LastUsedAt, at_of_token().into())
                .filter(deploy_token::Column::Id.is_in(last_used.keys().copied()))
                .filter(
                    Condition::any()
                        .add(deploy_token::Column::LastUsedAt.is_null())
                        .add(sea_orm::sea_query::ExprTrait::lt(
                            Expr::col(deploy_token::Column::LastUsedAt),
                            at_of_token(),
                        )),
                )
                .exec(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(RecordedEvents {
            taken,
            new_addresses: found,
        })
    }

    async fn enqueue_registry_envelope(
        &self,
        envelope: &str,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        if let Some(path) = &self.sqlite_path {
            if let Some(id) = super::inline_write::try_enqueue(path, envelope, received_at) {
                return Ok(id);
            }
        }
        let inserted = registry_event_inbox::Entity::insert(registry_event_inbox::ActiveModel {
            received_at: Set(received_at),
            envelope: Set(envelope.to_owned()),
            ..Default::default()
        })
        .exec(&self.db)
        .await?;
        Ok(inserted.last_insert_id)
    }

    async fn inbox_envelope_failed(&self, id: i64) -> Result<u32, StoreError> {
        registry_event_inbox::Entity::update_many()
            .col_expr(
                registry_event_inbox::Column::Attempts,
                Expr::cust("attempts + 1"),
            )
            .filter(registry_event_inbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        let attempts = registry_event_inbox::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map_or(0, |row| row.attempts);
        Ok(u32::try_from(attempts).unwrap_or(0))
    }

    async fn inbox_envelopes(
        &self,
        which: InboxSelection<'_>,
        limit: u64,
    ) -> Result<Vec<InboxEnvelope>, StoreError> {
        let query = registry_event_inbox::Entity::find();
        let query = match which {
            InboxSelection::Ids(ids) => {
                query.filter(registry_event_inbox::Column::Id.is_in(ids.iter().copied()))
            }
            InboxSelection::LeftBehind {
                before,
                attempts_below,
            } => query
                .filter(registry_event_inbox::Column::ReceivedAt.lt(before))
                .filter(registry_event_inbox::Column::Attempts.lt(attempts_below)),
        };
        Ok(query
            .order_by_asc(registry_event_inbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| InboxEnvelope {
                id: row.id,
                received_at: row.received_at,
                envelope: row.envelope,
            })
            .collect())
    }

    async fn registry_events_of(
        &self,
        credential: Credential,
        page: u64,
        per_page: u64,
    ) -> Result<Page<StoredRegistryEvent>, StoreError> {
        let query = registry_event::Entity::find().filter(match credential {
            Credential::DeployToken(id) => registry_event::Column::DeployTokenId.eq(id),
            Credential::WorkloadIdentity(id) => registry_event::Column::WorkloadIdentityId.eq(id),
        });
        let total = query.clone().count(&self.db).await?;
        let items = query
            .order_by_desc(registry_event::Column::LastAt)
            .order_by_desc(registry_event::Column::Id)
            .offset(page.saturating_sub(1).saturating_mul(per_page))
            .limit(per_page)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total })
    }

    async fn set_new_address_mail(
        &self,
        user_id: i64,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if on {
            new_address_mail_subscriber::Entity::insert(new_address_mail_subscriber::ActiveModel {
                user_id: Set(user_id),
                created_at: Set(now),
            })
            .on_conflict(
                OnConflict::column(new_address_mail_subscriber::Column::UserId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        } else {
            new_address_mail_subscriber::Entity::delete_by_id(user_id)
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    async fn new_address_mail_users(&self, user_ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(new_address_mail_subscriber::Entity::find()
            .filter(new_address_mail_subscriber::Column::UserId.is_in(user_ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.user_id)
            .collect())
    }

    async fn claim_new_address_notice(
        &self,
        deploy_token_id: i64,
        network: &str,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = new_address_notice::Entity::insert(new_address_notice::ActiveModel {
            deploy_token_id: Set(deploy_token_id),
            network: Set(network.to_owned()),
            user_id: Set(user_id),
            claimed_at: Set(now),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                new_address_notice::Column::DeployTokenId,
                new_address_notice::Column::Network,
                new_address_notice::Column::UserId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(inserted == 1)
    }

    async fn release_new_address_notice(
        &self,
        deploy_token_id: i64,
        network: &str,
        user_id: i64,
    ) -> Result<(), StoreError> {
        new_address_notice::Entity::delete_many()
            .filter(new_address_notice::Column::DeployTokenId.eq(deploy_token_id))
            .filter(new_address_notice::Column::Network.eq(network))
            .filter(new_address_notice::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn prune_registry_events(
        &self,
        events_before: Option<DateTime<Utc>>,
        receipts_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut pruned = 0;
        if let Some(before) = events_before {
            pruned += registry_event::Entity::delete_many()
                .filter(registry_event::Column::LastAt.lt(before))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        registry_event_receipt::Entity::delete_many()
            .filter(registry_event_receipt::Column::ReceivedAt.lt(receipts_before))
            .exec(&self.db)
            .await?;
        Ok(pruned)
    }
}
