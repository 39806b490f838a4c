//! Verifying OIDC ID tokens of the trusted issuers (`[[oidc_issuers]]`): the JWS checks
//! (`jws`, pure) and each issuer's keys, fetched lazily from its discovery document and
//! cached. An issuer that cannot be reached never stops the start and only refuses its own
//! tokens, with a log line and `regauth_oidc_key_fetch_failures_total{issuer}`.

pub mod jws;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use crate::config::oidc::{is_allowed_fetch_url, OidcIssuer};
use crate::metrics::Metrics;
pub use jws::{looks_like_jws, Rejection, VerifiedClaims, VerifyingKey};

/// An unknown `kid` makes regauth ask the issuer again at most this often.
pub const REFETCH_EVERY: Duration = Duration::from_secs(60);
/// Tokens whose verification is remembered (docker sends the same job token with every
/// token request); beyond it the memory is emptied.
const VERIFIED_CAPACITY: usize = 10_000;
/// Discovery documents and JWKS larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A token whose header, issuer, signature and time claims passed.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub issuer: OidcIssuer,
    pub claims: VerifiedClaims,
    pub expires_at: DateTime<Utc>,
}

struct Cached {
    keys: Arc<Vec<VerifyingKey>>,
    jwks_uri: Option<Url>,
    last_attempt: Option<Instant>,
    last_failed: bool,
}

struct TrustedIssuer {
    config: OidcIssuer,
    cached: RwLock<Cached>,
    /// One fetch at a time per issuer: concurrent requests with an unknown `kid` wait for
    /// it instead of each asking the issuer.
    fetching: tokio::sync::Mutex<()>,
}

impl TrustedIssuer {
    fn key(&self, key_id: &str) -> Option<VerifyingKey> {
        let cached = self.cached.read().ok()?;
        cached.keys.iter().find(|key| key.key_id == key_id).cloned()
    }
}

/// The trusted issuers and their keys; one per server, shared by every worker.
pub struct Verifier {
    issuers: Vec<TrustedIssuer>,
    client: Option<reqwest::Client>,
    metrics: Option<Arc<Metrics>>,
    refetch_every: Duration,
    /// Tokens already verified, by the SHA-256 of their text, until their `exp`: a repeated
    /// login skips the signature check and the parsing. (A key the issuer withdraws stops
    /// new tokens at once, the ones already seen at their `exp`.)
    verified: RwLock<HashMap<[u8; 32], Arc<VerifiedToken>>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Verifier {
    /// Builds no connection: issuers are first asked when a token of theirs arrives.
    pub fn new(issuers: &[OidcIssuer], metrics: Option<Arc<Metrics>>) -> Verifier {
        let needs_client = issuers.iter().any(|issuer| issuer.jwks_file.is_none());
        let client = needs_client
            .then(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(FETCH_TIMEOUT)
                    .use_rustls_tls()
                    .build()
            })
            .and_then(|built| match built {
                Ok(client) => Some(client),
                Err(error) => {
                    tracing::error!(%error, "cannot build the HTTP client for OIDC issuers; their tokens will be refused");
                    None
                }
            });
        Verifier {
            issuers: issuers
                .iter()
                .map(|config| TrustedIssuer {
                    config: config.clone(),
                    cached: RwLock::new(Cached {
                        keys: Arc::new(Vec::new()),
                        jwks_uri: None,
                        last_attempt: None,
                        last_failed: false,
                    }),
                    fetching: tokio::sync::Mutex::new(()),
                })
                .collect(),
            client,
            metrics,
            refetch_every: REFETCH_EVERY,
            verified: RwLock::new(HashMap::new()),
        }
    }

    /// Another interval than [`REFETCH_EVERY`] between fetches (tests of key rotation).
    pub fn with_refetch_every(mut self, every: Duration) -> Verifier {
        self.refetch_every = every;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The configured issuer with exactly this `iss`.
    pub fn issuer(&self, url: &str) -> Option<&OidcIssuer> {
        self.trusted(url).map(|issuer| &issuer.config)
    }

    fn trusted(&self, url: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|issuer| issuer.config.url == url)
    }

    /// Steps 1-4 of the verification order; the policy's audience and conditions are the
    /// caller's (they depend on which policy).
    pub async fn verify(
        &self,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<VerifiedToken>, Rejection> {
        if text.len() > jws::MAX_TOKEN_BYTES {
            return Err(Rejection::Oversized);
        }
        let digest = token_digest(text);
        let remembered = self
            .verified
            .read()
            .ok()
            .and_then(|verified| verified.get(&digest).cloned());
        if let Some(token) = remembered {
            if now < token.expires_at {
                return Ok(token);
            }
            return Err(Rejection::Expired);
        }
        let token = jws::UnverifiedToken::parse(text)?;
        let issuer = self
            .trusted(&token.issuer)
            .ok_or(Rejection::UnknownIssuer)?;
        let key = self.key(issuer, &token.key_id).await?;
        let claims = token.verify(&key)?;
        let expires_at = claims.check_time(now)?;
        let verified = Arc::new(VerifiedToken {
            issuer: issuer.config.clone(),
            claims,
            expires_at,
        });
        if let Ok(mut remembered) = self.verified.write() {
            if remembered.len() >= VERIFIED_CAPACITY {
                remembered.retain(|_, token| now < token.expires_at);
                if remembered.len() >= VERIFIED_CAPACITY {
                    remembered.clear();
                }
            }
            remembered.insert(digest, Arc::clone(&verified));
        }
        Ok(verified)
    }

    async fn key(&self, issuer: &TrustedIssuer, key_id: &str) -> Result<VerifyingKey, Rejection> {
        if let Some(key) = issuer.key(key_id) {
            return Ok(key);
        }
        let _fetching = issuer.fetching.lock().await;
        // Someone may have fetched while this request waited.
        if let Some(key) = issuer.key(key_id) {
            return Ok(key);
        }
        let (recent, failed, jwks_uri) = {
            let cached = issuer
                .cached
                .read()
                .map_err(|_| Rejection::IssuerUnavailable)?;
            (
                cached
                    .last_attempt
                    .is_some_and(|at| at.elapsed() < self.refetch_every),
                cached.last_failed,
                cached.jwks_uri.clone(),
            )
        };
        if recent {
            return Err(if failed {
                Rejection::IssuerUnavailable
            } else {
                Rejection::UnknownKey
            });
        }
        let fetched = self.fetch_keys(&issuer.config, jwks_uri).await;
        let mut cached = issuer
            .cached
            .write()
            .map_err(|_| Rejection::IssuerUnavailable)?;
        cached.last_attempt = Some(Instant::now());
        match fetched {
            Ok((keys, jwks_uri)) => {
                tracing::info!(issuer = %issuer.config.url, keys = keys.len(), "OIDC issuer keys fetched");
                cached.keys = Arc::new(keys);
                cached.jwks_uri = jwks_uri;
                cached.last_failed = false;
                cached
                    .keys
                    .iter()
                    .find(|key| key.key_id == key_id)
                    .cloned()
                    .ok_or(Rejection::UnknownKey)
            }
            Err(error) => {
                tracing::warn!(issuer = %issuer.config.url, %error, "OIDC issuer keys cannot be fetched: its tokens are refused until it answers (asked again at most once a minute)");
                if let Some(metrics) = &self.metrics {
                    metrics.record_oidc_key_fetch_failure(&issuer.config.url);
                }
                cached.last_failed = true;
                Err(Rejection::IssuerUnavailable)
            }
        }
    }

    /// The issuer's keys: from its `jwks_file`, or discovery (once) then its `jwks_uri`.
    async fn fetch_keys(
        &self,
        issuer: &OidcIssuer,
        known_jwks_uri: Option<Url>,
    ) -> Result<(Vec<VerifyingKey>, Option<Url>), String> {
        if let Some(path) = &issuer.jwks_file {
            let document = read_bounded_file(path).await?;
            return Ok((jws::parse_jwks(&document)?, None));
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| "no HTTP client".to_owned())?;
        let jwks_uri = match known_jwks_uri {
            Some(uri) => uri,
            None => {
                let discovery = issuer.discovery_url();
                let document = get_bounded(client, &discovery).await?;
                let discovery: Discovery = serde_json::from_slice(&document)
                    .map_err(|error| format!("{discovery}: not a discovery document ({error})"))?;
                if discovery.issuer != issuer.url {
                    return Err(format!(
                        "the discovery document names the issuer {:?}, not {:?}",
                        discovery.issuer, issuer.url
                    ));
                }
                let uri = Url::parse(&discovery.jwks_uri)
                    .map_err(|error| format!("jwks_uri is not a URL ({error})"))?;
                if !is_allowed_fetch_url(&uri) {
                    return Err(format!("jwks_uri {uri} is not https://"));
                }
                uri
            }
        };
        let document = get_bounded(client, jwks_uri.as_str()).await?;
        let keys = jws::parse_jwks(&document).map_err(|error| format!("{jwks_uri}: {error}"))?;
        Ok((keys, Some(jwks_uri)))
    }
}

fn token_digest(text: &str) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
    digest
}

pub(crate) async fn get_bounded(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("{url}: {error}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_bounded_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let length = tokio::fs::metadata(path)
        .await
        .map_err(|error| format!("{}: {error}", path.display()))?
        .len();
    if length > MAX_DOCUMENT_BYTES as u64 {
        return Err(format!(
            "{}: larger than {MAX_DOCUMENT_BYTES} bytes",
            path.display()
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|error| format!("{}: {error}", path.display()))
}
