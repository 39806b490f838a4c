//! Typed settings: built-in defaults < `regauth.toml` (or the file named by `REGAUTH_CONFIG`)
//! < `REGAUTH_*` environment variables. Validated once at start; an invalid setting stops the
//! start with a message that names it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::jwt::KeyAlgorithm;
use crate::mail::SmtpSettings;
use crate::service::notifications::schedule::NotifyAt;

/// Settings as written in the file and the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: String,
    database_url: String,
    issuer: String,
    token_ttl: u64,
    refresh_token_ttl: u64,
    keys_dir: PathBuf,
    key_algorithm: String,
    registry_service: String,
    virtual_registry_service: String,
    token_prefix: String,
    public_url: Option<String>,
    log_format: String,
    database_max_connections: u32,
    token_cache_capacity: usize,
    workers: usize,
    shutdown_timeout: u64,
    audit_retention_days: u32,
    notify_at: String,
    smtp_url: Option<String>,
    smtp_from: String,
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            listen: "127.0.0.1:5001".into(),
            database_url: "sqlite://regauth.db?mode=rwc".into(),
            issuer: "regauth".into(),
            token_ttl: 300,
            refresh_token_ttl: 30 * 86_400,
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
            shutdown_timeout: 30,
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
    #[error("invalid settings: {0}")]
    Figment(String),
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn invalid(name: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name,
        message: message.into(),
    }
}

impl Settings {
    /// Loads from `regauth.toml` (or `$REGAUTH_CONFIG`) and the environment.
    pub fn load() -> Result<Settings, SettingsError> {
        let file = std::env::var("REGAUTH_CONFIG").unwrap_or_else(|_| "regauth.toml".into());
        let figment = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Toml::file(&file))
            .merge(
                // Only our names: REGAUTH_CONFIG and REGAUTH_*_FILE are not settings.
                Env::prefixed("REGAUTH_").only(&[
                    "listen",
                    "database_url",
                    "issuer",
                    "token_ttl",
                    "refresh_token_ttl",
                    "keys_dir",
                    "key_algorithm",
                    "registry_service",
                    "virtual_registry_service",
                    "token_prefix",
                    "public_url",
                    "log_format",
                    "database_max_connections",
                    "token_cache_capacity",
                    "workers",
                    "shutdown_timeout",
                    "audit_retention_days",
                    "notify_at",
                    "smtp_url",
                    "smtp_from",
                ]),
            );
        let mut raw: RawSettings = figment
            .extract()
            .map_err(|error| SettingsError::Figment(error.to_string()))?;
        // Secrets may come from files (Docker/Kubernetes secrets).
        if let Ok(path) = std::env::var("REGAUTH_DATABASE_URL_FILE") {
            raw.database_url = std::fs::read_to_string(&path)
                .map_err(|error| invalid("REGAUTH_DATABASE_URL_FILE", format!("{path}: {error}")))?
                .trim()
                .to_owned();
        }
        if let Ok(path) = std::env::var("REGAUTH_SMTP_URL_FILE") {
            let url = std::fs::read_to_string(&path)
                .map_err(|error| invalid("REGAUTH_SMTP_URL_FILE", format!("{path}: {error}")))?;
            raw.smtp_url = Some(url.trim().to_owned());
        }
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
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "{:?} is not an address:port such as 127.0.0.1:5001",
                    raw.listen
                ),
            )
        })?;
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
        if !(10..=86_400).contains(&raw.token_ttl) {
            return Err(invalid(
                "token_ttl",
                format!(
                    "{} is out of range: seconds between 10 and 86400",
                    raw.token_ttl
                ),
            ));
        }
        if !(60..=366 * 86_400).contains(&raw.refresh_token_ttl) {
            return Err(invalid(
                "refresh_token_ttl",
                format!(
                    "{} is out of range: seconds between 60 and 31622400 (366 days)",
                    raw.refresh_token_ttl
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
        if raw.shutdown_timeout > 3600 {
            return Err(invalid("shutdown_timeout", "at most 3600 seconds"));
        }
        let public_url = raw
            .public_url
            .filter(|url| !url.trim().is_empty())
            .map(|url| url.trim().trim_end_matches('/').to_owned());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "public_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        let notify_at =
            NotifyAt::parse(&raw.notify_at).map_err(|message| invalid("notify_at", message))?;
        let smtp = match raw
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
        {
            Some(url) => SmtpSettings::parse(url, &raw.smtp_from).map(Some),
            None => crate::mail::parse_from(&raw.smtp_from).map(|_| None),
        }
        .map_err(|error| invalid(error.setting, error.message))?;
        Ok(Settings {
            listen,
            database_url: raw.database_url,
            issuer: raw.issuer,
            token_ttl: Duration::from_secs(raw.token_ttl),
            refresh_token_ttl: Duration::from_secs(raw.refresh_token_ttl),
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
            shutdown_timeout: Duration::from_secs(raw.shutdown_timeout),
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

    #[test]
    fn the_defaults_work_on_a_laptop() {
        let settings = Settings::defaults();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:5001");
        assert_eq!(settings.public_url(5001), "http://127.0.0.1:5001");
        assert_eq!(settings.token_ttl, Duration::from_secs(300));
        assert_eq!(settings.registry_service, "container_registry");
    }

    #[test]
    fn an_invalid_setting_is_named() {
        let raw = RawSettings {
            token_ttl: 0,
            ..RawSettings::default()
        };
        let error = Settings::validate(raw).unwrap_err().to_string();
        assert!(error.contains("token_ttl"), "{error}");
        let raw = RawSettings {
            listen: "localhost".into(),
            ..RawSettings::default()
        };
        assert!(Settings::validate(raw)
            .unwrap_err()
            .to_string()
            .contains("listen"));
    }

    #[test]
    fn a_database_password_never_reaches_debug_output() {
        let raw = RawSettings {
            database_url: "postgres://regauth:hunter2@db/regauth".into(),
            ..RawSettings::default()
        };
        let settings = Settings::validate(raw).unwrap();
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
        for (raw, name) in [
            (
                RawSettings {
                    notify_at: "25:00".into(),
                    ..RawSettings::default()
                },
                "notify_at",
            ),
            (
                RawSettings {
                    smtp_url: Some("mail.example.com".into()),
                    ..RawSettings::default()
                },
                "smtp_url",
            ),
            (
                RawSettings {
                    smtp_from: "nobody".into(),
                    ..RawSettings::default()
                },
                "smtp_from",
            ),
        ] {
            let error = Settings::validate(raw).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
        let raw = RawSettings {
            smtp_url: Some("smtp://regauth:hunter2@mail.example.com:587?tls=required".into()),
            notify_at: "06:30".into(),
            ..RawSettings::default()
        };
        let settings = Settings::validate(raw).unwrap();
        assert_eq!(settings.notify_at.to_string(), "06:30");
        let smtp = settings.smtp.as_ref().unwrap();
        assert_eq!(
            smtp.redacted_url(),
            "smtp://regauth:***@mail.example.com:587?tls=required"
        );
        assert!(!format!("{settings:?} {smtp:?}").contains("hunter2"));
    }
}
