//! [`RegistryEventStore`] for [`SeaStore`]: the registry's notifications, kept once each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{
    deploy_token, new_address_mail_subscriber, new_address_notice, registry_event,
    registry_event_address, registry_event_receipt, workload_identity,
};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::{corrupt, insert_audit_events, SeaStore};
use crate::domain::registry_event::{
    network_of, ActorName, NewAddress, RegistryAction, StoredRegistryEvent, TargetKind,
};
use crate::store::{
    Credential, EventCredential, NewAddressCheck, NewRegistryEvent, Page, RecordedEvents,
    RegistryEventStore, StoreError,
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
const EARLIER_CREATED_AT: &str = "CASE WHEN excluded.created_at < registry_events.created_at \
    THEN excluded.created_at ELSE registry_events.created_at END";

/// Notes that the token acted from `network` at `at`; true when that is news: the token had
/// not used it within `window` before `at`, and had used another network (its first is not).
async fn note_network<C: ConnectionTrait>(
    connection: &C,
    token_id: i64,
    network: &str,
    at: DateTime<Utc>,
    window: chrono::TimeDelta,
) -> Result<bool, StoreError> {
    let known = registry_event_address::Entity::find()
        .filter(registry_event_address::Column::DeployTokenId.eq(token_id))
        .all(connection)
        .await?;
    let this = known.iter().find(|row| row.network == network);
    let since = at.checked_sub_signed(window).unwrap_or(at);
    let news = match this {
        // Seen within the window before this event, or after it (delivered out of order).
        Some(row) if row.last_seen >= since && row.first_seen <= at => false,
        Some(_) => true,
        None => !known.is_empty(),
    };
    match this {
        Some(row) => {
            let mut update: registry_event_address::ActiveModel = row.clone().into();
            update.last_seen = Set(row.last_seen.max(at));
            update.first_seen = Set(row.first_seen.min(at));
            update.update(connection).await?;
        }
        None => {
            registry_event_address::Entity::insert(registry_event_address::ActiveModel {
                deploy_token_id: Set(token_id),
                network: Set(network.to_owned()),
                first_seen: Set(at),
                last_seen: Set(at),
                ..Default::default()
            })
            .exec_without_returning(connection)
            .await?;
        }
    }
    Ok(news)
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
    ) -> Result<RecordedEvents, StoreError> {
        let transaction = self.db.begin().await?;
        let mut taken = Vec::with_capacity(events.len());
        let mut found = Vec::new();
        for new in events {
            let event = &new.event;
            // The receipt decides: an id seen before (a retry) changes nothing.
            let receipt =
                registry_event_receipt::Entity::insert(registry_event_receipt::ActiveModel {
                    event_id: Set(event.id.clone()),
                    received_at: Set(received_at),
                })
                .on_conflict(
                    OnConflict::column(registry_event_receipt::Column::EventId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&transaction)
                .await?;
            if receipt != 1 {
                taken.push(false);
                continue;
            }
            taken.push(true);
            let aggregate_key = event.aggregate_key();
            let row = registry_event::ActiveModel {
                created_at: Set(event.at),
                last_at: Set(event.at),
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
                address: Set(event.address.clone()),
                user_agent: Set(event.user_agent.clone()),
                count: Set(1),
                ..Default::default()
            };
            let insert = registry_event::Entity::insert(row);
            let insert = if aggregate_key.is_some() {
                insert.on_conflict(
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
            } else {
                insert
            };
            insert.exec_without_returning(&transaction).await?;
            if let (Some(check), Some(token_id), Some(address)) =
                (new_addresses, new.deploy_token_id(), &event.address)
            {
                let network = network_of(address);
                if note_network(&transaction, token_id, &network, event.at, check.window).await? {
                    let news = NewAddress {
                        deploy_token_id: token_id,
                        namespace_id: new.namespace_id,
                        actor: event.actor.clone(),
                        network,
                        address: address.clone(),
                        at: event.at,
                        action: event.action,
                        repository: event.repository.clone(),
                    };
                    insert_audit_events(&transaction, &[(check.audit)(&news)]).await?;
                    found.push(news);
                }
            }
            if let Some(token_id) = new.deploy_token_id() {
                // "Last used" is the last real registry action, moved only forward.
                deploy_token::Entity::update_many()
                    .col_expr(deploy_token::Column::LastUsedAt, Expr::value(event.at))
                    .filter(deploy_token::Column::Id.eq(token_id))
                    .filter(
                        Condition::any()
                            .add(deploy_token::Column::LastUsedAt.is_null())
                            .add(deploy_token::Column::LastUsedAt.lt(event.at)),
                    )
                    .exec(&transaction)
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(RecordedEvents {
            taken,
            new_addresses: found,
        })
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
