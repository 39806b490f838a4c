//! What GitLab's admin token API (`POST /api/v4/admin/token`) and Token Revocation API say
//! about tokens. Never a secret.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{optional, DeployTokenView, Timestamp, WorkloadIdentityView};
use crate::domain::rotation::SecretRotation;
use crate::domain::token_format::TokenKind;
use crate::domain::{DeployToken, Namespace};
use crate::service::leaks::Identified;

/// A token found by its secret, in its kind's shape (`kind` says which): `POST
/// /api/v4/admin/token`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TokenInformation<'a> {
    DeployToken(DeployTokenInformation<'a>),
    PersonalAccessToken(PersonalAccessTokenInformation<'a>),
    RefreshToken {
        kind: &'static str,
        /// The deploy token the refresh token belongs to.
        deploy_token: DeployTokenInformation<'a>,
    },
    WorkloadCredential(WorkloadCredentialInformation<'a>),
}

impl<'a> TokenInformation<'a> {
    pub fn new(found: &'a Identified, now: DateTime<Utc>) -> Self {
        match found {
            Identified::DeployToken(token) => {
                TokenInformation::DeployToken(DeployTokenInformation::new(token, now))
            }
            Identified::PersonalAccessToken(token, user) => {
                TokenInformation::PersonalAccessToken(PersonalAccessTokenInformation {
                    kind: TokenKind::PersonalAccessToken.as_str(),
                    id: token.id,
                    name: &token.name,
                    scopes: token.scopes.iter().map(|scope| scope.as_str()).collect(),
                    revoked: token.revoked,
                    expires_at: optional(token.expires_at),
                    created_at: Timestamp(token.created_at),
                    ip_restriction_ranges: token.ip_ranges.to_text(),
                    user: TokenUserView {
                        id: user.id,
                        username: &user.username,
                    },
                    presented_secret: PresentedSecret::of(&token.rotation),
                    rotated_at: optional(token.rotation.rotated_at),
                    previous_token_expires_at: optional(token.rotation.previous_secret_expires_at),
                })
            }
            Identified::RefreshToken(token) => TokenInformation::RefreshToken {
                kind: TokenKind::RefreshToken.as_str(),
                deploy_token: DeployTokenInformation::new(token, now),
            },
            Identified::WorkloadCredential(credential) => {
                TokenInformation::WorkloadCredential(WorkloadCredentialInformation {
                    kind: TokenKind::WorkloadCredential.as_str(),
                    id: credential.id,
                    scopes: credential.scopes.names(),
                    // Deleted when revoked: one that is found is not revoked.
                    revoked: false,
                    expires_at: Timestamp(credential.expires_at),
                    owner: TokenOwnerView::new(&credential.policy.owner),
                    workload_identity: WorkloadIdentityView::new(&credential.policy),
                })
            }
        }
    }
}

/// A deploy token found by its secret (also inside a refresh token's answer).
#[derive(Debug, Serialize)]
pub struct DeployTokenInformation<'a> {
    pub kind: &'static str,
    #[serde(flatten)]
    pub deploy_token: DeployTokenView<'a>,
    pub last_used_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub owner: TokenOwnerView<'a>,
    pub presented_secret: PresentedSecret,
    /// Until when the secret replaced by the last rotation works; `null` without one.
    pub previous_token_expires_at: Option<Timestamp>,
}

impl<'a> DeployTokenInformation<'a> {
    fn new(token: &'a DeployToken, now: DateTime<Utc>) -> Self {
        DeployTokenInformation {
            kind: TokenKind::DeployToken.as_str(),
            deploy_token: DeployTokenView::new(token, now),
            last_used_at: optional(token.last_used_at),
            created_at: Timestamp(token.created_at),
            owner: TokenOwnerView::new(&token.owner),
            presented_secret: PresentedSecret::of(&token.rotation),
            previous_token_expires_at: optional(token.rotation.previous_secret_expires_at),
        }
    }
}

/// A personal access token found by its secret.
#[derive(Debug, Serialize)]
pub struct PersonalAccessTokenInformation<'a> {
    pub kind: &'static str,
    pub id: i64,
    pub name: &'a str,
    pub scopes: Vec<&'static str>,
    pub revoked: bool,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub ip_restriction_ranges: String,
    pub user: TokenUserView<'a>,
    pub presented_secret: PresentedSecret,
    pub rotated_at: Option<Timestamp>,
    pub previous_token_expires_at: Option<Timestamp>,
}

/// A credential minted by the token exchange, found by its secret.
#[derive(Debug, Serialize)]
pub struct WorkloadCredentialInformation<'a> {
    pub kind: &'static str,
    pub id: i64,
    pub scopes: Vec<&'static str>,
    pub revoked: bool,
    pub expires_at: Timestamp,
    pub owner: TokenOwnerView<'a>,
    pub workload_identity: WorkloadIdentityView<'a>,
}

/// Which of a token's secrets was presented (#27): the `current` one, or the `previous` one
/// (replaced by a rotation, in its grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresentedSecret {
    Current,
    Previous,
}

impl PresentedSecret {
    fn of(rotation: &SecretRotation) -> Self {
        if rotation.found_by_previous_secret {
            PresentedSecret::Previous
        } else {
            PresentedSecret::Current
        }
    }
}

/// The namespace a token belongs to.
#[derive(Debug, Serialize)]
pub struct TokenOwnerView<'a> {
    pub id: i64,
    /// `project` or `group`.
    pub kind: String,
    pub full_path: &'a str,
}

impl<'a> TokenOwnerView<'a> {
    fn new(namespace: &'a Namespace) -> Self {
        TokenOwnerView {
            id: namespace.id,
            kind: namespace.kind.to_string(),
            full_path: namespace.full_path.as_str(),
        }
    }
}

/// The user a personal access token belongs to.
#[derive(Debug, Serialize)]
pub struct TokenUserView<'a> {
    pub id: i64,
    pub username: &'a str,
}

/// The token types regauth revokes: `GET /v1/revocable_token_types` (GitLab's Token
/// Revocation API).
#[derive(Debug, Serialize)]
pub struct RevocableTokenTypesView {
    pub types: [&'static str; 1],
}
