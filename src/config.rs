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

use crate::jwt::KeyAlgorithm;
use crate::mail::SmtpSettings;
use crate::service::notifications::schedule::NotifyAt;

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
    keys_dir: PathBuf,
    key_algorithm: String,
    registry_service: String,
    virtual_registry_service: String,
    token_prefix: String,
    #[serde(with = "optional_url")]
    public_url: Option<Url>,
    log_format: String,
    database_max_connections: u32,
    token_cache_capacity: usize,
    workers: usize,
    shutdown_timeout: Seconds,
    audit_retention_days: u32,
    notify_at: String,
    #[serde(with = "optional_url")]
    smtp_url: Option<Url>,
    smtp_from: String,
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 5001)),
            database_url: "sqlite://regauth.db?mode=rwc".into(),
            issuer: "regauth".into(),
            token_ttl: Seconds(300),
            refresh_token_ttl: Seconds(30 * 86_400),
            keys_dir: PathBuf::from("keys"),
            key_algorithm: "es256".into(),
            registry_service: "container_registry".into(),
            virtual_registry_service: "dependency_proxy".into(),
            token_prefix: "gldt-".into(),
            public_url: None,
            log_format: "text".into(),
            database_max_connections: 10,
            token_cache_capacity: 10_000,
            workers: 0,
            shutdown_timeout: Seconds(30),
            audit_retention_days: 90,
            notify_at: "01:00".into(),
            smtp_url: None,
            smtp_from: "regauth@localhost".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
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
    pub keys_dir: PathBuf,
    /// The algorithm of keys that regauth generates itself; loaded keys bring their own.
    pub key_algorithm: KeyAlgorithm,
    pub registry_service: String,
    pub virtual_registry_service: String,
    pub token_prefix: String,
    /// The URL registries and clients reach regauth at; `None` means `http://{listen}`
    /// with the port actually bound (see [`Settings::public_url`]).
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub database_max_connections: u32,
    /// Deploy tokens (and project paths) a server keeps in memory; 0 turns the cache off.
    pub token_cache_capacity: usize,
    /// HTTP worker threads; 0: one per CPU core.
    pub workers: usize,
    /// How long a stopping server lets in-flight requests finish.
    pub shutdown_timeout: Duration,
    /// Days that audit records of registry token issues are kept (0: forever). Records of
    /// token creation, revocation and deletion are always kept.
    pub audit_retention_days: u32,
    /// When the daily expiry notification run starts (UTC).
    pub notify_at: NotifyAt,
    /// Where expiry notices are sent through; `None` turns them off.
    pub smtp: Option<SmtpSettings>,
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
        if raw.shutdown_timeout.0 > 3600 {
            return Err(invalid("shutdown_timeout", "at most 3600 seconds"));
        }
        if let Some(url) = &raw.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    "public_url",
                    format!("{:?} must start with http:// or https://", url.as_str()),
                ));
            }
        }
        // Stored without a trailing slash: routes append their paths to it.
        let public_url = raw
            .public_url
            .map(|url| url.as_str().trim_end_matches('/').to_owned());
        let notify_at =
            NotifyAt::parse(&raw.notify_at).map_err(|message| invalid("notify_at", message))?;
        let smtp = match &raw.smtp_url {
            Some(url) => SmtpSettings::parse(url.as_str(), &raw.smtp_from).map(Some),
            None => crate::mail::parse_from(&raw.smtp_from).map(|_| None),
        }
        .map_err(|error| invalid(error.setting, error.message))?;
        Ok(Settings {
            listen: raw.listen,
            database_url: raw.database_url,
            issuer: raw.issuer,
            token_ttl: raw.token_ttl.duration(),
            refresh_token_ttl: raw.refresh_token_ttl.duration(),
            keys_dir: raw.keys_dir,
            key_algorithm,
            registry_service: raw.registry_service,
            virtual_registry_service: raw.virtual_registry_service,
            token_prefix: raw.token_prefix,
            public_url,
            log_format,
            database_max_connections: raw.database_max_connections,
            token_cache_capacity: raw.token_cache_capacity,
            workers: raw.workers,
            shutdown_timeout: raw.shutdown_timeout.duration(),
            audit_retention_days: raw.audit_retention_days,
            notify_at,
            smtp,
        })
    }
}

impl Settings {
    /// Where clients reach regauth, given the port the server actually bound.
    pub fn public_url(&self, bound_port: u16) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => format!("http://{}:{bound_port}", self.listen.ip()),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_defaults() -> ! {
    panic!("built-in default settings are invalid")
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs (database and
/// SMTP URLs alike). Uses the URL parser, so a password holding `@` or `:` is hidden whole; a
/// URL that does not parse is hidden entirely.
pub fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<URL>".into();
            }
            parsed.to_string()
        }
        Err(_) => "<URL that does not parse>".into(),
    }
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
}
