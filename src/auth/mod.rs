//! Who is calling: credentials from the request and their resolution to a deploy token.

pub mod basic;

use chrono::{DateTime, Utc};

use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::{DeployToken, TokenSecret};
use crate::error::Error;
use crate::store::Store;

pub use basic::BasicCredentials;

/// Resolves a username and secret to an active deploy token. The secret is looked up by its
/// digest; the username must then equal the token's exactly. Every failure is the same
/// `Unauthorized`, whether or not the username exists.
pub async fn authenticate_deploy_token(
    store: &dyn Store,
    formats: &TokenFormats,
    username: &str,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    // Malformed, a wrong checksum, or another kind's: refused without a lookup.
    if !formats.may_be(secret.expose(), TokenKind::DeployToken) {
        return Err(Error::Unauthorized);
    }
    let token = store
        .find_usable_deploy_token(&secret.digest())
        .await?
        .ok_or(Error::Unauthorized)?;
    if token.username != username || !token.is_active(now) {
        return Err(Error::Unauthorized);
    }
    Ok(token)
}

/// The credentials of a management API request: a personal access token in `PRIVATE-TOKEN`
/// or `Authorization: Bearer`, as GitLab accepts them.
pub fn api_token_from_headers(headers: &actix_web::http::header::HeaderMap) -> Option<TokenSecret> {
    let private_token = headers
        .get("PRIVATE-TOKEN")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty());
    let bearer = || {
        headers
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
    };
    private_token
        .or_else(bearer)
        .map(|token| TokenSecret::from_presented(token.to_owned()))
}

/// Resolves a personal access token to its user. Revoked or expired tokens, tokens of
/// blocked users, and anything else (deploy tokens included) are `Unauthorized`.
pub async fn authenticate_personal_access_token(
    store: &dyn Store,
    formats: &TokenFormats,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Result<(crate::domain::User, crate::domain::PersonalAccessToken), Error> {
    if !formats.may_be(secret.expose(), TokenKind::PersonalAccessToken) {
        return Err(Error::Unauthorized);
    }
    let (token, user) = store
        .find_usable_personal_access_token(&secret.digest())
        .await?
        .ok_or(Error::Unauthorized)?;
    if !token.is_active(now) || user.blocked || !token.can_read() {
        return Err(Error::Unauthorized);
    }
    Ok((user, token))
}
