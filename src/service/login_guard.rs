//! Brute-force protection around every credential check: `/jwt/auth` (Basic, the OAuth2
//! password and refresh_token grants) and the `/api/v4` personal access tokens.
//!
//! Only failures count, per client address and per username tried; the escalation (delay,
//! then lock and 429) is [`crate::domain::login_throttle`]. How it stays off the hot path:
//! - each process keeps a view of the keys with recent failures; a request whose address
//!   and username are not in it goes straight on: no lock beyond one uncontended read, no
//!   database round trip (a CI running hundreds of parallel pulls with a valid token is
//!   never slowed);
//! - failures are written to `login_failures` in batches by a background task, which then
//!   reloads the view from the database (once a second), so that every replica sees the
//!   failures of the others within about two seconds;
//! - a delayed attempt sleeps on the async timer (no worker thread is held), and at most
//!   `login_max_delayed` attempts sleep at once per process: beyond, 429 at once;
//! - random secrets (deploy tokens, personal access tokens, refresh tokens: 192 bits, so no
//!   guess succeeds) are checked first, and a valid one is served even from a locked address
//!   or for a locked username: a lock must not let anyone behind the same NAT lock a CI fleet
//!   out. Only the failure is judged: refused with 429 under a lock, otherwise counted under
//!   the view's write lock, so that however many wrong guesses run in parallel at most the
//!   limit are counted and answered 401 ([`LoginGuard::check_secret`]);
//! - passwords (the web sign-in) can be guessed, so there an attempt is reserved before its
//!   check: attempts in flight count toward the limit, and an attempt that would pass it is
//!   refused before the password is looked at ([`LoginGuard::check_password`]).
//!
//! A username's failures apply to attempts from addresses that have failed themselves
//! (or whose address is unknown): anyone can send wrong passwords for a predictable
//! `gitlab+deploy-token-<n>`, and that must not lock the CI using the real token out.
//! Distributed guessing against one username still gets one guess per address per lockout.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use crate::config::LoginThrottleSettings;
use crate::domain::login_throttle::{judge, retry_after_seconds, FailureRecord, Limit, Verdict};
use crate::domain::secret::username_for_records;
use crate::domain::text::printable;
use crate::domain::token_format::TokenFormats;
use crate::domain::{ActorKind, AuditAction, AuditEvent};
use crate::error::Error;
use crate::metrics::{LockKey, LoginRoute, Metrics, Throttled};
use crate::service::usage::UsageRecorder;
use crate::store::Store;

/// How often failures are written and the view reloaded.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often failures older than the window are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Failures waiting to be written before more are dropped (they still count locally).
const CHANNEL_CAPACITY: usize = 16_384;
/// Written at once, without waiting for the tick.
const BATCH_SIZE: usize = 512;
/// Keys loaded into the view, most failures first.
const VIEW_LIMIT: u64 = 10_000;
/// Usernames are cut to this many characters in keys and the audit trail.
const USERNAME_CHARS: usize = 255;

/// One credential check: who tries, from where, through which route.
#[derive(Debug, Clone)]
pub struct Attempt {
    address: Option<String>,
    username: Option<String>,
    route: LoginRoute,
}

impl Attempt {
    /// `address` comes from `client_address::text_of_request` (the TCP peer, or the forwarded address behind `trusted_proxies`); `username` is what the client
    /// sent (none for personal access tokens and refresh tokens).
    ///
    /// A username that looks like a secret (a token pasted into the wrong field, judged with
    /// the instance's `formats`) is kept only as a digest: it becomes a key in
    /// `login_failures`, an audit actor and a log field.
    pub fn new(
        address: Option<String>,
        username: Option<&str>,
        route: LoginRoute,
        formats: &TokenFormats,
    ) -> Attempt {
        Attempt {
            address,
            username: username.map(|name| {
                username_for_records(name, formats)
                    .chars()
                    .take(USERNAME_CHARS)
                    .collect()
            }),
            route,
        }
    }

    /// IPv6 addresses count per /64: one host is routinely given a whole /64, and counting
    /// each address apart would give it 2^64 tries.
    fn address_key(&self) -> Option<String> {
        self.address
            .as_ref()
            .map(|address| match address.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    format!("a:{}/64", std::net::Ipv6Addr::from(segments))
                }
                _ => format!("a:{address}"),
            })
    }

    fn username_key(&self) -> Option<String> {
        self.username
            .as_ref()
            .map(|username| format!("u:{username}"))
    }
}

/// Guards credential checks; cheap to clone. Disabled (a no-op) when both limits are 0.
#[derive(Clone)]
pub struct LoginGuard {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    settings: LoginThrottleSettings,
    view: Arc<RwLock<View>>,
    /// Password attempts being checked now, per key (this process only).
    in_flight: std::sync::Mutex<HashMap<String, u32>>,
    delays: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    audit: UsageRecorder,
    failures: mpsc::Sender<(String, DateTime<Utc>)>,
}

/// Keys with failures within the window, as this process knows them.
#[derive(Default)]
struct View {
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures in the database at the last reload.
    stored: u32,
    /// This process's failures not yet seen in a reload.
    pending: u32,
    last_failure: DateTime<Utc>,
}

impl Entry {
    fn record(&self) -> FailureRecord {
        FailureRecord {
            failures: self.stored.saturating_add(self.pending),
            last_failure: self.last_failure,
        }
    }
}

fn read(view: &RwLock<View>) -> RwLockReadGuard<'_, View> {
    view.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write(view: &RwLock<View>) -> RwLockWriteGuard<'_, View> {
    view.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn window_of(settings: &LoginThrottleSettings) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(settings.window).unwrap_or(chrono::TimeDelta::days(1))
}

impl LoginGuard {
    /// A guard and its writer task (detached; it ends when the last guard is dropped).
    pub fn start(
        store: Arc<dyn Store>,
        settings: LoginThrottleSettings,
        metrics: Arc<Metrics>,
        audit: UsageRecorder,
    ) -> LoginGuard {
        if !settings.enabled() {
            return LoginGuard { inner: None };
        }
        let (guard, receiver) = LoginGuard::unstarted(settings, metrics, audit);
        if let Some(inner) = &guard.inner {
            tokio::spawn(write_failures(
                store,
                Arc::clone(&inner.view),
                receiver,
                settings,
            ));
        }
        guard
    }

    /// The guard without its writer (unit tests drive the view by hand).
    fn unstarted(
        settings: LoginThrottleSettings,
        metrics: Arc<Metrics>,
        audit: UsageRecorder,
    ) -> (LoginGuard, mpsc::Receiver<(String, DateTime<Utc>)>) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let inner = Inner {
            settings,
            view: Arc::new(RwLock::new(View::default())),
            in_flight: std::sync::Mutex::new(HashMap::new()),
            delays: Arc::new(Semaphore::new(settings.max_delayed as usize)),
            metrics,
            audit,
            failures: sender,
        };
        (
            LoginGuard {
                inner: Some(Arc::new(inner)),
            },
            receiver,
        )
    }

    /// Runs `login`, the check of a random secret, and judges only its failure: a valid
    /// secret is served whatever the lock; a wrong one under a lock (or one that finds the limit
    /// reached by wrong guesses running alongside) is answered 429 without being counted, any
    /// other wrong one is counted and, once failures started piling up, delayed.
    pub async fn check_secret<T>(
        &self,
        attempt: &Attempt,
        login: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let result = login.await;
        // Right credentials from outside their allow-list: answered and counted as a wrong
        // secret on the address (so a refusal is no oracle and cannot be probed for
        // freely), but not on the username: the secret was right, and whoever holds a
        // leaked one must not push the real user towards a lock.
        let outside_allow_list = matches!(result, Err(Error::AddressNotAllowed));
        let result = if outside_allow_list {
            Err(Error::Unauthorized)
        } else {
            result
        };
        let Some(inner) = &self.inner else {
            return result;
        };
        if !matches!(result, Err(Error::Unauthorized)) {
            return result;
        }
        match inner.failed(attempt, outside_allow_list, Utc::now()) {
            Verdict::Locked { retry_after } => {
                inner.metrics.record_throttled(Throttled::Locked);
                Err(Error::TooManyRequests {
                    retry_after: retry_after_seconds(retry_after),
                })
            }
            Verdict::Delay(delay) => {
                inner.wait(delay).await?;
                result
            }
            Verdict::Proceed => result,
        }
    }

    /// Runs `login`, a password check, unless the attempt is locked out, counting the
    /// attempts in flight as failures-to-be: N wrong passwords sent at once are refused past
    /// the limit before any is checked. Delayed attempts wait before the check.
    pub async fn check_password<T>(
        &self,
        attempt: &Attempt,
        login: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let Some(inner) = &self.inner else {
            return login.await;
        };
        let reservation = match inner.reserve(attempt, Utc::now()) {
            Ok((reservation, verdict)) => {
                if let Verdict::Delay(delay) = verdict {
                    inner.wait(delay).await?;
                }
                reservation
            }
            Err(retry_after) => {
                inner.metrics.record_throttled(Throttled::Locked);
                return Err(Error::TooManyRequests {
                    retry_after: retry_after_seconds(retry_after),
                });
            }
        };
        let result = login.await;
        if matches!(result, Err(Error::Unauthorized)) {
            // Reserved below the limit, so it is counted even if the count reached it since.
            inner.count_failure(attempt, Utc::now());
        }
        drop(reservation);
        result
    }
}

/// A password attempt in flight; released when dropped (also when its request is dropped).
struct Reservation<'a> {
    in_flight: &'a std::sync::Mutex<HashMap<String, u32>>,
    keys: Vec<String>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(self.in_flight);
        for key in &self.keys {
            if let Some(count) = in_flight.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    in_flight.remove(key);
                }
            }
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    fn limit(&self, max_failures: u32) -> Limit {
        Limit {
            max_failures,
            lockout: self.settings.lockout,
        }
    }

    /// The verdict on an attempt from the failures in `view`; the keys whose limit applies
    /// come back too.
    fn verdict(
        &self,
        view: &View,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> (Verdict, Vec<String>) {
        let since = now - window_of(&self.settings);
        let record = |key: &Option<String>| {
            let key = key.as_deref()?;
            view.entries
                .get(key)
                .filter(|entry| entry.last_failure > since)
                .map(|entry| entry.record())
        };
        let address_key = attempt.address_key();
        let address = record(&address_key);
        let by_address = judge(
            address,
            self.limit(self.settings.max_failures_per_address),
            now,
        );
        let mut keys: Vec<String> = address_key.into_iter().collect();
        let address_has_failed = attempt.address.is_none() || address.is_some();
        if !address_has_failed {
            return (by_address, keys);
        }
        let username_key = attempt.username_key();
        let by_username = judge(
            record(&username_key),
            self.limit(self.settings.max_failures_per_username),
            now,
        );
        keys.extend(username_key);
        (by_address.stricter(by_username), keys)
    }

    /// Reserves a password attempt: `Err(retry_after)` when it is locked out, or when the
    /// attempts in flight would reach the limit if they all failed.
    fn reserve(
        &self,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<(Reservation<'_>, Verdict), std::time::Duration> {
        let mut in_flight = lock(&self.in_flight);
        let view = read(&self.view);
        // The keys whose limits apply: the address, and the username once the address failed.
        let (settled, keys) = self.verdict(&view, attempt, now);
        if let Verdict::Locked { retry_after } = settled {
            return Err(retry_after);
        }
        let since = now - window_of(&self.settings);
        let over = keys.iter().any(|key| {
            let max = if key.starts_with("a:") {
                self.settings.max_failures_per_address
            } else {
                self.settings.max_failures_per_username
            };
            let failed = view
                .entries
                .get(key)
                .filter(|entry| entry.last_failure > since)
                .map_or(0, |entry| entry.record().failures);
            max > 0 && failed + in_flight.get(key).copied().unwrap_or(0) >= max
        });
        if over {
            // The attempts in flight decide; one of them is done within a second or so.
            return Err(std::time::Duration::from_secs(1));
        }
        drop(view);
        for key in &keys {
            *in_flight.entry(key.clone()).or_default() += 1;
        }
        Ok((
            Reservation {
                in_flight: &self.in_flight,
                keys,
            },
            settled,
        ))
    }

    /// Waits out a delay on the async timer, unless too many attempts wait already (429).
    async fn wait(&self, delay: std::time::Duration) -> Result<(), Error> {
        let Ok(permit) = Arc::clone(&self.delays).try_acquire_owned() else {
            self.metrics.record_throttled(Throttled::Overloaded);
            return Err(Error::TooManyRequests {
                retry_after: retry_after_seconds(delay),
            });
        };
        self.metrics.record_delayed();
        tokio::time::sleep(delay).await;
        drop(permit);
        Ok(())
    }

    /// A wrong secret: under a lock it is not counted and the lock's verdict comes back;
    /// otherwise it is counted, and the verdict it found (a delay, or none) comes back. The
    /// judgement and the count happen under one write lock of the view, so parallel wrong
    /// guesses cannot all find the count below the limit.
    fn failed(&self, attempt: &Attempt, address_only: bool, now: DateTime<Utc>) -> Verdict {
        let view = write(&self.view);
        let (verdict, _) = self.verdict(&view, attempt, now);
        if !matches!(verdict, Verdict::Locked { .. }) {
            self.count_in(view, attempt, address_only, now);
        }
        verdict
    }

    fn count_failure(&self, attempt: &Attempt, now: DateTime<Utc>) {
        let view = write(&self.view);
        self.count_in(view, attempt, false, now);
    }

    /// Counts a failure (the view's write lock is held and released here), audits it and any
    /// lock it causes. `address_only`: a use from outside an allow-list, counted on the
    /// address alone and audited by the check that refused it (with the token and reason).
    fn count_in(
        &self,
        mut view: RwLockWriteGuard<'_, View>,
        attempt: &Attempt,
        address_only: bool,
        now: DateTime<Utc>,
    ) {
        self.metrics.record_login_failure(attempt.route);
        let since = now - window_of(&self.settings);
        // Addresses are always counted: a username's failures apply to addresses that
        // failed themselves.
        let username_key = (self.settings.max_failures_per_username > 0 && !address_only)
            .then(|| attempt.username_key())
            .flatten();
        let keys = [
            (
                LockKey::Address,
                attempt.address_key(),
                self.settings.max_failures_per_address,
            ),
            (
                LockKey::Username,
                username_key,
                self.settings.max_failures_per_username,
            ),
        ];
        let mut locked = Vec::new();
        {
            for (kind, key, max_failures) in keys {
                let Some(key) = key else { continue };
                let entry = view.entries.entry(key.clone()).or_insert(Entry {
                    stored: 0,
                    pending: 0,
                    last_failure: now,
                });
                if entry.last_failure <= since {
                    *entry = Entry {
                        stored: 0,
                        pending: 0,
                        last_failure: now,
                    };
                }
                let before = entry.record().failures;
                entry.pending = entry.pending.saturating_add(1);
                entry.last_failure = now;
                if max_failures > 0 && before < max_failures && before + 1 >= max_failures {
                    locked.push((kind, before + 1));
                }
                if self.failures.try_send((key, now)).is_err() {
                    tracing::warn!(
                        "login failure channel full; a failure is counted by this process only"
                    );
                }
            }
        }
        drop(view);
        let actor = attempt.username.clone().unwrap_or_default();
        if !address_only {
            self.audit.audit(AuditEvent {
                created_at: now,
                actor_kind: ActorKind::Anonymous,
                actor: actor.clone(),
                action: AuditAction::LoginFailure,
                deploy_token_id: None,
                namespace_id: None,
                ip_address: attempt.address.clone(),
                details: json!({ "route": attempt.route.as_str() }),
            });
        }
        for (kind, failures) in locked {
            self.metrics.record_lockout(kind);
            tracing::warn!(
                locked = kind.as_str(),
                address = attempt.address.as_deref().unwrap_or("unknown"),
                username = %printable(&actor),
                failures,
                lockout_seconds = self.settings.lockout.as_secs(),
                "logins locked after repeated failures"
            );
            self.audit.audit(AuditEvent {
                created_at: now,
                actor_kind: ActorKind::Anonymous,
                actor: actor.clone(),
                action: AuditAction::LoginLockout,
                deploy_token_id: None,
                namespace_id: None,
                ip_address: attempt.address.clone(),
                details: json!({
                    "route": attempt.route.as_str(),
                    "locked": kind.as_str(),
                    "failures": failures,
                    "lockout_seconds": self.settings.lockout.as_secs(),
                }),
            });
        }
    }
}

/// Writes failures in batches, reloads the view after each tick, prunes old failures.
async fn write_failures(
    store: Arc<dyn Store>,
    view: Arc<RwLock<View>>,
    mut receiver: mpsc::Receiver<(String, DateTime<Utc>)>,
    settings: LoginThrottleSettings,
) {
    let mut batch: Vec<(String, DateTime<Utc>)> = Vec::new();
    // Written by this process, not yet seen in a reload.
    let mut unseen: HashMap<String, u32> = HashMap::new();
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruner = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Some(failure) => {
                    batch.push(failure);
                    if batch.len() >= BATCH_SIZE {
                        flush(store.as_ref(), &mut batch, &mut unseen).await;
                    }
                }
                None => {
                    flush(store.as_ref(), &mut batch, &mut unseen).await;
                    return;
                }
            },
            _ = ticker.tick() => {
                flush(store.as_ref(), &mut batch, &mut unseen).await;
                reload(store.as_ref(), &view, &mut unseen, &settings).await;
            }
            _ = pruner.tick() => {
                let before = Utc::now() - window_of(&settings);
                if let Err(error) = store.prune_login_failures(before).await {
                    tracing::error!(%error, "pruning old login failures failed");
                }
            }
        }
    }
}

async fn flush(
    store: &dyn Store,
    batch: &mut Vec<(String, DateTime<Utc>)>,
    unseen: &mut HashMap<String, u32>,
) {
    if batch.is_empty() {
        return;
    }
    match store.record_login_failures(batch).await {
        Ok(()) => {
            for (key, _) in batch.drain(..) {
                *unseen.entry(key).or_default() += 1;
            }
        }
        Err(error) => {
            // They stay counted by this process until they leave the window.
            tracing::error!(%error, count = batch.len(), "writing login failures failed");
            batch.clear();
        }
    }
}

async fn reload(
    store: &dyn Store,
    view: &RwLock<View>,
    unseen: &mut HashMap<String, u32>,
    settings: &LoginThrottleSettings,
) {
    let since = Utc::now() - window_of(settings);
    let counts = match store.login_failure_counts(since, 1, VIEW_LIMIT).await {
        Ok(counts) => counts,
        Err(error) => {
            tracing::error!(%error, "reading login failures failed");
            return;
        }
    };
    let mut fresh: HashMap<String, Entry> = counts
        .into_iter()
        .map(|count| {
            (
                count.key,
                Entry {
                    stored: count.failures,
                    pending: 0,
                    last_failure: count.last_failure,
                },
            )
        })
        .collect();
    let mut view = write(view);
    for (key, old) in view.entries.drain() {
        // What was written since the last reload is in `stored` now.
        let pending = old
            .pending
            .saturating_sub(unseen.get(&key).copied().unwrap_or(0));
        if pending == 0 || old.last_failure <= since {
            continue;
        }
        let entry = fresh.entry(key).or_insert(Entry {
            stored: 0,
            pending: 0,
            last_failure: old.last_failure,
        });
        entry.pending = pending;
        entry.last_failure = entry.last_failure.max(old.last_failure);
    }
    unseen.clear();
    view.entries = fresh;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_address: u32, per_username: u32, max_delayed: u32) -> LoginThrottleSettings {
        LoginThrottleSettings {
            window: Duration::from_secs(600),
            lockout: Duration::from_secs(300),
            max_failures_per_address: per_address,
            max_failures_per_username: per_username,
            max_delayed,
        }
    }

    fn guard(settings: LoginThrottleSettings) -> (LoginGuard, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new("container_registry", "dependency_proxy"));
        let (guard, receiver) = LoginGuard::unstarted(
            settings,
            Arc::clone(&metrics),
            UsageRecorder::disconnected(),
        );
        // Keep failures flowing nowhere without filling the channel.
        std::mem::forget(receiver);
        (guard, metrics)
    }

    fn attempt(address: &str, username: &str) -> Attempt {
        Attempt::new(
            Some(address.to_owned()),
            Some(username),
            LoginRoute::Registry,
            &TokenFormats::default(),
        )
    }

    async fn fail(guard: &LoginGuard, attempt: &Attempt) -> Result<(), Error> {
        guard
            .check_secret(attempt, async { Err::<(), _>(Error::Unauthorized) })
            .await
    }

    async fn succeed(guard: &LoginGuard, attempt: &Attempt) -> Result<(), Error> {
        guard.check_secret(attempt, async { Ok(()) }).await
    }

    async fn fail_password(guard: &LoginGuard, attempt: &Attempt) -> Result<(), Error> {
        guard
            .check_password(attempt, async { Err::<(), _>(Error::Unauthorized) })
            .await
    }

    async fn succeed_password(guard: &LoginGuard, attempt: &Attempt) -> Result<(), Error> {
        guard.check_password(attempt, async { Ok(()) }).await
    }

    #[tokio::test(start_paused = true)]
    async fn failures_lock_the_address_and_successes_are_never_counted() {
        let (guard, metrics) = guard(settings(4, 0, 10));
        let from = attempt("192.0.2.1", "u");
        for _ in 0..100 {
            succeed(&guard, &from).await.unwrap();
        }
        for _ in 0..4 {
            assert!(matches!(
                fail(&guard, &from).await,
                Err(Error::Unauthorized)
            ));
        }
        // Locked: a wrong secret is refused without being counted, a password is not checked,
        // and a valid secret (192 random bits: no guess finds one) is still served.
        let Err(Error::TooManyRequests { retry_after }) = fail(&guard, &from).await else {
            panic!("the address should be locked");
        };
        assert!((299..=300).contains(&retry_after), "{retry_after}");
        succeed(&guard, &from).await.unwrap();
        succeed(&guard, &attempt("192.0.2.2", "u")).await.unwrap();
        let text = metrics.render(&Default::default(), 0, None);
        assert!(
            text.contains("regauth_login_lockouts_total{key=\"address\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("regauth_login_failures_total{route=\"registry\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("regauth_login_throttled_total{reason=\"locked\"} 1"),
            "{text}"
        );
        assert!(matches!(
            succeed_password(&guard, &from).await,
            Err(Error::TooManyRequests { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_username_lock_applies_to_addresses_that_failed_themselves() {
        let (guard, _) = guard(settings(0, 3, 10));
        for _ in 0..3 {
            let _ = fail(&guard, &attempt("192.0.2.1", "gitlab+deploy-token-1")).await;
        }
        assert!(matches!(
            fail_password(&guard, &attempt("192.0.2.1", "gitlab+deploy-token-1")).await,
            Err(Error::TooManyRequests { .. })
        ));
        // The CI with the real token, from an address without failures, goes on.
        succeed_password(&guard, &attempt("192.0.2.9", "gitlab+deploy-token-1"))
            .await
            .unwrap();
        // A second guessing address gets one guess, then it is locked as well.
        let other = attempt("192.0.2.2", "gitlab+deploy-token-1");
        assert!(matches!(
            fail(&guard, &other).await,
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            fail(&guard, &other).await,
            Err(Error::TooManyRequests { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_attempts_sleep_and_beyond_the_cap_are_refused_at_once() {
        let (guard, metrics) = guard(settings(10, 0, 1));
        let from = attempt("192.0.2.1", "u");
        for _ in 0..3 {
            let _ = fail_password(&guard, &from).await;
        }
        let started = tokio::time::Instant::now();
        succeed_password(&guard, &from).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        // One sleeps (holding the only permit); the next cannot wait and gets 429.
        let sleeping = tokio::spawn({
            let guard = guard.clone();
            let from = from.clone();
            async move { succeed_password(&guard, &from).await }
        });
        tokio::task::yield_now().await;
        assert!(matches!(
            succeed_password(&guard, &from).await,
            Err(Error::TooManyRequests { retry_after: 1 })
        ));
        sleeping.await.unwrap().unwrap();
        let text = metrics.render(&Default::default(), 0, None);
        assert!(
            text.contains("regauth_login_throttled_total{reason=\"overloaded\"} 1"),
            "{text}"
        );
        assert!(text.contains("regauth_login_delayed_total 2"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_secret_waits_its_delay_and_a_valid_one_never_does() {
        let (guard, _) = guard(settings(10, 0, 10));
        let from = attempt("192.0.2.1", "u");
        for _ in 0..3 {
            let _ = fail(&guard, &from).await;
        }
        let started = tokio::time::Instant::now();
        succeed(&guard, &from).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(matches!(
            fail(&guard, &from).await,
            Err(Error::Unauthorized)
        ));
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    /// `attempts` wrong checks sent at once, each held in flight until every attempt has
    /// either started its check or been refused; how many checks ran and what each answered.
    async fn in_parallel(
        guard: &LoginGuard,
        attempts: usize,
        password: bool,
    ) -> (usize, Vec<Result<(), Error>>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let checked = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let tasks: Vec<_> = (0..attempts)
            .map(|_| {
                let (guard, checked, gate) =
                    (guard.clone(), Arc::clone(&checked), Arc::clone(&gate));
                tokio::spawn(async move {
                    let from = attempt("192.0.2.1", "u");
                    let check = async move {
                        checked.fetch_add(1, Ordering::SeqCst);
                        let _open = gate.acquire().await;
                        Err::<(), _>(Error::Unauthorized)
                    };
                    if password {
                        guard.check_password(&from, check).await
                    } else {
                        guard.check_secret(&from, check).await
                    }
                })
            })
            .collect();
        while checked.load(Ordering::SeqCst)
            + tasks.iter().filter(|task| task.is_finished()).count()
            < attempts
        {
            tokio::task::yield_now().await;
        }
        gate.add_permits(attempts);
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        (checked.load(Ordering::SeqCst), answers)
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_secrets_sent_at_once_are_counted_only_up_to_the_limit() {
        let (guard, metrics) = guard(settings(20, 0, 1000));
        let (_, answers) = in_parallel(&guard, 100, false).await;
        let unauthorized = answers
            .iter()
            .filter(|answer| matches!(answer, Err(Error::Unauthorized)))
            .count();
        let throttled = answers
            .iter()
            .filter(|answer| matches!(answer, Err(Error::TooManyRequests { .. })))
            .count();
        assert_eq!((unauthorized, throttled), (20, 80));
        let text = metrics.render(&Default::default(), 0, None);
        assert!(
            text.contains("regauth_login_failures_total{route=\"registry\"} 20"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_passwords_sent_at_once_are_checked_only_up_to_the_limit() {
        let (guard, _) = guard(settings(20, 0, 1000));
        let (checked, answers) = in_parallel(&guard, 100, true).await;
        assert_eq!(checked, 20, "password checks that ran");
        let throttled = answers
            .iter()
            .filter(|answer| matches!(answer, Err(Error::TooManyRequests { .. })))
            .count();
        assert_eq!(throttled, 80);
        // Once they are done, the address is locked for good (until the lockout ends).
        assert!(matches!(
            succeed_password(&guard, &attempt("192.0.2.1", "u")).await,
            Err(Error::TooManyRequests { retry_after }) if retry_after > 1
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_addresses_are_counted_per_slash_64() {
        let (guard, _) = guard(settings(4, 0, 10));
        for host in 1..=4 {
            let _ = fail(&guard, &attempt(&format!("2001:db8:1:2::{host}"), "u")).await;
        }
        assert!(matches!(
            fail(&guard, &attempt("2001:db8:1:2:ffff::9", "u")).await,
            Err(Error::TooManyRequests { .. })
        ));
        assert!(matches!(
            fail(&guard, &attempt("2001:db8:1:3::1", "u")).await,
            Err(Error::Unauthorized)
        ));
        // IPv4 addresses stay per address, also written as IPv4-mapped IPv6.
        for _ in 0..4 {
            let _ = fail(&guard, &attempt("192.0.2.7", "u")).await;
        }
        assert!(matches!(
            fail(&guard, &attempt("192.0.2.8", "u")).await,
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn a_secret_sent_as_username_is_kept_only_as_a_digest() {
        let secret = "gldt-Zm9vYmFyYmF6cXV4cXV1eHh5eno0NTY3";
        let from = attempt("192.0.2.1", secret);
        let key = from.username_key().unwrap();
        assert!(
            !key.contains(secret) && key.starts_with("u:secret-like:sha256:"),
            "{key}"
        );
        assert!(!format!("{from:?}").contains(secret));
    }

    #[tokio::test]
    async fn a_disabled_guard_only_runs_the_check() {
        let metrics = Arc::new(Metrics::new("container_registry", "dependency_proxy"));
        let store: Arc<dyn Store> = Arc::new(crate::store::SeaStore::new(
            sea_orm::DatabaseConnection::default(),
        ));
        let guard = LoginGuard::start(
            store,
            settings(0, 0, 1),
            metrics,
            UsageRecorder::disconnected(),
        );
        let from = attempt("192.0.2.1", "u");
        for _ in 0..50 {
            assert!(matches!(
                fail(&guard, &from).await,
                Err(Error::Unauthorized)
            ));
        }
    }
}
