//! The recorder behind the registry events receiver. The receiver writes each envelope to the
//! inbox and answers; this task records the envelopes' events from there, in batches: the
//! ones the receiver hands it at once, and, on a timer, any left behind by a process that
//! stopped before recording them (or whose recording failed), so an answered envelope is
//! always recorded in the end. Recording is idempotent (receipts), so two replicas that
//! take the same envelope count its events once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

use crate::config::SmtpSettings;
use crate::error::{Error, Report};
use crate::metrics::Metrics;
use crate::service::registry_events::{accept, record_inbox, Accepted, Intake};
use crate::store::{InboxEnvelope, InboxSelection, Store};

/// How long the recorder gathers envelopes into one batch after the first: the delay
/// before an event shows in the trail.
pub const GATHER: Duration = Duration::from_millis(50);
/// Most envelopes recorded in one transaction.
pub const BATCH: usize = 500;
/// How long an envelope may wait in the inbox before the sweep takes it: well past the
/// moment its own receiver records it, so that replicas do not race for fresh envelopes.
pub const LEFT_BEHIND_AFTER: TimeDelta = TimeDelta::seconds(5);
/// How often the inbox is swept for envelopes left behind.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Failed recordings after which the sweep leaves an envelope alone (one that can never be
/// recorded must not be retried for ever, nor hold back those behind it).
pub const SET_ASIDE_AFTER: u32 = 10;
/// Envelopes the receiver may hand over before the recorder takes them; past that, the
/// sweep finds them.
const HANDED_OVER: usize = 65_536;

/// The receiver's end: writes each envelope to the inbox and hands it to the recorder.
#[derive(Clone)]
pub struct EventInbox {
    written: mpsc::Sender<i64>,
    turn: WriteTurn,
}

/// On SQLite (one writer at a time), the receiver and the recorder take turns here rather
/// than in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries: a receiver's
/// insert waiting for a batch goes the moment the batch commits.
#[derive(Clone)]
struct WriteTurn(Option<Arc<tokio::sync::Mutex<()>>>);

impl WriteTurn {
    async fn take(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }
}

impl EventInbox {
    /// Starts the recorder; it ends when every `EventInbox` is dropped. `single_writer`:
    /// the database takes one write at a time (SQLite).
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        smtp: Option<SmtpSettings>,
        new_address_days: u32,
        single_writer: bool,
    ) -> EventInbox {
        let (written, handed) = mpsc::channel(HANDED_OVER);
        let turn = WriteTurn(single_writer.then(|| Arc::new(tokio::sync::Mutex::new(()))));
        let recorder = Recorder {
            store,
            metrics,
            smtp,
            new_address_days,
            turn: turn.clone(),
        };
        tokio::spawn(recorder.run(handed));
        EventInbox { written, turn }
    }

    /// Takes an envelope in (`registry_events::accept`) and hands it to the recorder, which
    /// never makes this wait: with the recorder behind, the sweep records it.
    pub async fn accept(
        &self,
        store: &dyn Store,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Accepted, Error> {
        let accepted = {
            let _turn = self.turn.take().await;
            accept(store, body, now).await?
        };
        if let Some(inbox_id) = accepted.inbox_id {
            if self.written.try_send(inbox_id).is_err() {
                tracing::debug!(
                    inbox_id,
                    "registry events recorder behind; the sweep takes it"
                );
            }
        }
        Ok(accepted)
    }
}

struct Recorder {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    smtp: Option<SmtpSettings>,
    new_address_days: u32,
    turn: WriteTurn,
}

impl Recorder {
    async fn run(self, mut handed: mpsc::Receiver<i64>) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                first = handed.recv() => {
                    let Some(first) = first else { return };
                    // What else comes within the gathering window joins the batch: during a
                    // burst, one transaction for many envelopes, leaving SQLite's write lock
                    // to the receiver's inserts in between.
                    let mut ids = vec![first];
                    let until = tokio::time::Instant::now() + GATHER;
                    while ids.len() < BATCH {
                        match tokio::time::timeout_at(until, handed.recv()).await {
                            Ok(Some(id)) => ids.push(id),
                            Ok(None) | Err(_) => break,
                        }
                    }
                    self.take(InboxSelection::Ids(&ids)).await;
                }
                _ = sweep.tick() => {
                    let before = Utc::now() - LEFT_BEHIND_AFTER;
                    // Batch after batch while full ones come and are recorded.
                    let left_behind = InboxSelection::LeftBehind {
                        before,
                        attempts_below: SET_ASIDE_AFTER,
                    };
                    while self.take(left_behind).await == BATCH {}
                }
            }
        }
    }

    /// Records a batch of the inbox; how many envelopes were recorded (and left it).
    async fn take(&self, which: InboxSelection<'_>) -> usize {
        let envelopes = match self.store.inbox_envelopes(which, BATCH as u64).await {
            Ok(envelopes) => envelopes,
            Err(error) => {
                tracing::error!(error = %Report(&error), "cannot read the registry events inbox");
                return 0;
            }
        };
        if envelopes.is_empty() {
            return 0;
        }
        if self.record(&envelopes).await {
            return envelopes.len();
        }
        // One at a time, so that one envelope that cannot be recorded holds no other back.
        let mut recorded = 0;
        for envelope in &envelopes {
            if self.record(std::slice::from_ref(envelope)).await {
                recorded += 1;
                continue;
            }
            match self.store.inbox_envelope_failed(envelope.id).await {
                Ok(attempts) if attempts >= SET_ASIDE_AFTER => tracing::error!(
                    inbox_id = envelope.id,
                    attempts,
                    "registry notification envelope set aside after failing to be recorded; \
                     it stays in registry_event_inbox for a look"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = %Report(&error), "cannot count a failed recording");
                }
            }
        }
        recorded
    }

    async fn record(&self, envelopes: &[InboxEnvelope]) -> bool {
        let _turn = self.turn.take().await;
        match record_inbox(
            self.store.as_ref(),
            envelopes,
            Utc::now(),
            self.new_address_days,
        )
        .await
        {
            Ok(intake) => {
                self.report(intake);
                true
            }
            Err(error) => {
                tracing::error!(
                    envelopes = envelopes.len(),
                    error = %Report(&error),
                    "registry events not recorded yet; the sweep tries again"
                );
                false
            }
        }
    }

    /// Metrics, log lines and new-address mail for what was recorded.
    fn report(&self, intake: Intake) {
        for action in &intake.recorded {
            self.metrics.record_registry_event(*action, false);
        }
        for action in &intake.duplicates {
            self.metrics.record_registry_event(*action, true);
        }
        for news in &intake.new_addresses {
            self.metrics.record_new_address();
            tracing::warn!(
                deploy_token_id = news.deploy_token_id,
                username = %news.actor,
                address = %news.address,
                network = %news.network,
                action = news.action.as_str(),
                repository = %news.repository,
                "deploy token used from a network it had not used lately"
            );
        }
        let (false, Some(smtp)) = (intake.new_addresses.is_empty(), &self.smtp) else {
            return;
        };
        match crate::mail::SmtpMailer::new(smtp) {
            Ok(mailer) => {
                // In the background: recording goes on while SMTP answers.
                let store = Arc::clone(&self.store);
                let news = intake.new_addresses;
                tokio::spawn(async move {
                    let sent = crate::service::new_address_mail::send(
                        store.as_ref(),
                        &mailer,
                        &news,
                        Utc::now(),
                    )
                    .await;
                    if let Err(error) = sent {
                        tracing::error!(error = %Report(&error), "new-address mail failed");
                    }
                });
            }
            Err(error) => tracing::error!(error = %Report(&error), "cannot set up SMTP"),
        }
    }
}
