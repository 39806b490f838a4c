//! Recording deploy-token use without a database write per token request: each issued
//! registry token goes into a channel; a background task writes the audit events in batches
//! and `last_used_at` at most once per token per minute (per replica). Refused logins take the
//! same way into the audit trail, so that a flood of them is a few batched writes.
//!
//! The trade-off: events still in memory are lost if the process is killed hard; a graceful
//! stop flushes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::{ActorKind, AuditAction, AuditEvent};
use crate::error::Report;
use crate::store::Store;

/// Events buffered before the channel refuses more (and they are dropped, with a warning).
const CHANNEL_CAPACITY: usize = 16_384;
/// A batch this large is written at once, without waiting for the interval.
const BATCH_SIZE: usize = 512;
/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How often old token-issue records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes token-issue records older than `retention_days` (0: keeps everything). Every token
/// request writes one, so without a bound the table grows with traffic forever.
pub async fn prune_issue_records(
    store: &dyn Store,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<u64, crate::store::StoreError> {
    if retention_days == 0 {
        return Ok(0);
    }
    let before = now - chrono::TimeDelta::days(i64::from(retention_days));
    let pruned = store.prune_registry_token_events(before).await?;
    if pruned > 0 {
        tracing::info!(
            pruned,
            retention_days,
            "pruned old registry token audit records"
        );
    }
    Ok(pruned)
}

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
}

/// What goes through the writer's channel.
enum Record {
    Use(TokenUse),
    Audit(AuditEvent),
}

#[derive(Clone)]
pub struct UsageRecorder {
    sender: mpsc::Sender<Record>,
}

impl UsageRecorder {
    /// Starts the writer task; it ends (after a last flush) when every recorder is dropped.
    /// `retention_days` (0: forever) bounds how long token-issue records are kept; pruning
    /// runs at start and hourly.
    pub fn start(
        store: Arc<dyn Store>,
        flush_every: Duration,
        retention_days: u32,
    ) -> (UsageRecorder, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(write_batches(store, receiver, flush_every, retention_days));
        (UsageRecorder { sender }, task)
    }

    /// Never blocks the request: a full channel drops the record and says so.
    pub fn record(&self, usage: TokenUse) {
        self.send(Record::Use(usage));
    }

    /// Any other per-request audit event (refused logins), written with the next batch.
    pub fn audit(&self, event: AuditEvent) {
        self.send(Record::Audit(event));
    }

    fn send(&self, record: Record) {
        if self.sender.try_send(record).is_err() {
            tracing::warn!("token usage channel full or closed; an audit record was dropped");
        }
    }

    /// A recorder whose records go nowhere (unit tests of the layers above).
    pub fn disconnected() -> UsageRecorder {
        let (sender, _) = mpsc::channel(1);
        UsageRecorder { sender }
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Record>,
    flush_every: Duration,
    retention_days: u32,
) {
    let mut batch: Vec<Record> = Vec::new();
    let mut last_written: HashMap<i64, DateTime<Utc>> = HashMap::new();
    let mut ticker = tokio::time::interval(flush_every);
    let mut pruner = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = pruner.tick() => {
                if let Err(error) = prune_issue_records(store.as_ref(), retention_days, Utc::now()).await {
                    tracing::error!(error = %Report(&error), "pruning old registry token audit records failed");
                }
            }
            received = receiver.recv() => match received {
                Some(record) => {
                    batch.push(record);
                    if batch.len() >= BATCH_SIZE {
                        flush(store.as_ref(), &mut batch, &mut last_written).await;
                    }
                }
                None => {
                    flush(store.as_ref(), &mut batch, &mut last_written).await;
                    return;
                }
            },
            _ = ticker.tick() => flush(store.as_ref(), &mut batch, &mut last_written).await,
        }
    }
}

async fn flush(
    store: &dyn Store,
    batch: &mut Vec<Record>,
    last_written: &mut HashMap<i64, DateTime<Utc>>,
) {
    if batch.is_empty() {
        return;
    }
    let uses: Vec<&TokenUse> = batch
        .iter()
        .filter_map(|record| match record {
            Record::Use(usage) => Some(usage),
            Record::Audit(_) => None,
        })
        .collect();
    let events: Vec<AuditEvent> = batch
        .iter()
        .map(|record| match record {
            Record::Use(usage) => AuditEvent {
                created_at: usage.at,
                actor_kind: ActorKind::DeployToken,
                actor: usage.username.clone(),
                action: AuditAction::RegistryTokenIssue,
                deploy_token_id: Some(usage.deploy_token_id),
                namespace_id: Some(usage.namespace_id),
                ip_address: usage.ip_address.clone(),
                details: serde_json::json!({ "service": usage.service, "granted": usage.granted }),
            },
            Record::Audit(event) => event.clone(),
        })
        .collect();
    let mut last_used: Vec<(i64, DateTime<Utc>)> = Vec::new();
    for usage in uses {
        let due = last_written
            .get(&usage.deploy_token_id)
            .is_none_or(|written| usage.at - *written >= LAST_USED_RESOLUTION);
        if due {
            last_written.insert(usage.deploy_token_id, usage.at);
            last_used.retain(|(id, _)| *id != usage.deploy_token_id);
            last_used.push((usage.deploy_token_id, usage.at));
        }
    }
    batch.clear();
    // last_used_at first: whoever sees an audit event also sees the use it records.
    if let Err(error) = store.record_deploy_token_usage(&last_used).await {
        tracing::error!(error = %Report(&error), "writing last_used_at failed");
    }
    if let Err(error) = store.record_audit_events(&events).await {
        tracing::error!(error = %Report(&error), count = events.len(), "writing registry token audit events failed");
    }
}
