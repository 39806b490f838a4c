//! `regauth notify-expiring [--now <RFC3339>]`: the daily expiry notification run, once.

use chrono::{DateTime, Utc};

use super::store::open_store;
use crate::config::Settings;
use crate::mail::SmtpMailer;
use crate::service::notifications;

/// Runs the job once and prints its summary. Fails when notifications are off (no SMTP
/// server) or when a delivery failed (it is retried by the next run).
pub async fn notify_expiring(settings: &Settings, now: Option<&str>) -> anyhow::Result<()> {
    let now = match now {
        Some(text) => DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| anyhow::anyhow!("--now must be an RFC 3339 date-time such as 2027-01-01T01:00:00Z, got {text:?}"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let Some(smtp) = &settings.housekeeping.smtp else {
        anyhow::bail!("expiry notifications are off: no SMTP server configured (set smtp_url / REGAUTH_SMTP_URL)");
    };
    let mailer = SmtpMailer::new(smtp)?;
    let store = open_store(settings).await?;
    let summary = notifications::run_once(store.as_ref(), &mailer, now).await?;
    println!("expiry notices as of {}: {summary}", now.to_rfc3339());
    if summary.failed > 0 {
        anyhow::bail!(
            "{} notice(s) could not be delivered through {}; the next run retries them",
            summary.failed,
            smtp.redacted_url()
        );
    }
    Ok(())
}
