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

use crate::client_address::TrustedProxies;
use crate::jwt::{KeyAlgorithm, TokenHeader};
use crate::redact::redact_url_password;

mod notify_at;
mod registry_events;
mod smtp;

pub use notify_at::NotifyAt;
pub use registry_events::RegistryEventsSecret;
pub use smtp::{parse_from, SmtpSettings, SmtpSettingsError};

/// Settings as written in the file and the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(deserialize_with = "socket_address")]
    listen: SocketAddr,
    database_url: String,
    issuer: String,
    token_ttl: Seconds,
    refresh_token_ttl: Seconds,
    refresh_tokens_per_deploy_token: u32,
    keys_dir: PathBuf,
    key_algorithm: String,
    token_header: String,
    ci_secret_key_file: Option<PathBuf>,
    registry_service: String,
    virtual_registry_service: String,
    token_prefix: String,
    #[serde(with = "optional_url")]
    public_url: Option<Url>,
    log_format: String,
    database_max_connections: u32,
    database_acquire_timeout: Seconds,
    token_cache_capacity: usize,
    workers: usize,
    shutdown_timeout: Seconds,
    session_ttl: Seconds,
    audit_retention_days: u32,
    notify_at: String,
    #[serde(with = "optional_url")]
    smtp_url: Option<Url>,
    smtp_from: String,
    login_failure_window: Seconds,
    login_lockout: Seconds,
    login_max_failures_per_address: u32,
    login_max_failures_per_username: u32,
    login_max_delayed: u32,
    request_head_timeout: Seconds,
    request_body_timeout: Seconds,
    tls_handshake_timeout: Seconds,
    keep_alive: Seconds,
    client_disconnect_timeout: Seconds,
    max_connections: usize,
    max_connection_rate: usize,
    token_body_limit: usize,
    api_body_limit: usize,
    trusted_proxies: ProxyList,
    tls_certificate: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(deserialize_with = "optional_socket_address")]
    metrics_listen: Option<SocketAddr>,
    external_authorization: bool,
    forward_auth_uri_headers: String,
    forward_auth_method_headers: String,
    registry_events_secret: Option<String>,
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
            keys_dir: PathBuf::from("keys"),
            key_algorithm: "es256".into(),
            token_header: "x5c".into(),
            ci_secret_key_file: None,
            registry_service: "container_registry".into(),
            virtual_registry_service: "dependency_proxy".into(),
            token_prefix: "gldt-".into(),
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
    #[error("cannot read {variable} ({path})")]
    File {
        variable: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
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

impl Settings {
    /// Loads from `regauth.toml` (or `$REGAUTH_CONFIG`), the environment and `_FILE` files.
    pub fn load() -> Result<Settings, SettingsError> {
        let file = std::env::var("REGAUTH_CONFIG").unwrap_or_else(|_| "regauth.toml".into());
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
            || raw
                .database_url
                .starts_with(crate::store::MEMORY_URL_PREFIX))
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
            if path.extension().is_some_and(|ext| ext == "key")
                && path.parent() == Some(raw.keys_dir.as_path())
            {
                return Err(invalid(
                    "ci_secret_key_file",
                    format!(
                        "{} would be loaded as a signing key: every *.key in keys_dir is one; use another name or folder",
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
            keys_dir: raw.keys_dir,
            key_algorithm,
            token_header,
            ci_secret_key_file,
            registry_service: raw.registry_service,
            virtual_registry_service: raw.virtual_registry_service,
            token_prefix: raw.token_prefix,
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
}
