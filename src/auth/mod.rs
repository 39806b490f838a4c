//! Who is calling: credentials from the request and their resolution to a deploy token.

pub mod basic;

use chrono::{DateTime, Utc};

use crate::domain::{DeployToken, TokenSecret};
use crate::error::Error;
use crate::store::Store;

pub use basic::BasicCredentials;

/// Resolves a username and secret to an active deploy token. The secret is looked up by its
/// digest; the username must then equal the token's exactly. Every failure is the same
/// `Unauthorized`, whether or not the username exists.
pub async fn authenticate_deploy_token(
    store: &dyn Store,
    username: &str,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    let token = store
        .find_usable_deploy_token(&secret.digest())
        .await?
        .ok_or(Error::Unauthorized)?;
    if token.username != username || !token.is_active(now) {
        return Err(Error::Unauthorized);
    }
    Ok(token)
}
