//! Prometheus metrics in the text exposition format (0.0.4), rendered by hand: the handful of
//! counters and histograms below need no client library.
//!
//! - `regauth_registry_token_requests_total{service,outcome}`: token requests by outcome
//!   (`issued`, `partial` — some requested actions left out —, `denied`, `unauthorized`,
//!   `error`); the service label is the configured name or `unknown`, never free text.
//! - `regauth_scope_family_requests_total{family,outcome}`: requests by scope family —
//!   `registry` (`/jwt/auth`, outcomes as above), `repository` and `package`
//!   (`/-/forward-auth`: `allowed`, `denied`, `unauthorized`, `error`).
//! - `regauth_http_request_duration_seconds{method,route}`: latency histogram by route pattern.
//! - `regauth_database_errors_total`: database errors seen by this process.
//! - `regauth_login_failures_total{route}`, `regauth_login_lockouts_total{key}`,
//!   `regauth_login_throttled_total{reason}`, `regauth_login_delayed_total`: brute-force
//!   protection (failed credential checks; keys locked; 429 answers; attempts delayed).
//! - `regauth_deploy_tokens_{created,revoked,deleted}_total{scope}`: counted in the database at
//!   scrape time, so they include tokens made by the CLI or by other replicas (every replica
//!   reports the same cluster-wide value: aggregate with `max`, not `sum`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::access::policy::ScopeFamily;
use crate::domain::DeployTokenScope;
use crate::store::ScopeCounts;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TokenOutcome {
    Issued,
    Partial,
    Denied,
    Unauthorized,
    /// 429: too many failed logins.
    Throttled,
    Error,
}

impl TokenOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenOutcome::Issued => "issued",
            TokenOutcome::Partial => "partial",
            TokenOutcome::Denied => "denied",
            TokenOutcome::Unauthorized => "unauthorized",
            TokenOutcome::Throttled => "throttled",
            TokenOutcome::Error => "error",
        }
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Where a credential was checked (the `route` label of login failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRoute {
    /// `/jwt/auth` with a deploy token (Basic or the OAuth2 password grant).
    Registry,
    /// `/jwt/auth` with the OAuth2 refresh_token grant.
    RefreshToken,
    /// `/api/v4` with a personal access token.
    Api,
    /// `/-/forward-auth` with a deploy token (git and package clients behind a proxy).
    ForwardAuth,
    /// `/users/sign_in`, the web pages' sign-in (password or personal access token).
    Web,
}

impl LoginRoute {
    pub const ALL: [LoginRoute; 5] = [
        LoginRoute::Registry,
        LoginRoute::RefreshToken,
        LoginRoute::Api,
        LoginRoute::ForwardAuth,
        LoginRoute::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginRoute::Registry => "registry",
            LoginRoute::RefreshToken => "refresh_token",
            LoginRoute::Api => "api",
            LoginRoute::ForwardAuth => "forward_auth",
            LoginRoute::Web => "web",
        }
    }
}

/// What a brute-force lock is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKey {
    Address,
    Username,
}

impl LockKey {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKey::Address => "address",
            LockKey::Username => "username",
        }
    }
}

/// Why an attempt was answered 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Its address or username is locked.
    Locked,
    /// It should have waited out a delay, but too many attempts were waiting already.
    Overloaded,
}

#[derive(Default)]
struct LoginCounters {
    failures: [AtomicU64; LoginRoute::ALL.len()],
    lockouts: [AtomicU64; 2],
    throttled: [AtomicU64; 2],
    delayed: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    token_requests: Mutex<BTreeMap<(String, TokenOutcome), u64>>,
    family_requests: Mutex<BTreeMap<(ScopeFamily, &'static str), u64>>,
    request_durations: Mutex<BTreeMap<(String, String), Histogram>>,
    logins: LoginCounters,
}

/// Escapes a label value for the text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// `service` must be a configured service name or `unknown` (bounded label values).
    pub fn record_token_request(&self, service: &str, outcome: TokenOutcome) {
        if let Ok(mut counts) = self.token_requests.lock() {
            *counts.entry((service.to_owned(), outcome)).or_default() += 1;
        }
    }

    pub fn record_login_failure(&self, route: LoginRoute) {
        self.logins.failures[route as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_lockout(&self, key: LockKey) {
        self.logins.lockouts[key as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_throttled(&self, reason: Throttled) {
        self.logins.throttled[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_delayed(&self) {
        self.logins.delayed.fetch_add(1, Ordering::Relaxed);
    }

    /// One request of a scope family; `outcome` is one of a fixed set of names.
    pub fn record_family_request(&self, family: ScopeFamily, outcome: &'static str) {
        if let Ok(mut counts) = self.family_requests.lock() {
            *counts.entry((family, outcome)).or_default() += 1;
        }
    }

    /// `route` is the matched route pattern (or `unmatched`), never the raw path.
    pub fn observe_request(&self, method: &str, route: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Ok(mut histograms) = self.request_durations.lock() {
            let histogram = histograms
                .entry((method.to_owned(), route.to_owned()))
                .or_default();
            for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    /// The whole exposition. `scope_counts` comes from the database at scrape time.
    pub fn render(&self, scope_counts: &ScopeCounts, database_errors: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP regauth_registry_token_requests_total Registry token requests by service and outcome.\n");
        out.push_str("# TYPE regauth_registry_token_requests_total counter\n");
        if let Ok(counts) = self.token_requests.lock() {
            for ((service, outcome), count) in counts.iter() {
                let _ = writeln!(
                    out,
                    "regauth_registry_token_requests_total{{service=\"{}\",outcome=\"{}\"}} {count}",
                    label(service),
                    outcome.as_str()
                );
            }
        }
        out.push_str("# HELP regauth_scope_family_requests_total Requests by scope family (registry, repository, package) and outcome.\n");
        out.push_str("# TYPE regauth_scope_family_requests_total counter\n");
        if let Ok(counts) = self.family_requests.lock() {
            for ((family, outcome), count) in counts.iter() {
                let _ = writeln!(
                    out,
                    "regauth_scope_family_requests_total{{family=\"{}\",outcome=\"{outcome}\"}} {count}",
                    family.as_str()
                );
            }
        }
        out.push_str(
            "# HELP regauth_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE regauth_http_request_duration_seconds histogram\n");
        if let Ok(histograms) = self.request_durations.lock() {
            for ((method, route), histogram) in histograms.iter() {
                let labels = format!("method=\"{}\",route=\"{}\"", label(method), label(route));
                for (count, bound) in histogram.buckets.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "regauth_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "regauth_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    histogram.count
                );
                let _ = writeln!(
                    out,
                    "regauth_http_request_duration_seconds_sum{{{labels}}} {}",
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "regauth_http_request_duration_seconds_count{{{labels}}} {}",
                    histogram.count
                );
            }
        }
        out.push_str(
            "# HELP regauth_database_errors_total Database errors seen by this process.\n",
        );
        out.push_str("# TYPE regauth_database_errors_total counter\n");
        let _ = writeln!(out, "regauth_database_errors_total {database_errors}");
        let logins = &self.logins;
        out.push_str("# HELP regauth_login_failures_total Failed credential checks, by where the credential was checked.\n");
        out.push_str("# TYPE regauth_login_failures_total counter\n");
        for route in LoginRoute::ALL {
            let _ = writeln!(
                out,
                "regauth_login_failures_total{{route=\"{}\"}} {}",
                route.as_str(),
                logins.failures[route as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP regauth_login_lockouts_total Client addresses or usernames locked by failed logins.\n");
        out.push_str("# TYPE regauth_login_lockouts_total counter\n");
        for key in [LockKey::Address, LockKey::Username] {
            let _ = writeln!(
                out,
                "regauth_login_lockouts_total{{key=\"{}\"}} {}",
                key.as_str(),
                logins.lockouts[key as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP regauth_login_throttled_total Login attempts answered 429, by reason.\n",
        );
        out.push_str("# TYPE regauth_login_throttled_total counter\n");
        for (reason, name) in [
            (Throttled::Locked, "locked"),
            (Throttled::Overloaded, "overloaded"),
        ] {
            let _ = writeln!(
                out,
                "regauth_login_throttled_total{{reason=\"{name}\"}} {}",
                logins.throttled[reason as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP regauth_login_delayed_total Login attempts delayed after earlier failures.\n",
        );
        out.push_str("# TYPE regauth_login_delayed_total counter\n");
        let _ = writeln!(
            out,
            "regauth_login_delayed_total {}",
            logins.delayed.load(Ordering::Relaxed)
        );
        for (state, help, pick) in [
            ("created", "Deploy tokens created, by scope.", 0usize),
            (
                "revoked",
                "Deploy tokens revoked (deleted ones included), by scope.",
                1,
            ),
            ("deleted", "Deploy tokens deleted, by scope.", 2),
        ] {
            let name = format!("regauth_deploy_tokens_{state}_total");
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for scope in DeployTokenScope::ALL {
                let counts = scope_counts.get(scope);
                let value = [counts.created, counts.revoked, counts.deleted][pick];
                let _ = writeln!(out, "{name}{{scope=\"{}\"}} {value}", scope.as_str());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_at_or_above_it() {
        let metrics = Metrics::new();
        metrics.observe_request("GET", "/jwt/auth", Duration::from_millis(3));
        metrics.observe_request("GET", "/jwt/auth", Duration::from_secs(10));
        let text = metrics.render(&ScopeCounts::default(), 0);
        let line = |needle: &str| {
            text.lines()
                .find(|line| line.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
                .to_owned()
        };
        assert!(line("regauth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jwt/auth\",le=\"0.0025\"}").ends_with(" 0"));
        assert!(line("regauth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jwt/auth\",le=\"0.005\"}").ends_with(" 1"));
        assert!(line("regauth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jwt/auth\",le=\"5\"}").ends_with(" 1"));
        assert!(line("regauth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jwt/auth\",le=\"+Inf\"}").ends_with(" 2"));
        assert!(line(
            "regauth_http_request_duration_seconds_count{method=\"GET\",route=\"/jwt/auth\"}"
        )
        .ends_with(" 2"));
    }

    #[test]
    fn requests_are_counted_by_scope_family_and_outcome() {
        let metrics = Metrics::new();
        metrics.record_family_request(ScopeFamily::Repository, "allowed");
        metrics.record_family_request(ScopeFamily::Repository, "allowed");
        metrics.record_family_request(ScopeFamily::Package, "denied");
        metrics.record_family_request(ScopeFamily::Registry, "issued");
        let text = metrics.render(&ScopeCounts::default(), 0);
        for line in [
            "regauth_scope_family_requests_total{family=\"repository\",outcome=\"allowed\"} 2",
            "regauth_scope_family_requests_total{family=\"package\",outcome=\"denied\"} 1",
            "regauth_scope_family_requests_total{family=\"registry\",outcome=\"issued\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
