//! How long the audit trail keeps registry-token-issue records (`audit_retention_days`):
//! every token request adds to them (batched by `service::usage`), so without a bound the
//! table grows with traffic forever. Records of token creation, revocation and deletion are
//! always kept.

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

/// Prunes at start and then every hour; detached, it ends with the runtime. Nothing runs
/// when `retention_days` is 0 (records are kept forever).
pub fn start(store: Arc<dyn Store>, retention_days: u32) {
    if retention_days == 0 {
        return;
    }
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
