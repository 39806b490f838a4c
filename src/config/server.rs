//! Where and how regauth serves: the address, the URL clients reach it at, HTTPS, the
//! separate metrics listener, the proxies it believes, worker threads, shutdown and logs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    given, invalid, optional_socket_address, optional_url, socket_address, Seconds, SettingsError,
    TrustedProxies,
};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Address:port to bind (an IP address, not a host name).
    #[serde(deserialize_with = "socket_address")]
    listen: SocketAddr,
    /// Where clients reach regauth (the realm `serve` prints); an `http(s)://` URL. Not set:
    /// `http://<listen>` with the bound port; listening on `0.0.0.0` or `[::]` without it,
    /// `serve` warns.
    #[serde(with = "optional_url")]
    public_url: Option<Url>,
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
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks, a TOML
    /// array or a comma-separated string (`10.0.0.0/8,192.168.1.1`).
    trusted_proxies: ProxyList,
    /// HTTP worker threads; `0`: one per CPU core.
    workers: usize,
    /// Time in-flight requests get after SIGTERM (at most 1 h).
    shutdown_timeout: Seconds,
    /// `text` or `json` logs on stderr (`RUST_LOG` filters).
    log_format: String,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 5001)),
            public_url: None,
            tls_certificate: None,
            tls_key: None,
            metrics_listen: None,
            trusted_proxies: ProxyList::List(Vec::new()),
            workers: 0,
            shutdown_timeout: Seconds(30),
            log_format: "text".into(),
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The certificate chain and private key of the HTTPS listener, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// The URL registries and clients reach regauth at; `None` means `http://{listen}`
    /// with the port actually bound (see [`super::Settings::public_url`]).
    pub public_url: Option<String>,
    /// HTTPS for the main listener: certificate chain and key files (PEM).
    pub tls: Option<TlsFiles>,
    /// When set, `/metrics` is served only on this address, not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-For` is believed (see `crate::client_address`).
    pub trusted_proxies: TrustedProxies,
    /// HTTP worker threads; 0: one per CPU core.
    pub workers: usize,
    /// How long a stopping server lets in-flight requests finish.
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
}

impl Raw {
    pub(super) fn validate(self) -> Result<ServerSettings, SettingsError> {
        if let Some(url) = &self.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    "public_url",
                    format!("{:?} must start with http:// or https://", url.as_str()),
                ));
            }
        }
        let tls = match (given(&self.tls_certificate), given(&self.tls_key)) {
            (None, None) => None,
            (Some(certificate), Some(key)) => Some(TlsFiles { certificate, key }),
            (Some(_), None) => return Err(invalid("tls_key", "is needed with tls_certificate")),
            (None, Some(_)) => return Err(invalid("tls_certificate", "is needed with tls_key")),
        };
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies.entries())
            .map_err(|message| invalid("trusted_proxies", message))?;
        if self.workers > 1024 {
            return Err(invalid("workers", "at most 1024 (0: one per CPU core)"));
        }
        if self.shutdown_timeout.0 > 3600 {
            return Err(invalid("shutdown_timeout", "at most 3600 seconds"));
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("{other:?}: use text or json"),
                ))
            }
        };
        Ok(ServerSettings {
            listen: self.listen,
            // Stored without a trailing slash: routes append their paths to it.
            public_url: self
                .public_url
                .map(|url| url.as_str().trim_end_matches('/').to_owned()),
            tls,
            metrics_listen: self.metrics_listen,
            trusted_proxies,
            workers: self.workers,
            shutdown_timeout: self.shutdown_timeout.duration(),
            log_format,
        })
    }
}
