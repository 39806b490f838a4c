//! Recording deploy-token use without a database write, or a wake-up of another thread, per
//! token request: each issued registry token is aggregated in its request thread's own slot
//! (`service::per_thread`); a background task collects the slots every flush interval (1 s)
//! — or sooner when a slot holds a full batch — and writes one audit record per token,
//! address, service and grant seen in it
//! (`details.count` requests, the first at `created_at`, the last at `details.last`), and
//! `last_used_at` at most once per token per minute (per replica). The trail still says which
//! token, when, from where and what was granted, while its writes grow with the number of
//! distinct callers, not with the request rate. Refused logins and other audit events go through
//! a channel to the same task (one record each), so that a flood of them is a few batched
//! writes.
//!
//! The trade-off: events still in memory are lost if the process is killed hard; a graceful
//! stop flushes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::domain::{ActorKind, AuditAction, AuditEvent};
use crate::error::Report;
use crate::service::per_thread::PerThread;
use crate::store::Store;

/// Events buffered before the channel refuses more (and they are dropped, with a warning).
const CHANNEL_CAPACITY: usize = 16_384;
/// This many distinct aggregates (in one thread's slot, or in the channel's batch) are
/// written at once, without waiting for the interval.
const BATCH_SIZE: usize = 512;
/// While a write waits for the database, what arrives is aggregated for the next one, up to
/// this many distinct aggregates and events; beyond it records are dropped (and counted).
const MAX_PENDING: usize = 100_000;
/// Distinct aggregates one thread's slot holds before it drops uses (and counts them): the
/// writer empties the slots every interval, so only a flood of distinct callers within one
/// interval reaches it.
const MAX_PENDING_PER_SLOT: usize = 20_000;
/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// One successful registry token issue.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub deploy_token_id: i64,
    pub namespace_id: i64,
    pub username: String,
    pub at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub service: String,
    pub granted: String,
    /// Whether this use moves `last_used_at`: not when the registry reports what the token
    /// really did (its notifications do then, `service::registry_events`).
    pub marks_last_used: bool,
}

/// What goes through the writer's channel (token uses go through the per-thread slots).
enum Record {
    Audit(AuditEvent),
    /// A per-request event whose repeats within a flush become one record with a count
    /// (federated logins: the same job token from the same address for the same grant).
    Counted(AuditEvent),
}

#[derive(Clone)]
pub struct UsageRecorder {
    sender: mpsc::Sender<Record>,
    uses: Arc<PendingUses>,
}

/// The token uses not yet collected by the writer, per request thread.
struct PendingUses {
    slots: PerThread<Aggregates>,
    /// How many distinct aggregates a slot may hold (0: a recorder whose uses go nowhere).
    per_slot: usize,
    /// Uses dropped because their slot was full, reported by the writer.
    dropped: AtomicU64,
    /// A slot reached a batch: the writer collects without waiting for the interval.
    batch_ready: Notify,
}

impl PendingUses {
    fn new(per_slot: usize) -> PendingUses {
        PendingUses {
            slots: PerThread::new(),
            per_slot,
            dropped: AtomicU64::new(0),
            batch_ready: Notify::new(),
        }
    }

    /// Moves every slot's uses into `batch` (up to `MAX_PENDING` distinct aggregates; beyond
    /// it they are counted in `dropped`).
    fn collect_into(&self, batch: &mut Aggregates, dropped: &mut u64) {
        for slot in self.slots.take_all() {
            *dropped += batch.merge_uses(slot, MAX_PENDING);
        }
        *dropped += self.dropped.swap(0, Ordering::Relaxed);
    }
}

impl UsageRecorder {
    /// Starts the writer task; it ends (after a last flush) when every recorder is dropped.
    /// (How long the records are kept is `service::audit_retention`'s.)
    pub fn start(store: Arc<dyn Store>, flush_every: Duration) -> (UsageRecorder, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let uses = Arc::new(PendingUses::new(MAX_PENDING_PER_SLOT));
        let task = tokio::spawn(write_batches(
            store,
            receiver,
            Arc::clone(&uses),
            flush_every,
        ));
        (UsageRecorder { sender, uses }, task)
    }

    /// Never blocks the request, and wakes no other thread (but once per batch): the use is
    /// added to this thread's slot, which the writer collects. A full slot drops the use
    /// (the writer says how many).
    pub fn record(&self, usage: TokenUse) {
        let uses = &self.uses;
        let batch_full = uses.slots.with(|slot| {
            if slot.entries.len() >= uses.per_slot && !slot.has_use(&usage) {
                uses.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            slot.add_use(usage);
            slot.entries.len() == BATCH_SIZE
        });
        if batch_full {
            uses.batch_ready.notify_one();
        }
    }

    /// Any other per-request audit event (refused logins), written with the next batch.
    pub fn audit(&self, event: AuditEvent) {
        self.send(Record::Audit(event));
    }

    /// A per-request audit event whose identical repeats (same action, actor, namespace,
    /// address and details) within one flush are written once, with `details.count` and
    /// `details.last`, as token uses are.
    pub fn audit_counted(&self, event: AuditEvent) {
        self.send(Record::Counted(event));
    }

    fn send(&self, record: Record) {
        if self.sender.try_send(record).is_err() {
            tracing::warn!("token usage channel full or closed; an audit record was dropped");
        }
    }

    /// A recorder whose records go nowhere (unit tests of the layers above).
    pub fn disconnected() -> UsageRecorder {
        let (sender, _) = mpsc::channel(1);
        UsageRecorder {
            sender,
            uses: Arc::new(PendingUses::new(0)),
        }
    }
}

/// Receives records and writes them in batches. The database write runs in a task of its own
/// while the channel keeps being drained into the next batch: a stalled database (seen in the
/// benchmark, a PostgreSQL starved of CPU at 20,000 token requests/s) then grows a map
/// bounded by the number of distinct callers instead of filling the channel, which used to
/// drop audit records.
async fn write_batches(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Record>,
    uses: Arc<PendingUses>,
    flush_every: Duration,
) {
    let mut batch = Aggregates::default();
    // Owned by the write in flight, if any, and handed back when it is done.
    let mut last_written: HashMap<i64, DateTime<Utc>> = HashMap::new();
    let mut in_flight: Option<JoinHandle<HashMap<i64, DateTime<Utc>>>> = None;
    let mut ticker = tokio::time::interval(flush_every);
    let mut due = false;
    let mut dropped: u64 = 0;
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Some(record) if batch.len() < MAX_PENDING => {
                    batch.add(record);
                    due |= batch.len() >= BATCH_SIZE;
                }
                Some(_) => dropped += 1,
                None => break,
            },
            _ = ticker.tick() => {
                uses.collect_into(&mut batch, &mut dropped);
                due = true;
            }
            _ = uses.batch_ready.notified() => {
                uses.collect_into(&mut batch, &mut dropped);
                due = true;
            }
            finished = wait_for(&mut in_flight) => {
                in_flight = None;
                // A write that panicked loses only the `last_used_at` rate limit.
                last_written = finished.unwrap_or_default();
            }
        }
        if due && in_flight.is_none() {
            due = false;
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "the database did not keep up; audit records were dropped"
                );
                dropped = 0;
            }
            if batch.len() > 0 {
                let (entries, others) = batch.take();
                let store = Arc::clone(&store);
                let written = std::mem::take(&mut last_written);
                in_flight = Some(tokio::spawn(async move {
                    flush(store.as_ref(), entries, others, written).await
                }));
            }
        }
    }
    // Every recorder is gone (no thread can add to a slot any more): finish the write in
    // flight, then write what is left.
    if let Some(task) = in_flight.take() {
        last_written = task.await.unwrap_or_default();
    }
    uses.collect_into(&mut batch, &mut dropped);
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "the database did not keep up; audit records were dropped"
        );
    }
    if batch.len() > 0 {
        let (entries, others) = batch.take();
        flush(store.as_ref(), entries, others, last_written).await;
    }
}

/// The write in flight's result, or never when there is none.
async fn wait_for<T>(in_flight: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match in_flight {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// Same token, address, service and grant: one record.
type AggregateKey = (i64, Option<String>, String, String);

struct Aggregate {
    marks_last_used: bool,
    username: String,
    namespace_id: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    count: u64,
}

/// The uses seen since the last flush, in the order first seen, and the other events.
#[derive(Default)]
struct Aggregates {
    index: HashMap<AggregateKey, usize>,
    entries: Vec<(AggregateKey, Aggregate)>,
    others: Vec<AuditEvent>,
    /// Counted events by what makes them the same, their position in `others`.
    counted: HashMap<String, usize>,
    /// For each counted event in `others` (by position): how many, the last one's time.
    counts: HashMap<usize, (u64, DateTime<Utc>)>,
}

/// What makes two counted events the same record.
fn counted_key(event: &AuditEvent) -> String {
    format!(
        "{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{}",
        event.action.as_str(),
        event.actor,
        event.namespace_id,
        event.ip_address,
        event.details
    )
}

impl Aggregates {
    fn add(&mut self, record: Record) {
        match record {
            Record::Audit(event) => self.others.push(event),
            Record::Counted(event) => {
                let key = counted_key(&event);
                match self.counted.get(&key) {
                    Some(&position) => {
                        if let Some((count, last)) = self.counts.get_mut(&position) {
                            *count += 1;
                            *last = (*last).max(event.created_at);
                        }
                    }
                    None => {
                        let position = self.others.len();
                        self.counts.insert(position, (1, event.created_at));
                        self.counted.insert(key, position);
                        self.others.push(event);
                    }
                }
            }
        }
    }

    /// Whether a use with this key is already held (adding it then grows nothing).
    fn has_use(&self, usage: &TokenUse) -> bool {
        // Borrowed lookups of a tuple key need a scan; only reached when the slot is full.
        self.entries
            .iter()
            .any(|((token, ip, service, granted), _)| {
                *token == usage.deploy_token_id
                    && *ip == usage.ip_address
                    && *service == usage.service
                    && *granted == usage.granted
            })
    }

    fn add_use(&mut self, usage: TokenUse) {
        let key = (
            usage.deploy_token_id,
            usage.ip_address,
            usage.service,
            usage.granted,
        );
        match self.index.get(&key) {
            Some(&position) => {
                let aggregate = &mut self.entries[position].1;
                aggregate.count += 1;
                aggregate.first = aggregate.first.min(usage.at);
                aggregate.last = aggregate.last.max(usage.at);
            }
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((
                    key,
                    Aggregate {
                        marks_last_used: usage.marks_last_used,
                        username: usage.username,
                        namespace_id: usage.namespace_id,
                        first: usage.at,
                        last: usage.at,
                        count: 1,
                    },
                ));
            }
        }
    }

    fn len(&self) -> usize {
        self.entries.len() + self.others.len()
    }

    /// Adds `other`'s aggregated uses to these; returns how many uses were dropped because
    /// this already held `limit` records and theirs were new.
    fn merge_uses(&mut self, other: Aggregates, limit: usize) -> u64 {
        let mut dropped = 0;
        for (key, theirs) in other.entries {
            match self.index.get(&key) {
                Some(&position) => {
                    let ours = &mut self.entries[position].1;
                    ours.count += theirs.count;
                    ours.first = ours.first.min(theirs.first);
                    ours.last = ours.last.max(theirs.last);
                }
                None if self.len() >= limit => dropped += theirs.count,
                None => {
                    self.index.insert(key.clone(), self.entries.len());
                    self.entries.push((key, theirs));
                }
            }
        }
        dropped
    }

    /// The aggregated uses and the other events, leaving this empty.
    fn take(&mut self) -> (Vec<(AggregateKey, Aggregate)>, Vec<AuditEvent>) {
        self.index.clear();
        self.counted.clear();
        let mut others = std::mem::take(&mut self.others);
        for (position, (count, last)) in self.counts.drain() {
            if let Some(event) = others.get_mut(position) {
                event.details["count"] = serde_json::json!(count);
                event.details["last"] =
                    serde_json::json!(last.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            }
        }
        (std::mem::take(&mut self.entries), others)
    }
}

/// Writes one batch; returns `last_written` updated with the `last_used_at` it wrote.
async fn flush(
    store: &dyn Store,
    entries: Vec<(AggregateKey, Aggregate)>,
    others: Vec<AuditEvent>,
    mut last_written: HashMap<i64, DateTime<Utc>>,
) -> HashMap<i64, DateTime<Utc>> {
    let mut events: Vec<AuditEvent> = entries
        .iter()
        .map(
            |((token_id, ip_address, service, granted), aggregate)| AuditEvent {
                created_at: aggregate.first,
                actor_kind: ActorKind::DeployToken,
                actor: aggregate.username.clone(),
                action: AuditAction::RegistryTokenIssue,
                deploy_token_id: Some(*token_id),
                namespace_id: Some(aggregate.namespace_id),
                ip_address: ip_address.clone(),
                details: serde_json::json!({
                    "service": service,
                    "granted": granted,
                    "count": aggregate.count,
                    "last": aggregate.last.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                }),
            },
        )
        .collect();
    events.extend(others);
    let mut last_used: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for ((token_id, ..), aggregate) in &entries {
        if !aggregate.marks_last_used {
            continue;
        }
        let due = last_written
            .get(token_id)
            .is_none_or(|written| aggregate.last - *written >= LAST_USED_RESOLUTION);
        if due {
            let used = last_used.entry(*token_id).or_insert(aggregate.last);
            *used = (*used).max(aggregate.last);
        }
    }
    for (token_id, used) in &last_used {
        last_written.insert(*token_id, *used);
    }
    let last_used: Vec<(i64, DateTime<Utc>)> = last_used.into_iter().collect();
    // last_used_at first: whoever sees an audit event also sees the use it records.
    if let Err(error) = store.record_deploy_token_usage(&last_used).await {
        tracing::error!(error = %Report(&error), "writing last_used_at failed");
    }
    if let Err(error) = store.record_audit_events(&events).await {
        tracing::error!(error = %Report(&error), count = events.len(), "writing registry token audit events failed");
    }
    last_written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(token: i64, ip: &str, granted: &str, second: i64) -> TokenUse {
        TokenUse {
            deploy_token_id: token,
            namespace_id: 7,
            username: format!("user{token}"),
            at: DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap(),
            ip_address: Some(ip.to_owned()),
            service: "container_registry".into(),
            granted: granted.into(),
            marks_last_used: true,
        }
    }

    #[test]
    fn uses_with_the_same_token_address_service_and_grant_become_one_counted_record() {
        let mut batch = Aggregates::default();
        batch.add_use(usage(1, "10.0.0.1", "repository:a/b:pull", 3));
        batch.add_use(usage(1, "10.0.0.1", "repository:a/b:pull", 1));
        batch.add_use(usage(1, "10.0.0.1", "repository:a/b:pull", 5));
        batch.add_use(usage(1, "10.0.0.2", "repository:a/b:pull", 2));
        batch.add_use(usage(1, "10.0.0.1", "repository:a/b:pull,push", 2));
        batch.add_use(usage(2, "10.0.0.1", "repository:a/b:pull", 2));
        let (entries, others) = batch.take();
        assert_eq!(entries.len(), 4);
        assert!(others.is_empty());
        let (key, first) = &entries[0];
        assert_eq!(key.0, 1);
        assert_eq!(first.count, 3);
        assert_eq!(first.first.timestamp(), 1_800_000_001);
        assert_eq!(first.last.timestamp(), 1_800_000_005);
        assert!(entries[1..]
            .iter()
            .all(|(_, aggregate)| aggregate.count == 1));
        assert_eq!(batch.len(), 0);
    }

    #[test]
    fn merged_slots_add_up_and_beyond_the_limit_new_aggregates_are_counted_as_dropped() {
        let mut batch = Aggregates::default();
        batch.add_use(usage(1, "10.0.0.1", "repository:a/b:pull", 3));
        let mut slot = Aggregates::default();
        slot.add_use(usage(1, "10.0.0.1", "repository:a/b:pull", 1));
        slot.add_use(usage(1, "10.0.0.1", "repository:a/b:pull", 7));
        slot.add_use(usage(2, "10.0.0.1", "repository:a/b:pull", 2));
        slot.add_use(usage(2, "10.0.0.1", "repository:a/b:pull", 2));
        assert!(slot.has_use(&usage(2, "10.0.0.1", "repository:a/b:pull", 9)));
        assert!(!slot.has_use(&usage(2, "10.0.0.2", "repository:a/b:pull", 9)));
        // Room for one aggregate: token 2's two uses are dropped, token 1's are merged.
        assert_eq!(batch.merge_uses(slot, 1), 2);
        let (entries, _) = batch.take();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1.count, 3);
        assert_eq!(entries[0].1.first.timestamp(), 1_800_000_001);
        assert_eq!(entries[0].1.last.timestamp(), 1_800_000_007);
    }

    fn login(actor: &str, ip: &str, second: i64) -> Record {
        Record::Counted(AuditEvent {
            created_at: DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap(),
            actor_kind: ActorKind::Workload,
            actor: actor.into(),
            action: AuditAction::WorkloadLogin,
            deploy_token_id: None,
            namespace_id: Some(7),
            ip_address: Some(ip.into()),
            details: serde_json::json!({"jti": "j1", "granted": "repository:a/b:pull"}),
        })
    }

    #[test]
    fn identical_counted_events_become_one_record_with_a_count() {
        let mut batch = Aggregates::default();
        batch.add(login("gitlab+workload-1", "10.0.0.1", 1));
        batch.add(Record::Audit(match login("x", "y", 0) {
            Record::Counted(event) => event,
            _ => unreachable!(),
        }));
        batch.add(login("gitlab+workload-1", "10.0.0.1", 4));
        batch.add(login("gitlab+workload-1", "10.0.0.2", 2));
        let (_, others) = batch.take();
        assert_eq!(others.len(), 3);
        assert_eq!(others[0].details["count"], 2);
        assert_eq!(others[0].created_at.timestamp(), 1_800_000_001);
        assert_eq!(others[0].details["last"], "2027-01-15T08:00:04Z");
        assert!(
            others[1].details.get("count").is_none(),
            "plain events stay plain"
        );
        assert_eq!(others[2].details["count"], 1);
        assert_eq!(batch.len(), 0);
    }
}
