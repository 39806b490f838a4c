//! Reports of leaked secrets from secret scanners: GitLab's Token Revocation API and
//! GitHub's secret-scanning partner program.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{given, invalid, oidc, SettingsError};

#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct Raw {
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
}

#[derive(Clone)]
pub struct LeakReportSettings {
    /// The pre-shared token of GitLab's Token Revocation API; `None`: off.
    pub gitlab_token_revocation_token: Option<String>,
    /// GitHub's secret-scanning keys; `None`: the partner endpoint is off.
    pub github_secret_scanning_keys_file: Option<PathBuf>,
    /// Where GitHub's secret-scanning keys are fetched from (when no file is given).
    pub github_secret_scanning_keys_url: Option<Url>,
}

// The revocation token is a secret.
impl std::fmt::Debug for LeakReportSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakReportSettings")
            .field(
                "gitlab_token_revocation_token",
                &self
                    .gitlab_token_revocation_token
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field(
                "github_secret_scanning_keys_file",
                &self.github_secret_scanning_keys_file,
            )
            .field(
                "github_secret_scanning_keys_url",
                &self.github_secret_scanning_keys_url,
            )
            .finish()
    }
}

impl Raw {
    pub(super) fn validate(self) -> Result<LeakReportSettings, SettingsError> {
        let github_secret_scanning_keys_url = match self.github_secret_scanning_keys_url.trim() {
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
        Ok(LeakReportSettings {
            gitlab_token_revocation_token: Some(self.gitlab_token_revocation_token)
                .filter(|token| !token.is_empty()),
            github_secret_scanning_keys_file: given(&self.github_secret_scanning_keys_file),
            github_secret_scanning_keys_url,
        })
    }
}
