//! The daily run inside `regauth serve`: at `notify_at` (UTC, default 01:00) it runs
//! [`super::run_once`]. Without an SMTP server configured it says once that notifications
//! are off and does nothing.

use std::sync::Arc;

use chrono::Utc;
use tokio::task::JoinHandle;

use crate::config::{NotifyAt, SmtpSettings};
use crate::error::Report;
use crate::mail::SmtpMailer;
use crate::store::Store;

/// Starts the daily run; `None` (after saying why, once) when notifications are off.
pub fn start(
    store: Arc<dyn Store>,
    smtp: Option<&SmtpSettings>,
    at: NotifyAt,
) -> Option<JoinHandle<()>> {
    let Some(smtp) = smtp else {
        tracing::info!(
            "expiry notifications are off: no SMTP server configured (smtp_url / REGAUTH_SMTP_URL)"
        );
        return None;
    };
    let mailer = match SmtpMailer::new(smtp) {
        Ok(mailer) => mailer,
        Err(error) => {
            tracing::error!(%error, smtp = %smtp.redacted_url(), "expiry notifications are off: cannot set up SMTP");
            return None;
        }
    };
    tracing::info!(
        smtp = %smtp.redacted_url(),
        from = %smtp.from(),
        "expiry notifications run daily at {at} UTC"
    );
    Some(tokio::spawn(run_daily(store, mailer, at)))
}

async fn run_daily(store: Arc<dyn Store>, mailer: SmtpMailer, at: NotifyAt) {
    let mut after = Utc::now();
    loop {
        let next = at.next_after(after);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        // A timer may fire a hair early; the run belongs to `next` all the same.
        let now = Utc::now().max(next);
        match super::run_once(store.as_ref(), &mailer, now).await {
            Ok(summary) if summary.failed > 0 => {
                tracing::warn!(%summary, "expiry notices: some failed; the next run retries them")
            }
            Ok(summary) => tracing::info!(%summary, "expiry notices"),
            Err(error) => {
                tracing::error!(error = %Report(&error), "expiry notice run stopped; the next run picks up what is left")
            }
        }
        after = next.max(Utc::now());
    }
}
