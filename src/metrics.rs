//! Prometheus metrics with the `prometheus-client` crate, exposed in the OpenMetrics text
//! format (which Prometheus scrapes as it does the 0.0.4 text format).
//!
//! - `regauth_registry_token_requests_total{service,outcome}`: token requests by outcome
//!   (`issued`, `partial` — some requested actions left out —, `denied`, `unauthorized`,
//!   `throttled`, `error`); the service label is the configured name or `unknown`, never free
//!   text.
//! - `regauth_scope_family_requests_total{family,outcome}`: requests by scope family —
//!   `registry` (`/jwt/auth`, outcomes as above), `repository` and `package`
//!   (`/-/forward-auth`: `allowed`, `denied`, `unauthorized`, `throttled`, `error`).
//! - `regauth_http_request_duration_seconds{method,route}`: latency histogram by route pattern.
//! - `regauth_database_errors_total`: database errors seen by this process.
//! - `regauth_login_failures_total{route}`, `regauth_login_lockouts_total{key}`,
//!   `regauth_login_throttled_total{reason}`, `regauth_login_delayed_total`: brute-force
//!   protection (failed credential checks; keys locked; 429 answers; attempts delayed).
//! - `regauth_address_refusals_total{route}`: valid credentials used from outside their
//!   `ip_restriction_ranges` (the token's or a group's): a leak signal.
//! - `regauth_registry_events_total{action,result}`: the registry's notifications by action
//!   (`push`, `pull`, `mount`, `delete`) and `recorded` or `duplicate` (a retry, not counted
//!   again); `regauth_registry_events_odd_total`: events set aside (logged) as unreadable;
//!   `regauth_registry_event_envelopes_total{outcome}`: `accepted`, `unauthorized`, `invalid`,
//!   `error`; `regauth_registry_new_addresses_total`: tokens seen acting from a network (/24,
//!   /64) they had not used within `registry_new_address_days`.
//! - `regauth_deploy_tokens_{created,revoked,deleted}_total{scope}`: counted in the database at
//!   scrape time, so they include tokens made by the CLI or by other replicas (every replica
//!   reports the same cluster-wide value: aggregate with `max`, not `sum`).
//!
//! - `regauth_build_info{version,commit}`: always 1; what is running, for dashboards and alerts.
//! - `regauth_workload_logins_total{issuer,outcome}`: federated logins (an OIDC token of a
//!   configured issuer, or `unknown`) by outcome (`accepted` or why it was refused);
//!   `regauth_oidc_key_fetch_failures_total{issuer}`: failed fetches of an issuer's keys.
//!
//! Every counter with a fixed label set is created at start, so counting a token request is an
//! atomic add: no lock, no allocation on the hot path.

use std::time::Duration;

use prometheus_client::encoding::text::{encode, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::access::policy::ScopeFamily;
use crate::domain::registry_event::RegistryAction;
use crate::domain::DeployTokenScope;
use crate::store::{ScopeCounts, TokenCacheLookups};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::EnumCount, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
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
    const ALL: [TokenOutcome; 6] = [
        TokenOutcome::Issued,
        TokenOutcome::Partial,
        TokenOutcome::Denied,
        TokenOutcome::Unauthorized,
        TokenOutcome::Throttled,
        TokenOutcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which service a token request named: one of the configured two, or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount)]
pub enum ServiceLabel {
    Registry,
    VirtualRegistry,
    Unknown,
}

/// Where a credential was checked (the `route` label of login failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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
    /// `/oauth/token`, the token exchange of an OIDC token (workload identity).
    TokenExchange,
}

impl LoginRoute {
    pub const ALL: [LoginRoute; 6] = [
        LoginRoute::Registry,
        LoginRoute::RefreshToken,
        LoginRoute::Api,
        LoginRoute::ForwardAuth,
        LoginRoute::Web,
        LoginRoute::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a brute-force lock is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum LockKey {
    Address,
    Username,
}

impl LockKey {
    const ALL: [LockKey; 2] = [LockKey::Address, LockKey::Username];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why an attempt was answered 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Throttled {
    /// Its address or username is locked.
    Locked,
    /// It should have waited out a delay, but too many attempts were waiting already.
    Overloaded,
}

impl Throttled {
    const ALL: [Throttled; 2] = [Throttled::Locked, Throttled::Overloaded];

    fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    service: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginRouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LockKeyLabel {
    key: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    issuer: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabel {
    issuer: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Registers a counter family and creates one counter per label value, in `values` order.
fn precreated<L, V, const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: [V; N],
    labels: impl Fn(V) -> L,
) -> [Counter; N]
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, Counter>::default();
    let counters = values.map(|value| family.get_or_create(&labels(value)).clone());
    registry.register(name, help, family);
    counters
}

pub struct Metrics {
    registry: Registry,
    /// By [`ServiceLabel`], then [`TokenOutcome`]: handles into the registered family.
    token_requests: [[Counter; TokenOutcome::ALL.len()]; <ServiceLabel as strum::EnumCount>::COUNT],
    /// The `registry` scope family, by [`TokenOutcome`].
    registry_family_requests: [Counter; TokenOutcome::ALL.len()],
    /// Every family: forward-auth outcomes are a small fixed set of names.
    family_requests: Family<FamilyLabels, Counter>,
    request_durations: HistogramFamily,
    login_failures: [Counter; LoginRoute::ALL.len()],
    address_refusals: [Counter; LoginRoute::ALL.len()],
    lockouts: [Counter; LockKey::ALL.len()],
    throttled: [Counter; Throttled::ALL.len()],
    delayed: Counter,
    /// `regauth_tokens_revoked_total{reason="leaked"}`.
    revoked_leaked: Counter,
    workload_logins: Family<WorkloadLabels, Counter>,
    oidc_key_fetch_failures: Family<IssuerLabel, Counter>,
    /// By [`RegistryAction`], then recorded (0) or duplicate (1).
    registry_events: [[Counter; 2]; RegistryAction::ALL.len()],
    registry_events_odd: Counter,
    registry_new_addresses: Counter,
    registry_event_envelopes: [Counter; EnvelopeOutcome::ALL.len()],
}

/// What became of one `POST /api/v4/container_registry_event/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum EnvelopeOutcome {
    Accepted,
    Unauthorized,
    Invalid,
    Error,
}

impl EnvelopeOutcome {
    const ALL: [EnvelopeOutcome; 4] = [
        EnvelopeOutcome::Accepted,
        EnvelopeOutcome::Unauthorized,
        EnvelopeOutcome::Invalid,
        EnvelopeOutcome::Error,
    ];

    fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryEventLabels {
    action: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

impl Metrics {
    /// `registry_service` and `virtual_registry_service` are the configured service names.
    pub fn new(registry_service: &str, virtual_registry_service: &str) -> Metrics {
        let mut registry = Registry::default();
        let token_family = Family::<TokenLabels, Counter>::default();
        let counters = |service: &str| {
            TokenOutcome::ALL.map(|outcome| {
                token_family
                    .get_or_create(&TokenLabels {
                        service: service.to_owned(),
                        outcome: outcome.as_str(),
                    })
                    .clone()
            })
        };
        let token_requests = [
            counters(registry_service),
            counters(virtual_registry_service),
            counters("unknown"),
        ];
        registry.register(
            "regauth_registry_token_requests",
            "Registry token requests by service and outcome",
            token_family,
        );
        let family_requests = Family::<FamilyLabels, Counter>::default();
        let registry_family_requests = TokenOutcome::ALL.map(|outcome| {
            family_requests
                .get_or_create(&FamilyLabels {
                    family: ScopeFamily::Registry.as_str(),
                    outcome: outcome.as_str(),
                })
                .clone()
        });
        registry.register(
            "regauth_scope_family_requests",
            "Requests by scope family (registry, repository, package) and outcome",
            family_requests.clone(),
        );
        registry.register(
            "regauth_build",
            "The version of regauth and the git commit it was built from",
            prometheus_client::metrics::info::Info::new(vec![
                ("version", crate::build_info::VERSION),
                ("commit", crate::build_info::COMMIT),
            ]),
        );
        let request_durations = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "regauth_http_request_duration_seconds",
            "HTTP request latency by route",
            request_durations.clone(),
        );
        let login_failures = precreated(
            &mut registry,
            "regauth_login_failures",
            "Failed credential checks, by where the credential was checked",
            LoginRoute::ALL,
            |route| LoginRouteLabel {
                route: route.as_str(),
            },
        );
        let address_refusals = precreated(
            &mut registry,
            "regauth_address_refusals",
            "Valid credentials refused because they were used from outside their address allow-list",
            LoginRoute::ALL,
            |route| LoginRouteLabel {
                route: route.as_str(),
            },
        );
        let lockouts = precreated(
            &mut registry,
            "regauth_login_lockouts",
            "Client addresses or usernames locked by failed logins",
            LockKey::ALL,
            |key| LockKeyLabel { key: key.as_str() },
        );
        let throttled = precreated(
            &mut registry,
            "regauth_login_throttled",
            "Login attempts answered 429, by reason",
            Throttled::ALL,
            |reason| ReasonLabel {
                reason: reason.as_str(),
            },
        );
        let delayed = Counter::default();
        registry.register(
            "regauth_login_delayed",
            "Login attempts delayed after earlier failures",
            delayed.clone(),
        );
        let [revoked_leaked] = precreated(
            &mut registry,
            "regauth_tokens_revoked",
            "Tokens revoked, by reason (leaked: reported by value)",
            ["leaked"],
            |reason| ReasonLabel { reason },
        );
        let workload_logins = Family::<WorkloadLabels, Counter>::default();
        registry.register(
            "regauth_workload_logins",
            "Federated logins with an OIDC token, by issuer and outcome",
            workload_logins.clone(),
        );
        let oidc_key_fetch_failures = Family::<IssuerLabel, Counter>::default();
        registry.register(
            "regauth_oidc_key_fetch_failures",
            "Failed fetches of an OIDC issuer's discovery document or keys",
            oidc_key_fetch_failures.clone(),
        );
        let event_family = Family::<RegistryEventLabels, Counter>::default();
        let registry_events = RegistryAction::ALL.map(|action| {
            ["recorded", "duplicate"].map(|result| {
                event_family
                    .get_or_create(&RegistryEventLabels {
                        action: action.as_str(),
                        result,
                    })
                    .clone()
            })
        });
        registry.register(
            "regauth_registry_events",
            "Registry notification events by action, recorded or duplicate (a retry)",
            event_family,
        );
        let registry_events_odd = Counter::default();
        registry.register(
            "regauth_registry_events_odd",
            "Registry notification events set aside as unreadable (logged)",
            registry_events_odd.clone(),
        );
        let registry_new_addresses = Counter::default();
        registry.register(
            "regauth_registry_new_addresses",
            "Deploy tokens seen at the registry acting from a network they had not used lately",
            registry_new_addresses.clone(),
        );
        let registry_event_envelopes = precreated(
            &mut registry,
            "regauth_registry_event_envelopes",
            "Registry notification envelopes by outcome",
            EnvelopeOutcome::ALL,
            |outcome| OutcomeLabel {
                outcome: outcome.as_str(),
            },
        );
        Metrics {
            revoked_leaked,
            registry,
            workload_logins,
            oidc_key_fetch_failures,
            registry_events,
            registry_events_odd,
            registry_new_addresses,
            registry_event_envelopes,
            token_requests,
            registry_family_requests,
            family_requests,
            request_durations,
            login_failures,
            address_refusals,
            lockouts,
            throttled,
            delayed,
        }
    }

    /// One `/jwt/auth` request: counted by service and in the `registry` scope family.
    pub fn record_token_request(&self, service: ServiceLabel, outcome: TokenOutcome) {
        self.token_requests[service as usize][outcome as usize].inc();
        self.registry_family_requests[outcome as usize].inc();
    }

    pub fn record_login_failure(&self, route: LoginRoute) {
        self.login_failures[route as usize].inc();
    }

    pub fn record_address_refusal(&self, route: LoginRoute) {
        self.address_refusals[route as usize].inc();
    }

    /// A leaked token newly revoked.
    pub fn record_leaked_revocation(&self) {
        self.revoked_leaked.inc();
    }

    pub fn record_lockout(&self, key: LockKey) {
        self.lockouts[key as usize].inc();
    }

    pub fn record_throttled(&self, reason: Throttled) {
        self.throttled[reason as usize].inc();
    }

    /// One registry event: `recorded`, or a `duplicate` of one recorded before.
    pub fn record_registry_event(&self, action: RegistryAction, duplicate: bool) {
        self.registry_events[action as usize][usize::from(duplicate)].inc();
    }

    pub fn record_odd_registry_event(&self) {
        self.registry_events_odd.inc();
    }

    pub fn record_new_address(&self) {
        self.registry_new_addresses.inc();
    }

    pub fn record_event_envelope(&self, outcome: EnvelopeOutcome) {
        self.registry_event_envelopes[outcome as usize].inc();
    }

    pub fn record_delayed(&self) {
        self.delayed.inc();
    }

    /// `issuer` is a configured issuer's URL or `unknown`, never caller text; `outcome` one of
    /// a fixed set of names.
    pub fn record_workload_login(&self, issuer: &str, outcome: &'static str) {
        self.workload_logins
            .get_or_create(&WorkloadLabels {
                issuer: issuer.to_owned(),
                outcome,
            })
            .inc();
    }

    /// `issuer` is a configured issuer's URL.
    pub fn record_oidc_key_fetch_failure(&self, issuer: &str) {
        self.oidc_key_fetch_failures
            .get_or_create(&IssuerLabel {
                issuer: issuer.to_owned(),
            })
            .inc();
    }

    /// One request of a scope family other than the registry's (those are counted by
    /// [`Metrics::record_token_request`]); `outcome` is one of a fixed set of names.
    pub fn record_family_request(&self, family: ScopeFamily, outcome: &'static str) {
        self.family_requests
            .get_or_create(&FamilyLabels {
                family: family.as_str(),
                outcome,
            })
            .inc();
    }

    /// `route` is the matched route pattern (or `unmatched`), never the raw path.
    pub fn observe_request(&self, method: &'static str, route: String, elapsed: Duration) {
        self.request_durations
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }

    /// The whole exposition. `scope_counts` comes from the database at scrape time,
    /// `cache_lookups` from the store (none: the token cache is off).
    pub fn render(
        &self,
        scope_counts: &ScopeCounts,
        database_errors: u64,
        cache_lookups: Option<TokenCacheLookups>,
    ) -> String {
        let mut scrape = Registry::default();
        scrape.register(
            "regauth_database_errors",
            "Database errors seen by this process",
            ConstCounter::new(database_errors),
        );
        if let Some(lookups) = cache_lookups {
            let family = Family::<ResultLabel, Counter>::default();
            for (result, count) in [
                ("hit", lookups.hits),
                ("miss", lookups.misses),
                ("bypassed", lookups.bypassed),
            ] {
                family.get_or_create(&ResultLabel { result }).inc_by(count);
            }
            scrape.register(
                "regauth_token_cache_lookups",
                "Deploy-token lookups by how the token cache answered: hit, miss (read from the \
                 database and kept), bypassed (the cache could not tell whether the database \
                 changed, so the database answered)",
                family,
            );
        }
        for (state, help, pick) in [
            ("created", "Deploy tokens created, by scope", 0usize),
            (
                "revoked",
                "Deploy tokens revoked (deleted ones included), by scope",
                1,
            ),
            ("deleted", "Deploy tokens deleted, by scope", 2),
        ] {
            let family = Family::<ScopeLabel, Counter>::default();
            for scope in DeployTokenScope::ALL {
                let counts = scope_counts.get(scope);
                let value = [counts.created, counts.revoked, counts.deleted][pick];
                family
                    .get_or_create(&ScopeLabel {
                        scope: scope.as_str(),
                    })
                    .inc_by(value);
            }
            scrape.register(format!("regauth_deploy_tokens_{state}"), help, family);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode(&mut out, &scrape);
        out
    }
}

crate::every_variant_listed!(TokenOutcome, in_order);
crate::every_variant_listed!(LoginRoute, in_order);
crate::every_variant_listed!(LockKey, in_order);
crate::every_variant_listed!(Throttled, in_order);
crate::every_variant_listed!(EnvelopeOutcome, in_order);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_at_or_above_it() {
        let metrics = Metrics::new("container_registry", "dependency_proxy");
        metrics.observe_request("GET", "/jwt/auth".into(), Duration::from_millis(3));
        metrics.observe_request("GET", "/jwt/auth".into(), Duration::from_secs(10));
        let text = metrics.render(&ScopeCounts::default(), 0, None);
        let line = |needle: &str| {
            text.lines()
                .find(|line| line.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
                .to_owned()
        };
        assert!(line("regauth_http_request_duration_seconds_bucket{le=\"0.0025\",method=\"GET\",route=\"/jwt/auth\"}").ends_with(" 0"));
        assert!(line("regauth_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/jwt/auth\"}").ends_with(" 1"));
        assert!(line("regauth_http_request_duration_seconds_bucket{le=\"5.0\",method=\"GET\",route=\"/jwt/auth\"}").ends_with(" 1"));
        assert!(line("regauth_http_request_duration_seconds_bucket{le=\"+Inf\",method=\"GET\",route=\"/jwt/auth\"}").ends_with(" 2"));
        assert!(line(
            "regauth_http_request_duration_seconds_count{method=\"GET\",route=\"/jwt/auth\"}"
        )
        .ends_with(" 2"));
    }

    #[test]
    fn token_requests_are_counted_under_the_configured_service_name() {
        let metrics = Metrics::new("registry", "proxy");
        metrics.record_token_request(ServiceLabel::VirtualRegistry, TokenOutcome::Denied);
        metrics.record_token_request(ServiceLabel::VirtualRegistry, TokenOutcome::Denied);
        let text = metrics.render(&ScopeCounts::default(), 0, None);
        assert!(
            text.contains(
                "regauth_registry_token_requests_total{service=\"proxy\",outcome=\"denied\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "regauth_registry_token_requests_total{service=\"registry\",outcome=\"issued\"} 0\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }
}
