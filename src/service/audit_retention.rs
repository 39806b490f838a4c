//! How long the audit trail keeps registry-token-issue records (`audit_retention_days`):
//! every token request adds to them (batched by `service::usage`), so without a bound the
//! table grows with traffic forever. Records of token creation, revocation and deletion are
//! always kept. The registry's notifications (`service::registry_events`) follow the same
//! setting; their receipts (retries recognised) are kept for `registry_events::RECEIPT_DAYS`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Report;
use crate::store::{Store, StoreError};

/// How often old token-issue records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes token-issue records older than `retention_days` (0: keeps everything). Every token
/// request writes one, so without a bound the table grows with traffic forever.
pub async fn prune_issue_records(
    store: &dyn Store,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let receipts_before =
        now - chrono::TimeDelta::days(crate::service::registry_events::RECEIPT_DAYS);
    if retention_days == 0 {
        store.prune_registry_events(None, receipts_before).await?;
        return Ok(0);
    }
    let before = now - chrono::TimeDelta::days(i64::from(retention_days));
    let pruned = store.prune_registry_token_events(before).await?
        + store
            .prune_registry_events(Some(before), receipts_before)
            .await?;
    if pruned > 0 {
        tracing::info!(
            pruned,
            retention_days,
            "pruned old registry token audit records"
        );
    }
    Ok(pruned)
}

/// Prunes at start and then every hour; detached, it ends with the runtime. With
/// `retention_days` 0 records are kept forever; only receipts are pruned.
pub fn start(store: Arc<dyn Store>, retention_days: u32) {
    tokio::spawn(async move {
        let mut pruner = tokio::time::interval(PRUNE_EVERY);
        loop {
            pruner.tick().await;
            if let Err(error) =
                prune_issue_records(store.as_ref(), retention_days, Utc::now()).await
            {
                tracing::error!(error = %Report(&error), "pruning old registry token audit records failed");
            }
        }
    });
}
