//! Typed settings: built-in defaults < `regauth.toml` (or the file named by `REGAUTH_CONFIG`)
//! < `REGAUTH_*` environment variables < `REGAUTH_*_FILE` files. Values are typed as they are
//! read (socket addresses, durations, URLs), then validated once; an invalid setting stops the
//! start with a message that names it.
//!
//! Every setting may be given as `REGAUTH_<NAME>_FILE`, the path of a file holding the value
//! (Docker and Kubernetes secrets). This comes from one place, [`file_variants`], for every
//! field of [`RawSettings`]: a new setting gets its environment variable and its `_FILE`
//! variant by being added to `RawSettings` and its `Default`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::jwt::{KeyAlgorithm, TokenHeader};
use crate::redact::redact_url_password;

mod names;
mod notify_at;
pub mod oidc;
mod registry_events;
mod smtp;
mod trusted_proxies;

pub use notify_at::NotifyAt;
pub use registry_events::RegistryEventsSecret;
pub use smtp::{parse_from, SmtpSettings, SmtpSettingsError};
pub use trusted_proxies::TrustedProxies;

/// `memory://` (empty) or `memory://PATH` (a copy of the SQLite database at PATH): a
/// `database_url` for a database in memory, lost at exit — for tests and demos.
pub const MEMORY_URL_PREFIX: &str = "memory://";

/// Settings as written in the file and the environment. The doc comment of each field is
/// its entry in the configuration reference (`docs/configuration.md`, generated from them
/// by `tests/api/docs.rs`); a new setting needs one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    /// Address:port to bind (an IP address, not a host name).
    #[serde(deserialize_with = "socket_address")]
    listen: SocketAddr,
    /// SQLite file, `postgres://user:pass@host/db`, or `memory://` (see [Durability and
    /// outages](operations.md#durability-and-outages)). Outside `serve` and `migrate`, a SQLite
    /// file that does not exist is refused.
    database_url: String,
    /// JWT `iss`; must equal the registry's `issuer`.
    issuer: String,
    /// JWT lifetime (10 s – 1 d).
    token_ttl: Seconds,
    /// Lifetime of refresh (docker identity) tokens (30 days by default); never beyond the
    /// deploy token's own expiry.
    refresh_token_ttl: Seconds,
    /// Live refresh tokens kept per deploy token (1–1000); a login beyond that removes the
    /// oldest. Expired ones are swept at start and hourly, and all of a token's go when it is
    /// revoked.
    refresh_tokens_per_deploy_token: u32,
    /// The longest a new deploy token or personal access token may live, in days (at most
    /// 36500); `0`: no limit. A group may set a shorter one for the tokens created in it and
    /// below it. Existing tokens keep their expiry. See [Token lifetime and
    /// rotation](token-lifetime-and-rotation.md).
    max_token_lifetime_days: u32,
    /// New deploy tokens and personal access tokens must have an expiry date (implied by
    /// `max_token_lifetime_days`). A deploy token without one is refused; a personal access
    /// token without one gets the longest allowed (365 days without a maximum), as in GitLab.
    require_token_expiry: bool,
    /// How long the replaced secret of a rotated token keeps working (at most 30 days);
    /// a rotation may ask for less. `0`: the old secret stops at once.
    token_rotation_grace: Seconds,
    /// Signing keys: `bundle.crt`, `jwks.json` and each key's certificate (readable by a
    /// registry running as another user), private keys in `private/` (0600); see [Key
    /// rotation](registry.md#key-rotation).
    keys_dir: PathBuf,
    /// Algorithm of keys regauth generates (`es256`, `rs256`).
    key_algorithm: String,
    /// JWT header form: `x5c` (registry 2.8 and 3.x with `rootcertbundle`) or `jwks` (registry
    /// 3.x with `jwks`; 2.8 refuses it); see [Registry 2.8 or
    /// 3.x](registry.md#registry-28-or-3x-the-token-header-token_header).
    token_header: String,
    /// AES-256 key (64 hex digits, mode 0600, in a 0700 folder) sealing `gitlab-deploy-token`
    /// secrets for CI; created on first start; must not be a `*.key` in `keys_dir`. Not set:
    /// `<keys_dir>/ci/ci-secret.aes256` (`<keys_dir>/ci-secret.aes256` where an older version
    /// made it).
    ci_secret_key_file: Option<PathBuf>,
    /// Service name of the container registry.
    registry_service: String,
    /// Service name of the virtual registry.
    virtual_registry_service: String,
    /// Prefix of new secrets (secret scanners look for it).
    token_prefix: String,
    /// With it (`acme-`), new secrets are `acme-dt-…`, `acme-pat-…`, `acme-rt-…` (GitLab's
    /// instance prefixes), so scanners can tell this instance's leaks apart; at most 20
    /// lowercase letters, digits or `-`. Not set: `token_prefix`, `glpat-`, `regauth-rt-`.
    token_instance_prefix: String,
    /// Where clients reach regauth (the realm `serve` prints); an `http(s)://` URL. Not set:
    /// `http://<listen>` with the bound port; listening on `0.0.0.0` or `[::]` without it,
    /// `serve` warns.
    #[serde(with = "optional_url")]
    public_url: Option<Url>,
    /// `text` or `json` logs on stderr (`RUST_LOG` filters).
    log_format: String,
    /// Connection pool size (see [Performance](performance.md)).
    database_max_connections: u32,
    /// Time (1 s – 5 m) a request waits for a database connection before it fails with 503, and
    /// that a start waits for the database before it gives up.
    database_acquire_timeout: Seconds,
    /// Deploy tokens (and project paths) a server keeps in memory; `0` turns the cache off.
    token_cache_capacity: usize,
    /// HTTP worker threads; `0`: one per CPU core.
    workers: usize,
    /// Time in-flight requests get after SIGTERM (at most 1 h).
    shutdown_timeout: Seconds,
    /// How long a [web pages](web-pages.md) sign-in lasts (1 min – 31 d); the session cookie is
    /// `Secure` when regauth serves TLS or `public_url` is `https://`.
    session_ttl: Seconds,
    /// Days registry-token-issue audit records are kept (`0`: forever); token
    /// creation/revocation/deletion records are always kept.
    audit_retention_days: u32,
    /// Time of day (`HH:MM`, UTC) of the daily expiry notification run.
    notify_at: String,
    /// SMTP server for expiry notices: `smtp://host:25`,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`. Not
    /// set: no notices.
    #[serde(with = "optional_url")]
    smtp_url: Option<Url>,
    /// Sender of expiry notices (`addr` or `Name <addr>`).
    smtp_from: String,
    /// Seconds over which failed logins are counted (10–86400).
    login_failure_window: Seconds,
    /// Seconds a locked client address or username stays locked after its last failure (at most
    /// the window).
    login_lockout: Seconds,
    /// Failed logins from one client address within the window that lock it (`0`: addresses are
    /// not limited).
    login_max_failures_per_address: u32,
    /// Failed logins for one username within the window that lock it (`0`: usernames are not
    /// limited); both `0` turns brute-force protection off.
    login_max_failures_per_username: u32,
    /// Login attempts that may wait out their delay at once, per process; beyond, 429 at once.
    login_max_delayed: u32,
    /// Seconds a client may take to send the request line and headers (1–300); then 408 and
    /// closed.
    request_head_timeout: Seconds,
    /// Seconds a client may take to send a body a route reads (1–300); then 408 and closed.
    request_body_timeout: Seconds,
    /// Seconds a TLS handshake may take (1–60), shorter than the head deadline: a connection
    /// that never starts its handshake holds one of `max_connection_rate` slots until then.
    tls_handshake_timeout: Seconds,
    /// Seconds an idle keep-alive connection stays open (`0`: no keep-alive).
    keep_alive: Seconds,
    /// Seconds the server waits for a client to close after the server ended a connection.
    client_disconnect_timeout: Seconds,
    /// Open connections per process (split evenly over the worker threads); beyond it new
    /// connections wait in the listen backlog.
    max_connections: usize,
    /// TLS handshakes in progress per process (split over the workers).
    max_connection_rate: usize,
    /// Largest `POST /jwt/auth` form in bytes (1024–1048576); larger: 413.
    token_body_limit: usize,
    /// Largest management API body in bytes (1024–1048576); larger: 413.
    api_body_limit: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks, a TOML
    /// array or a comma-separated string (`10.0.0.0/8,192.168.1.1`).
    trusted_proxies: ProxyList,
    /// PEM certificate chain (leaf first) of the HTTPS listener; needs `tls_key`. Not set:
    /// plain HTTP.
    tls_certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA or Ed25519) matching
    /// `tls_certificate`.
    tls_key: Option<PathBuf>,
    /// Address:port of a separate plain-HTTP listener that alone serves `/metrics`. Not set:
    /// `/metrics` is served on `listen`.
    #[serde(deserialize_with = "optional_socket_address")]
    metrics_listen: Option<SocketAddr>,
    /// Refuse deploy tokens for git and package requests (`/-/forward-auth`); the container
    /// registry is unaffected.
    external_authorization: bool,
    /// Headers carrying the original URI to `/-/forward-auth` (comma list); those present must
    /// agree, else 403.
    forward_auth_uri_headers: String,
    /// Headers carrying the original method (comma list, must agree); without one the request
    /// is refused (403) and the proxy's configuration error logged: nginx's `auth_request`
    /// sub-request is a GET whatever the original method.
    forward_auth_method_headers: String,
    /// Issuers whose OIDC tokens workload identity policies may trust: `[[oidc_issuers]]`
    /// tables with `url` (exactly the tokens' `iss`), `kind` (`gitlab`, `github`,
    /// `kubernetes`, `generic`) and an optional `jwks_file`; see [Keyless CI and
    /// pods](workload-identity.md).
    oidc_issuers: Vec<oidc::RawOidcIssuer>,
    /// The pre-shared token a GitLab instance's secret detection sends (`Authorization`) to
    /// `/v1/revoke_tokens` (GitLab's Token Revocation API). Not set: that API is off.
    gitlab_token_revocation_token: String,
    /// GitHub's secret-scanning public keys, as `GET /meta/public_keys/secret_scanning` returns
    /// them (a JSON file, re-read when a report names a key it does not hold). Not set:
    /// `/-/secret-scanning/github` is off.
    github_secret_scanning_keys_file: Option<PathBuf>,
    /// Where GitHub's secret-scanning public keys are fetched from (usually
    /// `https://api.github.com/meta/public_keys/secret_scanning`; HTTPS, or HTTP on loopback):
    /// fetched at the first report, kept, and fetched again when a report names a key not
    /// held, at most once a minute. Not set (and no `github_secret_scanning_keys_file`):
    /// `/-/secret-scanning/github` is off.
    github_secret_scanning_keys_url: String,
    /// The whole `Authorization` value the registry's notifications carry to
    /// `/api/v4/container_registry_event/events` (at least 16 printable characters; only its
    /// SHA-256 is kept). Not set: the receiver is off.
    registry_events_secret: Option<String>,
    /// Days after which a network (/24, /64) a deploy token has not acted from counts as new
    /// again: its use is recorded and warned of; `0` turns the warning off.
    registry_new_address_days: u32,
}

/// `trusted_proxies` as a TOML array or as one comma-separated string (the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum ProxyList {
    List(Vec<String>),
    Text(String),
}

impl ProxyList {
    fn entries(&self) -> Vec<String> {
        match self {
            ProxyList::List(items) => items.clone(),
            ProxyList::Text(text) => text
                .split([',', ' '])
                .filter(|item| !item.trim().is_empty())
                .map(|item| item.trim().to_owned())
                .collect(),
        }
    }
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 5001)),
            database_url: "sqlite://regauth.db?mode=rwc".into(),
            issuer: "regauth".into(),
            token_ttl: Seconds(300),
            refresh_token_ttl: Seconds(30 * 86_400),
            refresh_tokens_per_deploy_token: 10,
            max_token_lifetime_days: 0,
            require_token_expiry: false,
            token_rotation_grace: Seconds(0),
            keys_dir: PathBuf::from("keys"),
            key_algorithm: "es256".into(),
            token_header: "x5c".into(),
            ci_secret_key_file: None,
            registry_service: "container_registry".into(),
            virtual_registry_service: "dependency_proxy".into(),
            token_prefix: "gldt-".into(),
            token_instance_prefix: String::new(),
            public_url: None,
            log_format: "text".into(),
            database_max_connections: 10,
            database_acquire_timeout: Seconds(5),
            token_cache_capacity: 10_000,
            workers: 0,
            shutdown_timeout: Seconds(30),
            session_ttl: Seconds(8 * 3600),
            audit_retention_days: 90,
            notify_at: "01:00".into(),
            smtp_url: None,
            smtp_from: "regauth@localhost".into(),
            login_failure_window: Seconds(600),
            login_lockout: Seconds(300),
            login_max_failures_per_address: 20,
            login_max_failures_per_username: 20,
            login_max_delayed: 100,
            request_head_timeout: Seconds(5),
            request_body_timeout: Seconds(10),
            tls_handshake_timeout: Seconds(3),
            keep_alive: Seconds(5),
            client_disconnect_timeout: Seconds(1),
            max_connections: 4096,
            max_connection_rate: 256,
            token_body_limit: 16 * 1024,
            api_body_limit: 16 * 1024,
            trusted_proxies: ProxyList::List(Vec::new()),
            tls_certificate: None,
            tls_key: None,
            metrics_listen: None,
            external_authorization: false,
            forward_auth_uri_headers: "X-Original-URI,X-Forwarded-Uri".into(),
            forward_auth_method_headers: "X-Original-Method,X-Forwarded-Method".into(),
            oidc_issuers: Vec::new(),
            gitlab_token_revocation_token: String::new(),
            github_secret_scanning_keys_file: None,
            github_secret_scanning_keys_url: String::new(),
            registry_events_secret: None,
            registry_new_address_days: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Brute-force protection (see `service::login_guard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottleSettings {
    /// Failures are counted over this sliding window.
    pub window: Duration,
    /// How long a locked address or username stays locked after its last failure.
    pub lockout: Duration,
    /// Failures within the window that lock a client address; 0: addresses are not limited.
    pub max_failures_per_address: u32,
    /// Failures within the window that lock a username; 0: usernames are not limited.
    pub max_failures_per_username: u32,
    /// Attempts that may wait out their delay at once (per process); beyond, 429 at once.
    pub max_delayed: u32,
}

impl LoginThrottleSettings {
    pub fn enabled(&self) -> bool {
        self.max_failures_per_address > 0 || self.max_failures_per_username > 0
    }
}

/// Validated settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub issuer: String,
    pub token_ttl: Duration,
    /// Lifetime of refresh tokens (docker identity tokens); the deploy token's own expiry
    /// and revocation still end them earlier.
    pub refresh_token_ttl: Duration,
    /// Live refresh tokens kept per deploy token; creating one more removes the oldest.
    pub refresh_tokens_per_deploy_token: u32,
    /// The instance's limits on the lifetime of new tokens (groups may add stricter ones).
    pub token_lifetime: crate::domain::token_lifetime::LifetimeLimits,
    /// The longest a rotated token's previous secret keeps working (and the default).
    pub token_rotation_grace: Duration,
    pub keys_dir: PathBuf,
    /// The algorithm of keys that regauth generates itself; loaded keys bring their own.
    pub key_algorithm: KeyAlgorithm,
    /// How tokens name their signing key: `x5c` (certificate chain; registry 2.8 and 3.x with
    /// `rootcertbundle`) or `jwks` (thumbprint `kid` only; registry 3.x with `jwks`).
    pub token_header: TokenHeader,
    /// The AES-256 key file that seals the secrets of `gitlab-deploy-token` tokens for the
    /// CI credentials endpoint; `None` means `<keys_dir>/ci-secret.aes256` (see
    /// [`Settings::ci_secret_key_file`]). Generated on first start.
    pub ci_secret_key_file: Option<PathBuf>,
    pub registry_service: String,
    pub virtual_registry_service: String,
    pub token_prefix: String,
    /// With it, new secrets are `<instance>dt-…`, `<instance>pat-…`, `<instance>rt-…` (GitLab's
    /// instance prefixes), so that scanners can route this instance's leaks to it.
    pub token_instance_prefix: Option<String>,
    /// The URL registries and clients reach regauth at; `None` means `http://{listen}`
    /// with the port actually bound (see [`Settings::public_url`]).
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub database_max_connections: u32,
    /// How long a request waits for a database connection (and a start for the database to
    /// answer) before it fails with 503: during an outage requests fail fast, they do not
    /// pile up.
    pub database_acquire_timeout: Duration,
    /// Deploy tokens (and project paths) a server keeps in memory; 0 turns the cache off.
    pub token_cache_capacity: usize,
    /// HTTP worker threads; 0: one per CPU core.
    pub workers: usize,
    /// How long a stopping server lets in-flight requests finish.
    pub shutdown_timeout: Duration,
    /// How long a web sign-in lasts before the user must sign in again.
    pub session_ttl: Duration,
    /// Days that audit records of registry token issues are kept (0: forever). Records of
    /// token creation, revocation and deletion are always kept.
    pub audit_retention_days: u32,
    /// When the daily expiry notification run starts (UTC).
    pub notify_at: NotifyAt,
    /// Where expiry notices are sent through; `None` turns them off.
    pub smtp: Option<SmtpSettings>,
    pub login_throttle: LoginThrottleSettings,
    /// Limits that keep slow or numerous clients from holding the server.
    pub limits: ConnectionLimits,
    /// Peers whose `X-Forwarded-For` is believed (see `crate::client_address`).
    pub trusted_proxies: TrustedProxies,
    /// HTTPS for the main listener: certificate chain and key files (PEM).
    pub tls: Option<TlsFiles>,
    /// When set, `/metrics` is served only on this address, not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// GitLab's external authorization switch: deploy tokens are refused for git and
    /// package operations (`/-/forward-auth`); the container registry is unaffected.
    pub external_authorization: bool,
    /// Headers that carry the original request URI to `/-/forward-auth`; those present must
    /// carry the same value.
    pub forward_auth_uri_headers: Vec<String>,
    /// Headers that carry the original method; without one, the sub-request's own method
    /// (nginx's `auth_request` keeps the original method).
    pub forward_auth_method_headers: Vec<String>,
    /// Issuers whose OIDC tokens workload-identity policies may trust (`[[oidc_issuers]]`).
    pub oidc_issuers: Vec<oidc::OidcIssuer>,
    /// The pre-shared token of GitLab's Token Revocation API; `None`: off.
    pub gitlab_token_revocation_token: Option<String>,
    /// GitHub's secret-scanning keys; `None`: the partner endpoint is off.
    pub github_secret_scanning_keys_file: Option<PathBuf>,
    /// Where GitHub's secret-scanning keys are fetched from (when no file is given).
    pub github_secret_scanning_keys_url: Option<Url>,
    /// The `Authorization` header the registry's notifications carry; `None` turns the
    /// receiver (`/api/v4/container_registry_event/events`) off.
    pub registry_events_secret: Option<RegistryEventsSecret>,
    /// A deploy token acting at the registry from a network (/24, /64) it has not used in
    /// this many days is a new address, recorded and warned of; 0 turns that off.
    pub registry_new_address_days: u32,
}

/// Time and size limits for client connections (all per server process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send the request line and headers (and a TLS handshake).
    pub request_head_timeout: Duration,
    /// How long a client may take to send a request body, once its handler reads it.
    pub request_body_timeout: Duration,
    /// How long a TLS handshake may take. Shorter than the head deadline: a handshake slot
    /// (`max_connection_rate` per process) held by a connection that sends nothing keeps a real
    /// client waiting until it ends.
    pub tls_handshake_timeout: Duration,
    /// How long an idle keep-alive connection stays open (zero: no keep-alive).
    pub keep_alive: Duration,
    /// How long the server waits for a client to close after the server ended the connection.
    pub client_disconnect_timeout: Duration,
    /// Open connections, all workers together.
    pub max_connections: usize,
    /// TLS handshakes in progress, all workers together.
    pub max_connection_rate: usize,
    /// The largest `POST /jwt/auth` form body, in bytes.
    pub token_body_limit: usize,
    /// The largest management API body, in bytes.
    pub api_body_limit: usize,
}

/// The certificate chain and private key of the HTTPS listener, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

// The database URL may hold a password.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redact_url_password(&self.database_url))
            .field("issuer", &self.issuer)
            .field("token_ttl", &self.token_ttl)
            .field("keys_dir", &self.keys_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Unknown key, or a value of the wrong type; figment's message names the key and where
    /// it came from (file or environment variable).
    #[error("invalid settings: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("invalid setting {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("unknown setting {} in {origin}{}", .unknown.name, did_you_mean(.unknown))]
    Unknown {
        unknown: names::UnknownName,
        /// `the environment` or the config file's path.
        origin: String,
    },
    #[error("cannot read {variable} ({path})")]
    File {
        variable: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn did_you_mean(unknown: &names::UnknownName) -> String {
    match &unknown.did_you_mean {
        Some(name) => format!("; did you mean {name}?"),
        None => String::from(" (the configuration reference lists every setting)"),
    }
}

fn invalid(name: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name: name.into(),
        message: message.into(),
    }
}

/// A duration setting: whole seconds (`300`) or a number with a unit (`300s`, `5m`, `2h`,
/// `30d`), from the file and the environment alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u64")]
struct Seconds(u64);

impl From<Seconds> for u64 {
    fn from(seconds: Seconds) -> u64 {
        seconds.0
    }
}

impl Seconds {
    fn parse(text: &str) -> Option<Seconds> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let factor = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return None,
        };
        number.checked_mul(factor).map(Seconds)
    }

    fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("seconds, or a number with a unit s, m, h or d (such as 300 or 5m)")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Seconds, E> {
                Ok(Seconds(value))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Seconds, E> {
                u64::try_from(value)
                    .map(Seconds)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(value), &self))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Seconds, E> {
                Seconds::parse(value)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `address:port` with the example a person needs when it is not one.
fn socket_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an IP address:port such as 127.0.0.1:5001 or [::]:5001"
        ))
    })
}

/// An optional `address:port` where an empty string means "not set".
fn optional_socket_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) if !text.trim().is_empty() => text.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not an IP address:port such as 127.0.0.1:9090"
            ))
        }),
        _ => Ok(None),
    }
}

/// An optional URL where an empty string (`REGAUTH_PUBLIC_URL=`) means "not set".
mod optional_url {
    use serde::{Deserialize, Deserializer, Serializer};
    use url::Url;

    pub fn serialize<S: Serializer>(url: &Option<Url>, serializer: S) -> Result<S::Ok, S::Error> {
        match url {
            Some(url) => serializer.serialize_some(url.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Url>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) if !text.trim().is_empty() => {
                Url::parse(text.trim()).map(Some).map_err(|error| {
                    serde::de::Error::custom(format!("{text:?} is not a URL ({error})"))
                })
            }
            _ => Ok(None),
        }
    }
}

/// The names of all settings: the fields of [`RawSettings`], read off its serialised
/// defaults so that this list cannot fall behind the struct.
fn setting_names() -> Vec<String> {
    match figment::value::Value::serialize(RawSettings::default()) {
        Ok(figment::value::Value::Dict(_, fields)) => fields.into_keys().collect(),
        _ => Vec::new(),
    }
}

/// Whether `variable` (`REGAUTH_*`) is one regauth accepts, by the rule `load` applies: an
/// error naming the nearest setting when not (the docs check uses it on every name they
/// mention).
pub fn check_variable_name(variable: &str) -> Result<(), SettingsError> {
    match names::unknown_variable(&setting_names(), [variable]) {
        Some(unknown) => Err(SettingsError::Unknown {
            unknown,
            origin: "the environment".into(),
        }),
        None => Ok(()),
    }
}

/// Every setting's name and built-in default as TOML would write it (`not set` for an
/// optional one), by name: the configuration reference's default column, read off the
/// defaults so it cannot drift from them.
pub fn setting_defaults() -> Vec<(String, String)> {
    use figment::value::Value;
    fn text(value: &Value) -> String {
        match value {
            Value::String(_, text) => format!("{text:?}"),
            Value::Char(_, c) => format!("{:?}", c.to_string()),
            Value::Bool(_, b) => b.to_string(),
            Value::Num(_, number) => match number.to_u128() {
                Some(n) => n.to_string(),
                None => number.to_f64().map(|f| f.to_string()).unwrap_or_default(),
            },
            Value::Empty(..) => "not set".to_owned(),
            Value::Array(_, items) => {
                let items: Vec<String> = items.iter().map(text).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Dict(..) => "(table)".to_owned(),
        }
    }
    let Ok(Value::Dict(_, fields)) = Value::serialize(RawSettings::default()) else {
        return Vec::new();
    };
    fields
        .iter()
        .map(|(name, value)| (name.clone(), text(value)))
        .collect()
}

/// `REGAUTH_<NAME>_FILE` for every setting: `(name, trimmed file content)` for each one set.
/// Setting both `REGAUTH_<NAME>` and `REGAUTH_<NAME>_FILE` is refused, as the official
/// Docker images do, rather than one silently winning.
fn file_variants(
    names: &[String],
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, SettingsError> {
    let mut values = Vec::new();
    for name in names {
        let variable = format!("REGAUTH_{}", name.to_ascii_uppercase());
        let file_variable = format!("{variable}_FILE");
        let Some(path) = var(&file_variable) else {
            continue;
        };
        if var(&variable).is_some() {
            return Err(invalid(
                file_variable,
                format!("set {variable} or {variable}_FILE, not both"),
            ));
        }
        let content = std::fs::read_to_string(&path).map_err(|source| SettingsError::File {
            variable: file_variable.clone(),
            path: path.clone(),
            source,
        })?;
        values.push((name.clone(), content.trim().to_owned()));
    }
    Ok(values)
}

/// The config file's top-level keys must be settings (figment would name an unknown key
/// too, but without the nearest known name).
fn check_file_keys(
    names: &[String],
    toml: &figment::providers::Data<Toml>,
) -> Result<(), SettingsError> {
    use figment::Provider as _;
    // A file that does not parse is reported by the extraction, with its line.
    let Ok(profiles) = toml.data() else {
        return Ok(());
    };
    let keys = profiles
        .values()
        .flat_map(|dict| dict.keys().map(String::as_str));
    match names::unknown_key(names, keys) {
        Some(unknown) => Err(SettingsError::Unknown {
            unknown,
            origin: toml
                .metadata()
                .source
                .map(|source| source.to_string())
                .unwrap_or_else(|| "the config file".into()),
        }),
        None => Ok(()),
    }
}

impl Settings {
    /// The token kinds' prefixes in force (`token_prefix`, `token_instance_prefix`).
    pub fn token_formats(&self) -> crate::domain::token_format::TokenFormats {
        crate::domain::token_format::TokenFormats::new(
            &self.token_prefix,
            self.token_instance_prefix.as_deref(),
        )
    }

    /// Loads from `regauth.toml` (or `$REGAUTH_CONFIG`), the environment and `_FILE` files.
    /// A missing `regauth.toml` is fine (the defaults and the environment apply); a missing
    /// file named by `REGAUTH_CONFIG` is an error, as is any unknown name.
    pub fn load() -> Result<Settings, SettingsError> {
        let (file, named) = match std::env::var("REGAUTH_CONFIG") {
            Ok(path) => (path, true),
            Err(_) => ("regauth.toml".to_owned(), false),
        };
        if named && !std::path::Path::new(&file).is_file() {
            return Err(SettingsError::File {
                variable: "REGAUTH_CONFIG".into(),
                source: std::fs::metadata(&file).err().unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file")
                }),
                path: file,
            });
        }
        let variables: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        if let Some(unknown) =
            names::unknown_variable(&setting_names(), variables.iter().map(String::as_str))
        {
            return Err(SettingsError::Unknown {
                unknown,
                origin: "the environment".into(),
            });
        }
        Settings::from_sources(Toml::file(&file), |name| std::env::var(name).ok())
    }

    /// Defaults < `toml` < `REGAUTH_*` (read by figment) < `REGAUTH_*_FILE` (read through
    /// `var`, so that tests can supply them).
    fn from_sources(
        toml: figment::providers::Data<Toml>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let names = setting_names();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        check_file_keys(&names, &toml)?;
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(toml)
            // Only our names: REGAUTH_CONFIG and REGAUTH_*_FILE are not settings.
            .merge(Env::prefixed("REGAUTH_").only(&name_refs));
        for (name, value) in file_variants(&names, var)? {
            figment = figment.merge((name, value));
        }
        // Lossy: a number or boolean read from a file arrives as text.
        let raw: RawSettings = figment.extract_lossy().map_err(Box::new)?;
        Settings::validate(raw)
    }

    /// The defaults, for tests and tools.
    pub fn defaults() -> Settings {
        // The defaults are valid by construction; tested below.
        match Settings::validate(RawSettings::default()) {
            Ok(settings) => settings,
            Err(_) => unreachable_defaults(),
        }
    }

    fn validate(raw: RawSettings) -> Result<Settings, SettingsError> {
        if !(raw.database_url.starts_with("sqlite:")
            || raw.database_url.starts_with("postgres")
            || raw.database_url.starts_with(MEMORY_URL_PREFIX))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:, postgres:// (or postgresql://) or memory://",
            ));
        }
        if raw.issuer.trim().is_empty() {
            return Err(invalid("issuer", "must not be empty"));
        }
        if !(10..=86_400).contains(&raw.token_ttl.0) {
            return Err(invalid(
                "token_ttl",
                format!(
                    "{} s is out of range: between 10 s and 86400 s (1d)",
                    raw.token_ttl.0
                ),
            ));
        }
        if !(60..=366 * 86_400).contains(&raw.refresh_token_ttl.0) {
            return Err(invalid(
                "refresh_token_ttl",
                format!(
                    "{} s is out of range: between 60 s and 31622400 s (366d)",
                    raw.refresh_token_ttl.0
                ),
            ));
        }
        let key_algorithm: KeyAlgorithm = raw
            .key_algorithm
            .parse()
            .map_err(|_| invalid("key_algorithm", "must be es256 or rs256"))?;
        let token_header: TokenHeader = raw.token_header.parse().map_err(|message: String| {
            invalid(
                "token_header",
                format!("{message} (x5c: registry 2.8/3.x with rootcertbundle; jwks: registry 3.x with jwks)"),
            )
        })?;
        for (name, value) in [
            ("registry_service", &raw.registry_service),
            ("virtual_registry_service", &raw.virtual_registry_service),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(name, "must not be empty"));
            }
        }
        if raw.registry_service == raw.virtual_registry_service {
            return Err(invalid(
                "virtual_registry_service",
                "must differ from registry_service",
            ));
        }
        if raw.token_prefix.len() > 20
            || !raw
                .token_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "token_prefix",
                "at most 20 letters, digits, '-' or '_'",
            ));
        }
        if raw.token_instance_prefix.len() > 20
            || !raw
                .token_instance_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                "token_instance_prefix",
                "at most 20 lowercase letters, digits or '-' (e.g. \"acme-\")",
            ));
        }
        let log_format = match raw.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("{other:?}: use text or json"),
                ))
            }
        };
        if raw.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        if raw.workers > 1024 {
            return Err(invalid("workers", "at most 1024 (0: one per CPU core)"));
        }
        if raw.token_cache_capacity > 10_000_000 {
            return Err(invalid(
                "token_cache_capacity",
                "at most 10000000 (0 turns the cache off)",
            ));
        }
        if raw.audit_retention_days > 36_500 {
            return Err(invalid(
                "audit_retention_days",
                "at most 36500 (0 keeps records forever)",
            ));
        }
        if !(1..=300).contains(&raw.database_acquire_timeout.0) {
            return Err(invalid(
                "database_acquire_timeout",
                format!(
                    "{} s is out of range: between 1 s and 300 s (5m)",
                    raw.database_acquire_timeout.0
                ),
            ));
        }
        if !(1..=1000).contains(&raw.refresh_tokens_per_deploy_token) {
            return Err(invalid(
                "refresh_tokens_per_deploy_token",
                format!(
                    "{} is out of range: between 1 and 1000",
                    raw.refresh_tokens_per_deploy_token
                ),
            ));
        }
        if raw.max_token_lifetime_days > crate::domain::token_lifetime::MAX_LIFETIME_DAYS {
            return Err(invalid(
                "max_token_lifetime_days",
                format!(
                    "{} is out of range: at most {} (0: no limit)",
                    raw.max_token_lifetime_days,
                    crate::domain::token_lifetime::MAX_LIFETIME_DAYS
                ),
            ));
        }
        if raw.token_rotation_grace.0 > 30 * 86_400 {
            return Err(invalid(
                "token_rotation_grace",
                format!(
                    "{} s is out of range: at most 2592000 s (30d)",
                    raw.token_rotation_grace.0
                ),
            ));
        }
        let window = raw.login_failure_window.0;
        if !(10..=86_400).contains(&window) {
            return Err(invalid(
                "login_failure_window",
                format!("{window} is out of range: seconds between 10 and 86400"),
            ));
        }
        if raw.login_lockout.0 == 0 || raw.login_lockout.0 > window {
            return Err(invalid(
                "login_lockout",
                format!(
                    "{} is out of range: at least 1 second and at most login_failure_window ({window})",
                    raw.login_lockout.0
                ),
            ));
        }
        if raw.login_max_delayed == 0 || raw.login_max_delayed > 100_000 {
            return Err(invalid("login_max_delayed", "between 1 and 100000"));
        }
        let login_throttle = LoginThrottleSettings {
            window: raw.login_failure_window.duration(),
            lockout: raw.login_lockout.duration(),
            max_failures_per_address: raw.login_max_failures_per_address,
            max_failures_per_username: raw.login_max_failures_per_username,
            max_delayed: raw.login_max_delayed,
        };
        if raw.shutdown_timeout.0 > 3600 {
            return Err(invalid("shutdown_timeout", "at most 3600 seconds"));
        }
        if !(60..=31 * 86_400).contains(&raw.session_ttl.0) {
            return Err(invalid(
                "session_ttl",
                format!(
                    "{} s is out of range: between 60 s and 2678400 s (31d)",
                    raw.session_ttl.0
                ),
            ));
        }
        if let Some(url) = &raw.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    "public_url",
                    format!("{:?} must start with http:// or https://", url.as_str()),
                ));
            }
        }
        let limits = validate_limits(&raw)?;
        // Stored without a trailing slash: routes append their paths to it.
        let public_url = raw
            .public_url
            .map(|url| url.as_str().trim_end_matches('/').to_owned());
        let notify_at =
            NotifyAt::parse(&raw.notify_at).map_err(|message| invalid("notify_at", message))?;
        let smtp = match &raw.smtp_url {
            Some(url) => SmtpSettings::parse(url.as_str(), &raw.smtp_from).map(Some),
            None => parse_from(&raw.smtp_from).map(|_| None),
        }
        .map_err(|error| invalid(error.setting, error.message))?;
        let ci_secret_key_file = raw
            .ci_secret_key_file
            .filter(|path| !path.as_os_str().is_empty());
        if let Some(path) = &ci_secret_key_file {
            let private = raw.keys_dir.join(crate::jwt::PRIVATE_DIR_NAME);
            if path.extension().is_some_and(|ext| ext == "key")
                && (path.parent() == Some(raw.keys_dir.as_path())
                    || path.parent() == Some(private.as_path()))
            {
                return Err(invalid(
                    "ci_secret_key_file",
                    format!(
                        "{} would be loaded as a signing key: every *.key in keys_dir and keys_dir/private is one; use another name or folder",
                        path.display()
                    ),
                ));
            }
        }
        let trusted_proxies = TrustedProxies::parse(&raw.trusted_proxies.entries())
            .map_err(|message| invalid("trusted_proxies", message))?;
        let given = |path: &Option<PathBuf>| path.clone().filter(|p| !p.as_os_str().is_empty());
        let tls = match (given(&raw.tls_certificate), given(&raw.tls_key)) {
            (None, None) => None,
            (Some(certificate), Some(key)) => Some(TlsFiles { certificate, key }),
            (Some(_), None) => return Err(invalid("tls_key", "is needed with tls_certificate")),
            (None, Some(_)) => return Err(invalid("tls_certificate", "is needed with tls_key")),
        };
        let forward_auth_uri_headers =
            header_list("forward_auth_uri_headers", &raw.forward_auth_uri_headers)?;
        let forward_auth_method_headers = header_list(
            "forward_auth_method_headers",
            &raw.forward_auth_method_headers,
        )?;
        let github_secret_scanning_keys_url = match raw.github_secret_scanning_keys_url.trim() {
            "" => None,
            text => {
                let url = Url::parse(text).map_err(|error| {
                    invalid(
                        "github_secret_scanning_keys_url",
                        format!("{text:?} is not a URL ({error})"),
                    )
                })?;
                if !oidc::is_allowed_fetch_url(&url) {
                    return Err(invalid(
                        "github_secret_scanning_keys_url",
                        "must be https:// (http:// only on a loopback address)",
                    ));
                }
                Some(url)
            }
        };
        let oidc_issuers = oidc::validate_issuers(&raw.oidc_issuers)
            .map_err(|(name, message)| invalid(name, message))?;
        if forward_auth_uri_headers.is_empty() {
            return Err(invalid(
                "forward_auth_uri_headers",
                "name at least one header, such as X-Original-URI",
            ));
        }
        let registry_events_secret = raw
            .registry_events_secret
            .as_deref()
            .filter(|value| !value.is_empty())
            .map(RegistryEventsSecret::parse)
            .transpose()
            .map_err(|message| invalid("registry_events_secret", message))?;
        if raw.registry_new_address_days > 3650 {
            return Err(invalid(
                "registry_new_address_days",
                "at most 3650 (0 turns the new-address warning off)",
            ));
        }
        Ok(Settings {
            listen: raw.listen,
            database_url: raw.database_url,
            issuer: raw.issuer,
            token_ttl: raw.token_ttl.duration(),
            refresh_token_ttl: raw.refresh_token_ttl.duration(),
            refresh_tokens_per_deploy_token: raw.refresh_tokens_per_deploy_token,
            token_lifetime: crate::domain::token_lifetime::LifetimeLimits {
                max_days: (raw.max_token_lifetime_days > 0).then_some(raw.max_token_lifetime_days),
                require_expiry: raw.require_token_expiry,
            },
            token_rotation_grace: raw.token_rotation_grace.duration(),
            keys_dir: raw.keys_dir,
            key_algorithm,
            token_header,
            ci_secret_key_file,
            registry_service: raw.registry_service,
            virtual_registry_service: raw.virtual_registry_service,
            token_prefix: raw.token_prefix,
            token_instance_prefix: Some(raw.token_instance_prefix)
                .filter(|prefix| !prefix.is_empty()),
            public_url,
            log_format,
            database_max_connections: raw.database_max_connections,
            database_acquire_timeout: raw.database_acquire_timeout.duration(),
            token_cache_capacity: raw.token_cache_capacity,
            workers: raw.workers,
            shutdown_timeout: raw.shutdown_timeout.duration(),
            session_ttl: raw.session_ttl.duration(),
            audit_retention_days: raw.audit_retention_days,
            notify_at,
            smtp,
            login_throttle,
            limits,
            trusted_proxies,
            tls,
            metrics_listen: raw.metrics_listen,
            external_authorization: raw.external_authorization,
            forward_auth_uri_headers,
            forward_auth_method_headers,
            oidc_issuers,
            gitlab_token_revocation_token: Some(raw.gitlab_token_revocation_token.clone())
                .filter(|token| !token.is_empty()),
            github_secret_scanning_keys_file: given(&raw.github_secret_scanning_keys_file),
            github_secret_scanning_keys_url,
            registry_events_secret,
            registry_new_address_days: raw.registry_new_address_days,
        })
    }
}

fn validate_limits(raw: &RawSettings) -> Result<ConnectionLimits, SettingsError> {
    for (name, value, low, high) in [
        ("request_head_timeout", raw.request_head_timeout, 1, 300),
        ("request_body_timeout", raw.request_body_timeout, 1, 300),
        ("tls_handshake_timeout", raw.tls_handshake_timeout, 1, 60),
        ("keep_alive", raw.keep_alive, 0, 3600),
        (
            "client_disconnect_timeout",
            raw.client_disconnect_timeout,
            0,
            60,
        ),
    ] {
        if !(low..=high).contains(&value.0) {
            return Err(invalid(
                name,
                format!(
                    "{} s is out of range: between {low} s and {high} s",
                    value.0
                ),
            ));
        }
    }
    for (name, value, low, high) in [
        ("max_connections", raw.max_connections, 1, 1_000_000),
        ("max_connection_rate", raw.max_connection_rate, 1, 100_000),
        ("token_body_limit", raw.token_body_limit, 1024, 1024 * 1024),
        ("api_body_limit", raw.api_body_limit, 1024, 1024 * 1024),
    ] {
        if !(low..=high).contains(&value) {
            return Err(invalid(
                name,
                format!("{value} is out of range: between {low} and {high}"),
            ));
        }
    }
    Ok(ConnectionLimits {
        request_head_timeout: raw.request_head_timeout.duration(),
        request_body_timeout: raw.request_body_timeout.duration(),
        tls_handshake_timeout: raw.tls_handshake_timeout.duration(),
        keep_alive: raw.keep_alive.duration(),
        client_disconnect_timeout: raw.client_disconnect_timeout.duration(),
        max_connections: raw.max_connections,
        max_connection_rate: raw.max_connection_rate,
        token_body_limit: raw.token_body_limit,
        api_body_limit: raw.api_body_limit,
    })
}

/// A comma-separated list of HTTP header names (RFC 9110 tokens), blanks ignored.
fn header_list(name: &'static str, text: &str) -> Result<Vec<String>, SettingsError> {
    text.split(',')
        .map(str::trim)
        .filter(|header| !header.is_empty())
        .map(|header| {
            let valid = header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if valid {
                Ok(header.to_owned())
            } else {
                Err(invalid(
                    name,
                    format!("{header:?} is not an HTTP header name"),
                ))
            }
        })
        .collect()
}

impl Settings {
    /// The CI secret key file: the setting, else `<keys_dir>/ci-secret.aes256`.
    pub fn ci_secret_key_file(&self) -> PathBuf {
        self.ci_secret_key_file
            .clone()
            .unwrap_or_else(|| crate::ci_secret::default_key_file(&self.keys_dir))
    }

    /// A warning when the realm registries are told cannot be reached: listening on an
    /// unspecified address (`0.0.0.0`, `[::]`) without `public_url` makes the realm
    /// `http://0.0.0.0:5001/jwt/auth`.
    pub fn unreachable_realm_warning(&self, bound_port: u16) -> Option<String> {
        (self.public_url.is_none() && self.listen.ip().is_unspecified()).then(|| {
            format!(
                "listening on {} without public_url: registries and clients are told the realm {}/jwt/auth, which they cannot reach; set public_url (REGAUTH_PUBLIC_URL) to the URL they reach regauth at, such as https://auth.example.com",
                self.listen.ip(),
                self.public_url(bound_port)
            )
        })
    }

    /// Where clients reach regauth, given the port the server actually bound.
    pub fn public_url(&self, bound_port: u16) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}:{bound_port}", self.listen.ip())
            }
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_defaults() -> ! {
    panic!("built-in default settings are invalid")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings from a `regauth.toml` text and `_FILE` variables (the process environment's
    /// `REGAUTH_*` settings still apply; the test runner sets none).
    fn load(toml: &str, files: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_sources(Toml::string(toml), move |name| {
            files
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn error_of(toml: &str) -> String {
        load(toml, &[]).unwrap_err().to_string()
    }

    #[test]
    fn the_registry_events_secret_is_off_by_default_read_from_a_file_and_never_shown() {
        assert!(Settings::defaults().registry_events_secret.is_none());
        assert!(load("registry_events_secret = \"\"", &[])
            .unwrap()
            .registry_events_secret
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events_secret");
        std::fs::write(&file, "Bearer s3cr3t-s3cr3t-s3cr3t\n").unwrap();
        let settings = load(
            "",
            &[(
                "REGAUTH_REGISTRY_EVENTS_SECRET_FILE",
                file.to_str().unwrap(),
            )],
        )
        .unwrap();
        let secret = settings.registry_events_secret.unwrap();
        assert!(secret.matches(b"Bearer s3cr3t-s3cr3t-s3cr3t"));
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        let error = error_of("registry_events_secret = \"short\"");
        assert!(error.contains("registry_events_secret"), "{error}");
        assert!(!error.contains("short\""), "{error}");
    }

    #[test]
    fn the_web_session_lifetime_has_a_unit_and_bounds() {
        assert_eq!(
            Settings::defaults().session_ttl,
            Duration::from_secs(8 * 3600)
        );
        let settings = load("session_ttl = \"2d\"", &[]).unwrap();
        assert_eq!(settings.session_ttl, Duration::from_secs(2 * 86_400));
        let error = error_of("session_ttl = \"10s\"");
        assert!(error.contains("session_ttl"), "{error}");
        let error = error_of("session_ttl = \"90d\"");
        assert!(error.contains("session_ttl"), "{error}");
    }

    #[test]
    fn the_defaults_work_on_a_laptop() {
        let settings = Settings::defaults();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:5001");
        assert_eq!(settings.public_url(5001), "http://127.0.0.1:5001");
        assert_eq!(settings.token_ttl, Duration::from_secs(300));
        assert_eq!(settings.registry_service, "container_registry");
        let loaded = load("", &[]).unwrap();
        assert_eq!(format!("{loaded:?}"), format!("{settings:?}"));
    }

    #[test]
    fn an_invalid_setting_is_named() {
        let error = error_of("token_ttl = 0");
        assert!(error.contains("token_ttl"), "{error}");
        let error = error_of("listen = \"localhost\"");
        assert!(error.contains("listen"), "{error}");
        let error = error_of("shutdown_timeout = \"ten\"");
        assert!(error.contains("shutdown_timeout"), "{error}");
        let error = error_of("public_url = \"registry.example.com\"");
        assert!(error.contains("public_url"), "{error}");
        let error = error_of("public_url = \"ftp://registry.example.com\"");
        assert!(error.contains("public_url"), "{error}");
        let error = error_of("refresh_tokens_per_deploy_token = 0");
        assert!(error.contains("refresh_tokens_per_deploy_token"), "{error}");
        let error = error_of("login_lockout = \"11m\"");
        assert!(error.contains("login_lockout"), "{error}");
        let error = error_of("max_token_lifetime_days = 36501");
        assert!(error.contains("max_token_lifetime_days"), "{error}");
        let error = error_of("token_rotation_grace = \"31d\"");
        assert!(error.contains("token_rotation_grace"), "{error}");
    }

    #[test]
    fn durations_are_seconds_or_a_number_with_a_unit() {
        let settings = load(
            "token_ttl = \"5m\"\nrefresh_token_ttl = \"30d\"\nshutdown_timeout = 45",
            &[],
        )
        .unwrap();
        assert_eq!(settings.token_ttl, Duration::from_secs(300));
        assert_eq!(settings.refresh_token_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(45));
        assert_eq!(Seconds::parse("90"), Some(Seconds(90)));
        assert_eq!(Seconds::parse("2h"), Some(Seconds(7_200)));
        for bad in ["", "m", "5 minutes", "-5", "1.5h", "99999999999999999999d"] {
            assert_eq!(Seconds::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_unspecified_listen_address_without_public_url_warns_and_says_what_to_set() {
        let on_all = load("listen = \"0.0.0.0:5001\"", &[]).unwrap();
        let warning = on_all.unreachable_realm_warning(5001).unwrap();
        assert!(
            warning.contains("http://0.0.0.0:5001/jwt/auth")
                && warning.contains("REGAUTH_PUBLIC_URL"),
            "{warning}"
        );
        assert!(load("listen = \"[::]:5001\"", &[])
            .unwrap()
            .unreachable_realm_warning(5001)
            .is_some());
        let with_url = load(
            "listen = \"0.0.0.0:5001\"\npublic_url = \"https://auth.example.com\"",
            &[],
        )
        .unwrap();
        assert_eq!(with_url.unreachable_realm_warning(5001), None);
        assert_eq!(Settings::defaults().unreachable_realm_warning(5001), None);
    }

    #[test]
    fn the_ci_secret_key_file_is_no_key_file_a_signing_key_would_be_loaded_from() {
        for file in ["keys/ci.key", "keys/private/ci.key"] {
            let error = error_of(&format!("ci_secret_key_file = \"{file}\""));
            assert!(
                error.contains("would be loaded as a signing key"),
                "{error}"
            );
        }
        assert!(load("ci_secret_key_file = \"keys/ci/ci-secret.aes256\"", &[]).is_ok());
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named_with_the_nearest_setting() {
        let error = error_of("listn = \"127.0.0.1:5001\"");
        assert!(
            error.contains("unknown setting listn") && error.contains("did you mean listen?"),
            "{error}"
        );
    }

    #[test]
    fn a_public_url_is_a_url_kept_without_its_trailing_slash() {
        let settings = load("public_url = \"https://auth.example.com/\"", &[]).unwrap();
        assert_eq!(settings.public_url(1), "https://auth.example.com");
        let settings = load("public_url = \"\"", &[]).unwrap();
        assert_eq!(settings.public_url(7), "http://127.0.0.1:7");
    }

    #[test]
    fn every_setting_has_a_file_variant_from_one_place() {
        let names = setting_names();
        for name in [
            "listen",
            "database_url",
            "smtp_url",
            "public_url",
            "token_ttl",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("database_url");
        std::fs::write(&database, "postgres://regauth:hunter2@db/regauth\n").unwrap();
        let smtp = dir.path().join("smtp_url");
        std::fs::write(&smtp, "smtp://mail.example.com:25\n").unwrap();
        let connections = dir.path().join("connections");
        std::fs::write(&connections, "7\n").unwrap();
        let settings = load(
            "",
            &[
                ("REGAUTH_DATABASE_URL_FILE", database.to_str().unwrap()),
                ("REGAUTH_SMTP_URL_FILE", smtp.to_str().unwrap()),
                (
                    "REGAUTH_DATABASE_MAX_CONNECTIONS_FILE",
                    connections.to_str().unwrap(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            settings.database_url,
            "postgres://regauth:hunter2@db/regauth"
        );
        assert!(settings.smtp.is_some());
        assert_eq!(settings.database_max_connections, 7);

        // A missing file names the variable; both forms at once are refused.
        let error = load("", &[("REGAUTH_SMTP_URL_FILE", "/nonexistent/smtp")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("REGAUTH_SMTP_URL_FILE"), "{error}");
        let error = load(
            "",
            &[
                ("REGAUTH_ISSUER_FILE", database.to_str().unwrap()),
                ("REGAUTH_ISSUER", "x"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not both"), "{error}");
    }

    #[test]
    fn forward_auth_headers_are_lists_of_header_names_and_external_authorization_is_off() {
        let settings = Settings::defaults();
        assert!(!settings.external_authorization);
        assert_eq!(
            settings.forward_auth_uri_headers,
            ["X-Original-URI", "X-Forwarded-Uri"]
        );
        assert_eq!(
            settings.forward_auth_method_headers,
            ["X-Original-Method", "X-Forwarded-Method"]
        );
        let raw = RawSettings {
            forward_auth_uri_headers: " X-Uri , ".into(),
            external_authorization: true,
            ..RawSettings::default()
        };
        let settings = Settings::validate(raw).unwrap();
        assert_eq!(settings.forward_auth_uri_headers, ["X-Uri"]);
        assert!(settings.external_authorization);
        for (raw, name) in [
            (
                RawSettings {
                    forward_auth_uri_headers: "X Original".into(),
                    ..RawSettings::default()
                },
                "forward_auth_uri_headers",
            ),
            (
                RawSettings {
                    forward_auth_uri_headers: " , ".into(),
                    ..RawSettings::default()
                },
                "forward_auth_uri_headers",
            ),
            (
                RawSettings {
                    forward_auth_method_headers: "X-Method:".into(),
                    ..RawSettings::default()
                },
                "forward_auth_method_headers",
            ),
        ] {
            let error = Settings::validate(raw).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn a_database_password_never_reaches_debug_output() {
        let settings = load(
            "database_url = \"postgres://regauth:hunter2@db/regauth\"",
            &[],
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn notification_settings_are_validated_and_named() {
        let settings = Settings::defaults();
        assert_eq!(settings.notify_at.to_string(), "01:00");
        assert!(
            settings.smtp.is_none(),
            "notifications are off without an SMTP server"
        );
        for (toml, name) in [
            ("notify_at = \"25:00\"", "notify_at"),
            ("smtp_url = \"mail.example.com\"", "smtp_url"),
            ("smtp_url = \"http://mail.example.com\"", "smtp_url"),
            ("smtp_from = \"nobody\"", "smtp_from"),
        ] {
            let error = error_of(toml);
            assert!(error.contains(name), "{error}");
        }
        let settings = load(
            "smtp_url = \"smtp://regauth:hunter2@mail.example.com:587?tls=required\"\nnotify_at = \"06:30\"",
            &[],
        )
        .unwrap();
        assert_eq!(settings.notify_at.to_string(), "06:30");
        let smtp = settings.smtp.as_ref().unwrap();
        assert_eq!(
            smtp.redacted_url(),
            "smtp://regauth:***@mail.example.com:587?tls=required"
        );
        assert!(!format!("{settings:?} {smtp:?}").contains("hunter2"));
    }

    #[test]
    fn connection_tls_proxy_and_metrics_settings_are_validated_and_named() {
        let settings = Settings::defaults();
        assert_eq!(settings.limits.request_head_timeout, Duration::from_secs(5));
        assert_eq!(
            settings.limits.request_body_timeout,
            Duration::from_secs(10)
        );
        assert_eq!(settings.limits.token_body_limit, 16 * 1024);
        assert!(settings.trusted_proxies.is_empty());
        assert!(settings.tls.is_none() && settings.metrics_listen.is_none());

        let settings = load(
            "trusted_proxies = \"10.0.0.0/8, 192.168.1.1,fd00::/8\"\n\
             tls_certificate = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n\
             metrics_listen = \"127.0.0.1:9090\"\nrequest_body_timeout = \"1m\"",
            &[],
        )
        .unwrap();
        assert!(settings
            .trusted_proxies
            .contains("192.168.1.1".parse().unwrap()));
        assert!(settings
            .trusted_proxies
            .contains("10.9.8.7".parse().unwrap()));
        assert_eq!(settings.public_url(5001), "https://127.0.0.1:5001");
        assert_eq!(settings.metrics_listen.unwrap().port(), 9090);
        assert_eq!(
            settings.limits.request_body_timeout,
            Duration::from_secs(60)
        );
        let settings = load(
            "trusted_proxies = [\"10.0.0.0/8\"]\nmetrics_listen = \"\"",
            &[],
        )
        .unwrap();
        assert!(settings
            .trusted_proxies
            .contains("10.0.0.1".parse().unwrap()));
        assert!(settings.metrics_listen.is_none());

        for (toml, name) in [
            ("trusted_proxies = [\"10.0.0.0/33\"]", "trusted_proxies"),
            ("trusted_proxies = \"proxy.local\"", "trusted_proxies"),
            ("tls_certificate = \"cert.pem\"", "tls_key"),
            ("tls_key = \"key.pem\"", "tls_certificate"),
            ("metrics_listen = \"9090\"", "metrics_listen"),
            ("request_head_timeout = 0", "request_head_timeout"),
            ("request_body_timeout = \"1h\"", "request_body_timeout"),
            ("max_connections = 0", "max_connections"),
            ("token_body_limit = 10", "token_body_limit"),
        ] {
            let error = error_of(toml);
            assert!(error.contains(name), "{toml}: {error}");
        }
    }

    #[test]
    fn oidc_issuers_are_read_from_the_file_and_checked_by_entry() {
        let settings = load(
            "[[oidc_issuers]]\nurl = \"https://gitlab.example.com\"\nkind = \"gitlab\"\n\
             [[oidc_issuers]]\nurl = \"https://kubernetes.default.svc\"\nkind = \"kubernetes\"\n\
             jwks_file = \"/etc/regauth/jwks.json\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(settings.oidc_issuers.len(), 2);
        assert_eq!(settings.oidc_issuers[1].kind, oidc::IssuerKind::Kubernetes);
        assert_eq!(
            settings.oidc_issuers[1].jwks_file.as_deref(),
            Some(std::path::Path::new("/etc/regauth/jwks.json"))
        );
        assert!(Settings::defaults().oidc_issuers.is_empty());
        let error = load(
            "[[oidc_issuers]]\nurl = \"http://gitlab.example.com\"\nkind = \"gitlab\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("oidc_issuers[0].url"), "{error}");
        let error = load(
            "[[oidc_issuers]]\nurl = \"https://a.example\"\nkind = \"jenkins\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("jenkins"), "{error}");
    }
}
