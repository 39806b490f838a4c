//! Creating, listing and revoking deploy tokens.

use chrono::{DateTime, Utc};

use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::{DeployToken, Namespace, NewDeployToken, TokenSecret};
use crate::error::Error;
use crate::store::Store;

/// A freshly created token: the only moment its secret exists in clear.
#[derive(Debug)]
pub struct CreatedDeployToken {
    pub token: DeployToken,
    pub secret: TokenSecret,
    pub warnings: Vec<String>,
}

pub async fn create(
    store: &dyn Store,
    owner: &Namespace,
    request: DeployTokenRequest,
    token_prefix: &str,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<CreatedDeployToken, Error> {
    let new_token = NewDeployToken::validate(request, owner.kind, now)?;
    let secret = TokenSecret::generate(token_prefix)
        .map_err(|_| Error::Internal("the system random generator failed".into()))?;
    let token = store
        .create_deploy_token(owner, &new_token, &secret.digest(), created_by, now)
        .await?;
    tracing::info!(
        token_id = token.id,
        owner = owner.full_path.as_str(),
        scopes = ?token.scopes.names(),
        created_by,
        "deploy token created"
    );
    Ok(CreatedDeployToken {
        token,
        secret,
        warnings: new_token.warnings(),
    })
}

pub async fn list(store: &dyn Store, owner: &Namespace) -> Result<Vec<DeployToken>, Error> {
    Ok(store.list_deploy_tokens(owner).await?)
}

/// Revokes at once and for good; revoking a revoked token is not an error.
pub async fn revoke(store: &dyn Store, id: i64, now: DateTime<Utc>) -> Result<DeployToken, Error> {
    let token = store
        .revoke_deploy_token(id, now)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Deploy token {id}")))?;
    tracing::info!(token_id = token.id, "deploy token revoked");
    Ok(token)
}
