//! `regauth credential-provider`: the kubelet's exec plugin (credentialprovider.kubelet.k8s.io/v1)
//! for image pulls with the pod's own service-account token (KEP-4412). Pass-through mode
//! hands the token to the container runtime as the password (the registry login then takes
//! the federated path, with the policy named by a service-account annotation); exchange mode
//! trades it for a short-lived credential first. Reads stdin, writes stdout, nothing else: the
//! kubelet parses stdout, so nothing may be logged there.

use std::collections::BTreeMap;
use std::io::Read as _;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::CredentialProviderMode;

const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// A request is an image name, a token and a few annotations.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// An exchanged credential is cached by the kubelet until this long before it expires.
const CACHE_MARGIN_SECONDS: u64 = 60;

#[derive(Debug)]
pub struct Options {
    pub mode: CredentialProviderMode,
    pub url: Option<url::Url>,
    pub username_annotation: String,
    pub username: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    api_version: String,
    kind: String,
    image: String,
    #[serde(default)]
    service_account_token: String,
    #[serde(default)]
    service_account_annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("image", &self.image)
            .field("service_account_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AuthConfig {
    username: String,
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    api_version: &'static str,
    kind: &'static str,
    cache_key_type: &'static str,
    cache_duration: String,
    auth: BTreeMap<String, AuthConfig>,
}

/// Parses and checks the kubelet's request.
pub fn parse_request(text: &[u8]) -> anyhow::Result<Request> {
    let request: Request =
        serde_json::from_slice(text).context("stdin is not a CredentialProviderRequest")?;
    if request.api_version != API_VERSION || request.kind != "CredentialProviderRequest" {
        anyhow::bail!(
            "expected apiVersion {API_VERSION} and kind CredentialProviderRequest, got {} {}",
            request.api_version,
            request.kind
        );
    }
    if request.service_account_token.is_empty() {
        anyhow::bail!(
            "the request carries no serviceAccountToken: set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig"
        );
    }
    Ok(request)
}

/// The registry part of an image reference (`registry.example.com:5000/grp/app:1.0` →
/// `registry.example.com:5000`), as the kubelet matches `auth` keys.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

fn response(image: &str, username: String, password: String, cache_seconds: u64) -> Response {
    Response {
        api_version: API_VERSION,
        kind: "CredentialProviderResponse",
        cache_key_type: "Registry",
        cache_duration: format!("{cache_seconds}s"),
        auth: BTreeMap::from([(
            registry_of(image).to_owned(),
            AuthConfig { username, password },
        )]),
    }
}

#[derive(Deserialize)]
struct Exchanged {
    access_token: String,
    expires_in: u64,
    username: String,
}

async fn exchange(url: &url::Url, username: &str, token: &str) -> anyhow::Result<Exchanged> {
    let endpoint = url
        .join("oauth/token")
        .context("--url cannot be joined with oauth/token")?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let response = client
        .post(endpoint.clone())
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("resource", username),
        ])
        .send()
        .await
        .with_context(|| format!("POST {endpoint}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!(
            "{endpoint} refused the exchange ({status}): {}",
            body.chars().take(200).collect::<String>()
        );
    }
    let body = response.bytes().await?;
    serde_json::from_slice(&body).context("the exchange answered no credential")
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let request = parse_request(&input)?;
    let username = request
        .service_account_annotations
        .get(&options.username_annotation)
        .cloned()
        .or(options.username)
        .with_context(|| {
            format!(
                "the service account has no {:?} annotation naming a workload identity, and no --username was given",
                options.username_annotation
            )
        })?;
    let answer = match options.mode {
        // KEP-4412: a response built from the pod's own token must not be shared with
        // other pods, so the kubelet does not cache it.
        CredentialProviderMode::PassThrough => {
            response(&request.image, username, request.service_account_token, 0)
        }
        CredentialProviderMode::Exchange => {
            let url = options
                .url
                .context("exchange mode needs --url (regauth's base URL)")?;
            let exchanged = exchange(&url, &username, &request.service_account_token).await?;
            response(
                &request.image,
                exchanged.username,
                exchanged.access_token,
                exchanged.expires_in.saturating_sub(CACHE_MARGIN_SECONDS),
            )
        }
    };
    println!("{}", serde_json::to_string(&answer)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_of_an_image_is_its_first_component_when_it_is_a_host() {
        assert_eq!(
            registry_of("registry.example.com/grp/app:1.0"),
            "registry.example.com"
        );
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("library/nginx"), "docker.io");
        assert_eq!(registry_of("nginx"), "docker.io");
    }

    #[test]
    fn requests_without_a_token_or_of_another_kind_are_refused() {
        let ok = br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"r.example/a","serviceAccountToken":"t","serviceAccountAnnotations":{"regauth/identity":"gitlab+workload-9"}}"#;
        let request = parse_request(ok).unwrap();
        assert_eq!(
            request.service_account_annotations["regauth/identity"],
            "gitlab+workload-9"
        );
        assert!(!format!("{request:?}").contains("\"t\""));
        let no_token = br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"r.example/a"}"#;
        assert!(parse_request(no_token)
            .unwrap_err()
            .to_string()
            .contains("serviceAccountTokenAudience"));
        let other = br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"r.example/a","serviceAccountToken":"t"}"#;
        assert!(parse_request(other).is_err());
    }

    #[test]
    fn the_response_has_the_kubelet_shape() {
        let value = serde_json::to_value(response(
            "registry.example.com/grp/app:1.0",
            "gitlab+workload-9".into(),
            "secret".into(),
            0,
        ))
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                "kind": "CredentialProviderResponse",
                "cacheKeyType": "Registry",
                "cacheDuration": "0s",
                "auth": {"registry.example.com": {"username": "gitlab+workload-9", "password": "secret"}}
            })
        );
    }
}
