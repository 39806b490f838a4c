//! Deploy tokens, as GitLab's deploy token API answers them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{optional, Timestamp};
use crate::domain::DeployToken;
use crate::service::ci_credentials::CiCredentials;

/// A deploy token, never its secret (see [`CreatedDeployTokenView`]): `GET
/// /api/v4/deploy_tokens`, `GET /api/v4/{projects|groups}/:id/deploy_tokens[/:token_id]`,
/// `PUT .../deploy_tokens/:token_id`; `regauth deploy-token show|list --json`.
#[derive(Debug, Serialize)]
pub struct DeployTokenView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub username: &'a str,
    pub expires_at: Option<Timestamp>,
    pub scopes: Vec<&'static str>,
    pub revoked: bool,
    pub expired: bool,
    /// Comma-separated, `""` when the token may be used from anywhere.
    pub ip_restriction_ranges: String,
    pub repository_patterns: Vec<&'a str>,
    pub rotated_at: Option<Timestamp>,
}

impl<'a> DeployTokenView<'a> {
    pub fn new(token: &'a DeployToken, now: DateTime<Utc>) -> Self {
        DeployTokenView {
            id: token.id,
            name: &token.name,
            username: &token.username,
            expires_at: optional(token.expires_at),
            scopes: token.scopes.names(),
            revoked: token.revoked,
            expired: token.is_expired(now),
            ip_restriction_ranges: token.restrictions.ip_ranges.to_text(),
            repository_patterns: token.restrictions.repository_patterns.texts(),
            rotated_at: optional(token.rotation.rotated_at),
        }
    }
}

/// A new deploy token with its secret, the one place a secret is ever rendered: `POST
/// /api/v4/{projects|groups}/:id/deploy_tokens` (201); `regauth deploy-token create --json`.
/// No `Debug`: it holds a secret in clear, and must never reach a log line.
#[derive(Serialize)]
pub struct CreatedDeployTokenView<'a> {
    #[serde(flatten)]
    pub deploy_token: DeployTokenView<'a>,
    /// The secret.
    pub token: &'a str,
}

impl<'a> CreatedDeployTokenView<'a> {
    pub fn new(token: &'a DeployToken, secret: &'a str, now: DateTime<Utc>) -> Self {
        CreatedDeployTokenView {
            deploy_token: DeployTokenView::new(token, now),
            token: secret,
        }
    }
}

/// A rotated deploy token: as created (with its new secret), plus until when the previous
/// secret works. `POST /api/v4/{projects|groups}/:id/deploy_tokens/:token_id/rotate`;
/// `regauth deploy-token rotate --json`.
/// No `Debug`: it holds a secret in clear, and must never reach a log line.
#[derive(Serialize)]
pub struct RotatedDeployTokenView<'a> {
    #[serde(flatten)]
    pub created: CreatedDeployTokenView<'a>,
    pub previous_token_expires_at: Timestamp,
}

impl<'a> RotatedDeployTokenView<'a> {
    pub fn new(
        token: &'a DeployToken,
        secret: &'a str,
        previous_secret_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        RotatedDeployTokenView {
            created: CreatedDeployTokenView::new(token, secret, now),
            previous_token_expires_at: Timestamp(previous_secret_expires_at),
        }
    }
}

/// The variables a CI system injects, and which token they come from: `GET
/// /api/v4/projects/:id/ci_deploy_credentials`.
/// No `Debug`: it holds a secret in clear, and must never reach a log line.
#[derive(Serialize)]
pub struct CiCredentialsView<'a> {
    #[serde(rename = "CI_DEPLOY_USER")]
    pub ci_deploy_user: &'a str,
    #[serde(rename = "CI_DEPLOY_PASSWORD")]
    pub ci_deploy_password: &'a str,
    pub deploy_token: DeployTokenView<'a>,
    pub owner: CiOwnerView<'a>,
}

/// The namespace a CI deploy token belongs to (in [`CiCredentialsView`]).
#[derive(Debug, Serialize)]
pub struct CiOwnerView<'a> {
    /// `project` or `group`.
    pub kind: String,
    pub full_path: &'a str,
}

impl<'a> CiCredentialsView<'a> {
    pub fn new(credentials: &'a CiCredentials, now: DateTime<Utc>) -> Self {
        let token = &credentials.token;
        CiCredentialsView {
            ci_deploy_user: &token.username,
            ci_deploy_password: &credentials.password,
            deploy_token: DeployTokenView::new(token, now),
            owner: CiOwnerView {
                kind: token.owner.kind.to_string(),
                full_path: token.owner.full_path.as_str(),
            },
        }
    }
}
