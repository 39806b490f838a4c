//! `[[oidc_issuers]]`: the OpenID issuers whose ID tokens may stand in for a deploy token
//! (workload identity federation). An administrator's setting only: policies name one of
//! these, never a URL of their own, so that no project can make regauth fetch arbitrary URLs.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

pub use crate::domain::workload_identity::IssuerKind;
use crate::domain::workload_identity::IssuerTrust;

/// One `[[oidc_issuers]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcIssuer {
    pub url: String,
    pub kind: IssuerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
}

/// The `oidc_issuers` setting as written.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Issuers whose OIDC tokens workload identity policies may trust: `[[oidc_issuers]]`
    /// tables with `url` (exactly the tokens' `iss`), `kind` (`gitlab`, `github`,
    /// `kubernetes`, `generic`) and an optional `jwks_file`; see [Keyless CI and
    /// pods](workload-identity.md).
    oidc_issuers: Vec<RawOidcIssuer>,
}

impl Raw {
    pub(super) fn validate(self) -> Result<Vec<OidcIssuer>, super::SettingsError> {
        validate_issuers(&self.oidc_issuers)
            .map_err(|(name, message)| super::invalid(name, message))
    }
}

/// A trusted issuer, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    /// Exactly the `iss` its tokens carry (compared as text, as OpenID Connect says).
    pub url: String,
    pub kind: IssuerKind,
    /// A JWKS kept on disk, for issuers regauth cannot reach (a private cluster): no
    /// discovery at all then.
    pub jwks_file: Option<PathBuf>,
}

impl OidcIssuer {
    /// gitlab.com and GitHub sign for everyone's jobs: a policy on them must pin an owner.
    pub fn is_shared(&self) -> bool {
        match self.kind {
            IssuerKind::Github => true,
            IssuerKind::Gitlab => Url::parse(&self.url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
                .is_some_and(|host| host == "gitlab.com"),
            IssuerKind::Kubernetes | IssuerKind::Generic => false,
        }
    }

    pub fn trust(&self) -> IssuerTrust {
        IssuerTrust {
            kind: self.kind,
            shared: self.is_shared(),
        }
    }

    /// The discovery document's URL (`<iss>/.well-known/openid-configuration`).
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.url.trim_end_matches('/')
        )
    }
}

/// HTTPS, or plain HTTP to a loopback address (tests, a sidecar issuer).
pub fn is_allowed_fetch_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

/// Checks every entry; the message names the entry (`oidc_issuers[1].url`).
fn validate_issuers(raw: &[RawOidcIssuer]) -> Result<Vec<OidcIssuer>, (String, String)> {
    let mut issuers: Vec<OidcIssuer> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let field = |name: &str| format!("oidc_issuers[{index}].{name}");
        let url = Url::parse(entry.url.trim()).map_err(|error| {
            (
                field("url"),
                format!("{:?} is not a URL ({error})", entry.url),
            )
        })?;
        if !is_allowed_fetch_url(&url) {
            return Err((
                field("url"),
                "must be an https:// URL (http:// only for a loopback address)".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err((
                field("url"),
                "must not carry a query, a fragment or credentials".into(),
            ));
        }
        if url.password().is_some() {
            return Err((field("url"), "must not carry credentials".into()));
        }
        if issuers.iter().any(|known| known.url == entry.url.trim()) {
            return Err((field("url"), "is listed twice".into()));
        }
        if let Some(path) = &entry.jwks_file {
            if path.as_os_str().is_empty() {
                return Err((field("jwks_file"), "must not be empty".into()));
            }
        }
        issuers.push(OidcIssuer {
            // The exact `iss`: as written, not as the URL parser would normalise it.
            url: entry.url.trim().to_owned(),
            kind: entry.kind,
            jwks_file: entry.jwks_file.clone(),
        });
    }
    Ok(issuers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str, kind: IssuerKind) -> RawOidcIssuer {
        RawOidcIssuer {
            url: url.into(),
            kind,
            jwks_file: None,
        }
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        let issuers = validate_issuers(&[
            raw("https://gitlab.example.com", IssuerKind::Gitlab),
            raw("http://127.0.0.1:8080/oidc", IssuerKind::Generic),
            raw("http://[::1]:9000", IssuerKind::Kubernetes),
            raw("http://localhost:9000", IssuerKind::Generic),
        ])
        .unwrap();
        assert_eq!(issuers.len(), 4);
        assert_eq!(issuers[1].url, "http://127.0.0.1:8080/oidc");
    }

    #[test]
    fn other_urls_are_refused_naming_the_entry() {
        for (url, expected) in [
            ("http://gitlab.example.com", "https://"),
            ("ftp://example.com", "https://"),
            ("not a url", "is not a URL"),
            ("https://user:pw@example.com", "credentials"),
            ("https://example.com/?a=b", "query"),
        ] {
            let (name, message) = validate_issuers(&[
                raw("https://ok.example.com", IssuerKind::Generic),
                raw(url, IssuerKind::Generic),
            ])
            .unwrap_err();
            assert_eq!(name, "oidc_issuers[1].url", "{url}");
            assert!(message.contains(expected), "{url}: {message}");
        }
    }

    #[test]
    fn an_issuer_listed_twice_is_refused() {
        let (_, message) = validate_issuers(&[
            raw("https://a.example.com", IssuerKind::Generic),
            raw("https://a.example.com", IssuerKind::Gitlab),
        ])
        .unwrap_err();
        assert!(message.contains("twice"));
    }

    #[test]
    fn github_and_gitlab_com_are_shared_issuers() {
        let shared = |url: &str, kind| validate_issuers(&[raw(url, kind)]).unwrap()[0].is_shared();
        assert!(shared(
            "https://token.actions.githubusercontent.com",
            IssuerKind::Github
        ));
        assert!(shared("https://gitlab.com", IssuerKind::Gitlab));
        assert!(!shared("https://gitlab.example.com", IssuerKind::Gitlab));
        assert!(!shared(
            "https://kubernetes.default.svc",
            IssuerKind::Kubernetes
        ));
    }
}
