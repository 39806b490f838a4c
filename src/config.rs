//! Typed settings: built-in defaults < `regauth.toml` (or the file named by `REGAUTH_CONFIG`)
//! < `REGAUTH_*` environment variables < `REGAUTH_*_FILE` files. Values are typed as they are
//! read (socket addresses, durations, URLs), then validated once; an invalid setting stops the
//! start with a message that names it.
//!
//! The settings come in groups, one module each (`config/server.rs`, `config/database.rs`,
//! …): a group's `Raw` struct holds its settings as written (each field's doc comment is its
//! entry in the configuration reference, `docs/configuration.md`, generated from them by
//! `tests/api/docs.rs`) and their defaults, and its `validate` turns them into the group's
//! typed settings, naming the setting that is wrong. [`RawSettings`] lists the groups; a new
//! setting is a field, its default, and its typed form in one group's file.
//!
//! Every setting may be given as `REGAUTH_<NAME>_FILE`, the path of a file holding the value
//! (Docker and Kubernetes secrets). This comes from one place, [`file_variants`], for every
//! setting: the names are read off the groups' serialised defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod database;
mod forward_auth;
mod housekeeping;
mod leak_reports;
mod limits;
mod login;
mod names;
mod notify_at;
pub mod oidc;
mod registry;
mod registry_events;
mod server;
mod signing;
mod smtp;
mod tokens;
mod trusted_proxies;

pub use database::DatabaseSettings;
pub use forward_auth::ForwardAuthSettings;
pub use housekeeping::HousekeepingSettings;
pub use leak_reports::LeakReportSettings;
pub use limits::ConnectionLimits;
pub use login::{LoginSettings, LoginThrottleSettings};
pub use notify_at::NotifyAt;
pub use registry::RegistrySettings;
pub use registry_events::RegistryEventsSecret;
pub use server::{LogFormat, ServerSettings, TlsFiles};
pub use signing::SigningSettings;
pub use smtp::{parse_from, SmtpSettings, SmtpSettingsError};
pub use tokens::TokenSettings;
pub use trusted_proxies::TrustedProxies;

/// `memory://` (empty) or `memory://PATH` (a copy of the SQLite database at PATH): a
/// `database_url` for a database in memory, lost at exit — for tests and demos.
pub const MEMORY_URL_PREFIX: &str = "memory://";

/// The settings as written, by group, in the order of the configuration reference. Read
/// group by group (each group's `Raw` is extracted from the same merged sources), serialised
/// flat: the settings' names are its serialised fields.
#[derive(Default, Serialize)]
struct RawSettings {
    #[serde(flatten)]
    server: server::Raw,
    #[serde(flatten)]
    limits: limits::Raw,
    #[serde(flatten)]
    database: database::Raw,
    #[serde(flatten)]
    signing: signing::Raw,
    #[serde(flatten)]
    tokens: tokens::Raw,
    #[serde(flatten)]
    registry: registry::Raw,
    #[serde(flatten)]
    login: login::Raw,
    #[serde(flatten)]
    forward_auth: forward_auth::Raw,
    #[serde(flatten)]
    oidc: oidc::Raw,
    #[serde(flatten)]
    leak_reports: leak_reports::Raw,
    #[serde(flatten)]
    housekeeping: housekeeping::Raw,
}

impl RawSettings {
    /// Each group from the merged sources. Lossy: a number or boolean read from a file or
    /// the environment arrives as text. (Not `#[serde(flatten)]` on the way in: serde
    /// buffers flattened fields, which would lose figment's lossy reading and the key in
    /// its messages.)
    fn extract(figment: &Figment) -> Result<RawSettings, Box<figment::Error>> {
        Ok(RawSettings {
            server: figment.extract_lossy()?,
            limits: figment.extract_lossy()?,
            database: figment.extract_lossy()?,
            signing: figment.extract_lossy()?,
            tokens: figment.extract_lossy()?,
            registry: figment.extract_lossy()?,
            login: figment.extract_lossy()?,
            forward_auth: figment.extract_lossy()?,
            oidc: figment.extract_lossy()?,
            leak_reports: figment.extract_lossy()?,
            housekeeping: figment.extract_lossy()?,
        })
    }
}

/// Validated settings, by group.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    /// Limits that keep slow or numerous clients from holding the server.
    pub limits: ConnectionLimits,
    pub database: DatabaseSettings,
    /// The registry tokens' issuer, lifetime and signing keys.
    pub signing: SigningSettings,
    /// The deploy, personal access and refresh tokens' prefixes, lifetimes and rotation.
    pub tokens: TokenSettings,
    pub registry: RegistrySettings,
    /// Web sessions and brute-force protection.
    pub login: LoginSettings,
    pub forward_auth: ForwardAuthSettings,
    /// Issuers whose OIDC tokens workload-identity policies may trust (`[[oidc_issuers]]`).
    pub oidc_issuers: Vec<oidc::OidcIssuer>,
    pub leak_reports: LeakReportSettings,
    /// Audit retention and the daily expiry notices.
    pub housekeeping: HousekeepingSettings,
}

impl Settings {
    fn validate(raw: RawSettings) -> Result<Settings, SettingsError> {
        Ok(Settings {
            server: raw.server.validate()?,
            limits: raw.limits.validate()?,
            database: raw.database.validate()?,
            signing: raw.signing.validate()?,
            tokens: raw.tokens.validate()?,
            registry: raw.registry.validate()?,
            login: raw.login.validate()?,
            forward_auth: raw.forward_auth.validate()?,
            oidc_issuers: raw.oidc.validate()?,
            leak_reports: raw.leak_reports.validate()?,
            housekeeping: raw.housekeeping.validate()?,
        })
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

/// An optional path where an empty one means "not set".
fn given(path: &Option<PathBuf>) -> Option<PathBuf> {
    path.clone().filter(|p| !p.as_os_str().is_empty())
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

    /// The duration when within `low..=high` seconds; else an error naming the setting and
    /// the range, `high` also in words when given (` (1d)`).
    fn within(
        self,
        name: &str,
        low: u64,
        high: u64,
        high_in_words: &str,
    ) -> Result<Duration, SettingsError> {
        if (low..=high).contains(&self.0) {
            Ok(self.duration())
        } else {
            Err(invalid(
                name,
                format!(
                    "{} s is out of range: between {low} s and {high} s{high_in_words}",
                    self.0
                ),
            ))
        }
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
        Settings::validate(RawSettings::extract(&figment)?)
    }

    /// The defaults, for tests and tools.
    pub fn defaults() -> Settings {
        // The defaults are valid by construction; tested below.
        match Settings::validate(RawSettings::default()) {
            Ok(settings) => settings,
            Err(_) => unreachable_defaults(),
        }
    }

    /// A warning when the realm registries are told cannot be reached: listening on an
    /// unspecified address (`0.0.0.0`, `[::]`) without `public_url` makes the realm
    /// `http://0.0.0.0:5001/jwt/auth`.
    pub fn unreachable_realm_warning(&self, bound_port: u16) -> Option<String> {
        let listen = self.server.listen;
        (self.server.public_url.is_none() && listen.ip().is_unspecified()).then(|| {
            format!(
                "listening on {} without public_url: registries and clients are told the realm {}/jwt/auth, which they cannot reach; set public_url (REGAUTH_PUBLIC_URL) to the URL they reach regauth at, such as https://auth.example.com",
                listen.ip(),
                self.public_url(bound_port)
            )
        })
    }

    /// Where clients reach regauth, given the port the server actually bound.
    pub fn public_url(&self, bound_port: u16) -> String {
        match &self.server.public_url {
            Some(url) => url.clone(),
            None => {
                let scheme = if self.server.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}:{bound_port}", self.server.listen.ip())
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
        assert!(Settings::defaults().registry.events_secret.is_none());
        assert!(load("registry_events_secret = \"\"", &[])
            .unwrap()
            .registry
            .events_secret
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
        let secret = settings.registry.events_secret.unwrap();
        assert!(secret.matches(b"Bearer s3cr3t-s3cr3t-s3cr3t"));
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        let error = error_of("registry_events_secret = \"short\"");
        assert!(error.contains("registry_events_secret"), "{error}");
        assert!(!error.contains("short\""), "{error}");
    }

    #[test]
    fn the_web_session_lifetime_has_a_unit_and_bounds() {
        assert_eq!(
            Settings::defaults().login.session_ttl,
            Duration::from_secs(8 * 3600)
        );
        let settings = load("session_ttl = \"2d\"", &[]).unwrap();
        assert_eq!(settings.login.session_ttl, Duration::from_secs(2 * 86_400));
        let error = error_of("session_ttl = \"10s\"");
        assert!(error.contains("session_ttl"), "{error}");
        let error = error_of("session_ttl = \"90d\"");
        assert!(error.contains("session_ttl"), "{error}");
    }

    #[test]
    fn the_defaults_work_on_a_laptop() {
        let settings = Settings::defaults();
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:5001");
        assert_eq!(settings.public_url(5001), "http://127.0.0.1:5001");
        assert_eq!(settings.signing.token_ttl, Duration::from_secs(300));
        assert_eq!(settings.registry.service, "container_registry");
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
    fn a_duration_out_of_range_names_the_setting_and_the_range() {
        assert_eq!(
            error_of("token_ttl = 5"),
            "invalid setting token_ttl: 5 s is out of range: between 10 s and 86400 s (1d)"
        );
        assert_eq!(
            error_of("keep_alive = \"2h\""),
            "invalid setting keep_alive: 7200 s is out of range: between 0 s and 3600 s"
        );
        assert_eq!(
            error_of("database_acquire_timeout = 0"),
            "invalid setting database_acquire_timeout: 0 s is out of range: between 1 s and 300 s (5m)"
        );
    }

    #[test]
    fn durations_are_seconds_or_a_number_with_a_unit() {
        let settings = load(
            "token_ttl = \"5m\"\nrefresh_token_ttl = \"30d\"\nshutdown_timeout = 45",
            &[],
        )
        .unwrap();
        assert_eq!(settings.signing.token_ttl, Duration::from_secs(300));
        assert_eq!(
            settings.tokens.refresh_token_ttl,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(settings.server.shutdown_timeout, Duration::from_secs(45));
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
            settings.database.url,
            "postgres://regauth:hunter2@db/regauth"
        );
        assert!(settings.housekeeping.smtp.is_some());
        assert_eq!(settings.database.max_connections, 7);

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
        assert!(!settings.forward_auth.external_authorization);
        assert_eq!(
            settings.forward_auth.uri_headers,
            ["X-Original-URI", "X-Forwarded-Uri"]
        );
        assert_eq!(
            settings.forward_auth.method_headers,
            ["X-Original-Method", "X-Forwarded-Method"]
        );
        let settings = load(
            "forward_auth_uri_headers = \" X-Uri , \"\nexternal_authorization = true",
            &[],
        )
        .unwrap();
        assert_eq!(settings.forward_auth.uri_headers, ["X-Uri"]);
        assert!(settings.forward_auth.external_authorization);
        for (toml, name) in [
            (
                "forward_auth_uri_headers = \"X Original\"",
                "forward_auth_uri_headers",
            ),
            (
                "forward_auth_uri_headers = \" , \"",
                "forward_auth_uri_headers",
            ),
            (
                "forward_auth_method_headers = \"X-Method:\"",
                "forward_auth_method_headers",
            ),
        ] {
            let error = error_of(toml);
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
        assert_eq!(settings.housekeeping.notify_at.to_string(), "01:00");
        assert!(
            settings.housekeeping.smtp.is_none(),
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
        assert_eq!(settings.housekeeping.notify_at.to_string(), "06:30");
        let smtp = settings.housekeeping.smtp.as_ref().unwrap();
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
        assert!(settings.server.trusted_proxies.is_empty());
        assert!(settings.server.tls.is_none() && settings.server.metrics_listen.is_none());

        let settings = load(
            "trusted_proxies = \"10.0.0.0/8, 192.168.1.1,fd00::/8\"\n\
             tls_certificate = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n\
             metrics_listen = \"127.0.0.1:9090\"\nrequest_body_timeout = \"1m\"",
            &[],
        )
        .unwrap();
        assert!(settings
            .server
            .trusted_proxies
            .contains("192.168.1.1".parse().unwrap()));
        assert!(settings
            .server
            .trusted_proxies
            .contains("10.9.8.7".parse().unwrap()));
        assert_eq!(settings.public_url(5001), "https://127.0.0.1:5001");
        assert_eq!(settings.server.metrics_listen.unwrap().port(), 9090);
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
            .server
            .trusted_proxies
            .contains("10.0.0.1".parse().unwrap()));
        assert!(settings.server.metrics_listen.is_none());

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
