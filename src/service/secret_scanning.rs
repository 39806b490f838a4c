//! The wire formats of secret-scanning reports (WIRE-FORMATS.md §2(b)), pure and bounded:
//! GitHub's partner-program batches with their ECDSA P-256 signature over the raw body, and
//! GitLab's Token Revocation API. What is done with the tokens is `service::leaks`.

use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

/// The most tokens one report may carry; a larger one is refused whole (GitHub batches stay
/// far below).
pub const MAX_REPORTED_TOKENS: usize = 10_000;
/// The longest field kept from a report (a URL, a source, a type).
const MAX_FIELD_CHARS: usize = 2048;

/// Why a report was refused; never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the report is not a JSON array of findings")]
    NotFindings,
    #[error("the report holds more than {MAX_REPORTED_TOKENS} tokens")]
    TooMany,
    #[error("the signature header is missing or not base64")]
    BadSignatureHeader,
    #[error("no key with that identifier")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the key list is not GitHub's public_keys shape: {0}")]
    BadKeys(String),
}

/// One finding of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub token: String,
    pub token_type: String,
    /// Where it was found (GitHub's `url`, GitLab's `location`).
    pub location: Option<String>,
    /// GitHub's `source` (`commit`, `issue_comment`, ...).
    pub source: Option<String>,
}

fn bounded(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.is_empty())
        .map(|text| text.chars().take(MAX_FIELD_CHARS).collect())
}

/// GitHub's batch: `[{"token","type","url","source"}]`.
pub fn parse_github_report(body: &[u8]) -> Result<Vec<Finding>, ReportError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        token: String,
        #[serde(rename = "type", default)]
        token_type: String,
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        source: Option<String>,
    }
    let raw: Vec<Raw> = serde_json::from_slice(body).map_err(|_| ReportError::NotFindings)?;
    if raw.len() > MAX_REPORTED_TOKENS {
        return Err(ReportError::TooMany);
    }
    Ok(raw
        .into_iter()
        .map(|finding| Finding {
            token: finding.token,
            token_type: finding.token_type.chars().take(MAX_FIELD_CHARS).collect(),
            location: bounded(finding.url),
            source: bounded(finding.source),
        })
        .collect())
}

/// GitLab's Token Revocation API body: `[{"type","token","location"}]`.
pub fn parse_gitlab_report(body: &[u8]) -> Result<Vec<Finding>, ReportError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(rename = "type")]
        token_type: String,
        token: String,
        #[serde(default)]
        location: Option<String>,
    }
    let raw: Vec<Raw> = serde_json::from_slice(body).map_err(|_| ReportError::NotFindings)?;
    if raw.len() > MAX_REPORTED_TOKENS {
        return Err(ReportError::TooMany);
    }
    Ok(raw
        .into_iter()
        .map(|finding| Finding {
            token: finding.token,
            token_type: finding.token_type.chars().take(MAX_FIELD_CHARS).collect(),
            location: bounded(finding.location),
            source: Some("gitlab_secret_detection".to_owned()),
        })
        .collect())
}

/// GitHub's secret-scanning public keys: identifier → uncompressed P-256 point.
#[derive(Debug, Clone, Default)]
pub struct GitHubKeys(Vec<(String, Vec<u8>)>);

impl GitHubKeys {
    /// From `{"public_keys":[{"key_identifier","key"(PEM SPKI),"is_current"}]}`.
    pub fn parse(json: &[u8]) -> Result<GitHubKeys, ReportError> {
        #[derive(serde::Deserialize)]
        struct Key {
            key_identifier: String,
            key: String,
        }
        #[derive(serde::Deserialize)]
        struct Keys {
            public_keys: Vec<Key>,
        }
        let keys: Keys = serde_json::from_slice(json)
            .map_err(|error| ReportError::BadKeys(error.to_string()))?;
        let mut parsed = Vec::new();
        for key in keys.public_keys {
            let point = p256_point_of_pem(&key.key).ok_or_else(|| {
                ReportError::BadKeys(format!("key {} is no P-256 public key", key.key_identifier))
            })?;
            parsed.push((key.key_identifier, point));
        }
        Ok(GitHubKeys(parsed))
    }

    pub fn knows(&self, identifier: &str) -> bool {
        self.0.iter().any(|(id, _)| id == identifier)
    }

    /// Verifies `Github-Public-Key-Signature` (base64 of an ASN.1 DER ECDSA signature) over the
    /// raw body with the key `identifier` names.
    pub fn verify(
        &self,
        identifier: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), ReportError> {
        let (_, point) = self
            .0
            .iter()
            .find(|(id, _)| id == identifier)
            .ok_or(ReportError::UnknownKey)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| ReportError::BadSignatureHeader)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(body, &signature)
            .map_err(|_| ReportError::BadSignature)
    }
}

/// The 65-byte SEC1 point of a PEM (or bare base64) SubjectPublicKeyInfo of a P-256 key.
fn p256_point_of_pem(text: &str) -> Option<Vec<u8>> {
    use spki::der::Decode as _;
    let der = match pem::parse(text) {
        Ok(block) => block.into_contents(),
        Err(_) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?,
    };
    let info = spki::SubjectPublicKeyInfoRef::from_der(&der).ok()?;
    // id-ecPublicKey with the prime256v1 curve.
    const EC_PUBLIC_KEY: spki::ObjectIdentifier =
        spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const P256: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    if info.algorithm.oid != EC_PUBLIC_KEY || info.algorithm.parameters_oid().ok() != Some(P256) {
        return None;
    }
    let point = info.subject_public_key.as_bytes()?;
    (point.len() == 65 && point[0] == 4).then(|| point.to_vec())
}

/// GitHub's opt-in feedback for one finding: the SHA-256 of the token, never the token.
pub fn feedback(token: &str, token_type: &str, real: bool) -> serde_json::Value {
    let digest = crate::domain::TokenSecret::from_presented(token.to_owned()).digest();
    serde_json::json!({
        "token_hash": digest.as_hex(),
        "token_type": token_type,
        "label": if real { "true_positive" } else { "false_positive" },
    })
}

/// GitHub's keys as this server knows them: read from `github_secret_scanning_keys_file` for
/// each report (a rotated key needs no restart), or fetched from
/// `github_secret_scanning_keys_url`, kept, and fetched again when a report names a key not
/// held — at most once a minute, so unsigned noise cannot make regauth hammer GitHub.
pub struct GitHubKeySource {
    file: Option<std::path::PathBuf>,
    url: Option<url::Url>,
    client: Option<reqwest::Client>,
    held: tokio::sync::Mutex<(GitHubKeys, Option<std::time::Instant>)>,
}

/// How often the key list may be fetched again for an unknown key identifier.
const REFETCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl GitHubKeySource {
    pub fn new(file: Option<std::path::PathBuf>, url: Option<url::Url>) -> GitHubKeySource {
        let client = url.as_ref().and_then(|_| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(std::time::Duration::from_secs(3))
                .timeout(std::time::Duration::from_secs(5))
                .use_rustls_tls()
                .build()
                .map_err(|error| tracing::error!(%error, "no HTTP client for GitHub's keys"))
                .ok()
        });
        GitHubKeySource {
            file,
            url,
            client,
            held: tokio::sync::Mutex::new((GitHubKeys::default(), None)),
        }
    }

    /// Whether the partner endpoint is on.
    pub fn configured(&self) -> bool {
        self.file.is_some() || self.url.is_some()
    }

    /// The keys, holding `identifier` if GitHub publishes it.
    pub async fn keys_for(&self, identifier: &str) -> Result<GitHubKeys, String> {
        if let Some(file) = &self.file {
            let json = tokio::fs::read(file)
                .await
                .map_err(|error| format!("{}: {error}", file.display()))?;
            return GitHubKeys::parse(&json).map_err(|error| error.to_string());
        }
        let (Some(url), Some(client)) = (&self.url, &self.client) else {
            return Err("no key source".to_owned());
        };
        let mut held = self.held.lock().await;
        let stale = held
            .1
            .is_none_or(|fetched| fetched.elapsed() >= REFETCH_EVERY);
        if !held.0.knows(identifier) && stale {
            held.1 = Some(std::time::Instant::now());
            let json = crate::oidc::get_bounded(client, url.as_str()).await?;
            held.0 = GitHubKeys::parse(&json).map_err(|error| error.to_string())?;
            tracing::info!(url = %url, "GitHub's secret-scanning keys fetched");
        }
        Ok(held.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known-answer vector of GitHub's documentation (its older Python sample).
    const DOC_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUqkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==";
    const DOC_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
    const DOC_BODY: &str = r#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    const DOC_SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";

    fn doc_keys() -> GitHubKeys {
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{DOC_KEY}\n-----END PUBLIC KEY-----\n");
        let json = serde_json::json!({"public_keys": [
            {"key_identifier": DOC_ID, "key": pem, "is_current": true}
        ]});
        GitHubKeys::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn githubs_documented_signature_verifies_and_a_changed_body_does_not() {
        let keys = doc_keys();
        assert!(keys.knows(DOC_ID));
        keys.verify(DOC_ID, DOC_SIGNATURE, DOC_BODY.as_bytes())
            .unwrap();
        let appended = format!("{DOC_BODY} ");
        assert_eq!(
            keys.verify(DOC_ID, DOC_SIGNATURE, appended.as_bytes()),
            Err(ReportError::BadSignature)
        );
        assert_eq!(
            keys.verify("another", DOC_SIGNATURE, DOC_BODY.as_bytes()),
            Err(ReportError::UnknownKey)
        );
        assert_eq!(
            keys.verify(DOC_ID, "not base64!", DOC_BODY.as_bytes()),
            Err(ReportError::BadSignatureHeader)
        );
        let findings = parse_github_report(DOC_BODY.as_bytes()).unwrap();
        assert_eq!(findings[0].token, "some_token");
        assert_eq!(findings[0].location.as_deref(), Some("some_url"));
    }

    #[test]
    fn reports_that_are_not_findings_are_refused() {
        for body in [&b"{}"[..], b"not json", br#"[{"type":"x"}]"#, b""] {
            assert_eq!(parse_github_report(body), Err(ReportError::NotFindings));
        }
        assert_eq!(
            parse_gitlab_report(br#"[{"token":"x"}]"#),
            Err(ReportError::NotFindings)
        );
        let many = format!(
            "[{}]",
            vec![r#"{"token":"t","type":"x"}"#; MAX_REPORTED_TOKENS + 1].join(",")
        );
        assert_eq!(
            parse_github_report(many.as_bytes()),
            Err(ReportError::TooMany)
        );
        let gitlab = parse_gitlab_report(
            br#"[{"type":"regauth_deploy_token","token":"t","location":"https://gitlab.example.com/a/b/-/blob/1/f"}]"#,
        )
        .unwrap();
        assert_eq!(
            gitlab[0].location.as_deref(),
            Some("https://gitlab.example.com/a/b/-/blob/1/f")
        );
    }

    #[test]
    fn feedback_names_the_token_by_its_digest_only() {
        let answer = feedback("gldt-secret", "regauth_deploy_token", true);
        assert_eq!(answer["label"], "true_positive");
        assert!(!answer.to_string().contains("gldt-secret"));
        assert_eq!(answer["token_hash"].as_str().unwrap().len(), 64);
    }
}
