//! Authorizing git and package requests for a reverse proxy (`/-/forward-auth`: nginx
//! `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`). Two queries at most: the
//! deploy-token lookup (when credentials were sent) and the project or group lookup.

use chrono::{DateTime, Utc};

use crate::access::forward::{classify_with_lfs, LfsBatchOperation, NamespaceId, TargetRef};
use crate::access::policy::{
    self, Operation, ScopeFamily, Target, TokenAccess, TokenOwner, Verdict,
};
use crate::auth::authenticate_deploy_token;
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::{DeployToken, Namespace, NamespaceKind, SecretDigest, TokenSecret};
use crate::error::Error;
use crate::store::Store;

/// The credentials sent with the original request.
#[derive(Debug)]
pub enum Presented {
    /// No credentials.
    None,
    /// HTTP Basic (git, curl `--user`, Maven, npm ...): username and secret.
    Basic {
        username: String,
        secret: TokenSecret,
    },
    /// GitLab's `Deploy-Token: <secret>` header (package clients): the secret alone.
    DeployTokenHeader(TokenSecret),
}

/// What was decided, with what the caller logs and counts.
#[derive(Debug)]
pub struct Decision {
    pub verdict: Verdict,
    /// `None` when the request is not a git or package request regauth knows.
    pub operation: Option<Operation>,
    /// The authenticated deploy token, if any.
    pub token: Option<DeployToken>,
}

impl Decision {
    pub fn family(&self) -> Option<ScopeFamily> {
        self.operation.map(Operation::family)
    }
}

/// The deploy token behind the presented credentials (`None` when none were sent). Bad
/// credentials are `Unauthorized` whatever the request (as git and curl expect, so that they
/// ask again); this is the part the brute-force guard wraps.
pub async fn authenticate(
    store: &dyn Store,
    formats: &TokenFormats,
    presented: Presented,
    now: DateTime<Utc>,
) -> Result<Option<DeployToken>, Error> {
    let token = match presented {
        Presented::None => None,
        // A credential minted by the token exchange: its policy acts, as a deploy token would.
        Presented::Basic { username, secret }
            if super::workload_identity::is_exchanged_credential(formats, &secret) =>
        {
            let login = super::workload_identity::authenticate_exchanged(
                store,
                formats,
                Some(&username),
                &secret,
                now,
            )
            .await?;
            Some(login.credential)
        }
        Presented::DeployTokenHeader(secret)
            if super::workload_identity::is_exchanged_credential(formats, &secret) =>
        {
            let login = super::workload_identity::authenticate_exchanged(
                store, formats, None, &secret, now,
            )
            .await?;
            Some(login.credential)
        }
        Presented::Basic { username, secret } => {
            Some(authenticate_deploy_token(store, formats, &username, &secret, now).await?)
        }
        Presented::DeployTokenHeader(secret) => {
            if !formats.may_be(secret.expose(), TokenKind::DeployToken) {
                return Err(Error::Unauthorized);
            }
            Some(authenticate_by_secret(store, &secret.digest(), now).await?)
        }
    };
    Ok(token)
}

/// Decides the original request `method` `uri` for `token` (an LFS batch request by the
/// operation its body named, where the proxy passed the body). A request regauth does not
/// guard is `Forbidden`, never let through.
pub async fn authorize(
    store: &dyn Store,
    external_authorization: bool,
    method: &str,
    uri: &str,
    lfs: Option<LfsBatchOperation>,
    token: Option<DeployToken>,
) -> Result<Decision, Error> {
    let Some(request) = classify_with_lfs(method, uri, lfs) else {
        return Ok(Decision {
            verdict: Verdict::Forbidden,
            operation: None,
            token,
        });
    };
    let target = load_target(store, &request.target).await?;
    let access = token.as_ref().map(token_access);
    let verdict = policy::authorize_operation(
        request.operation,
        access.as_ref(),
        &target,
        external_authorization,
    );
    Ok(Decision {
        verdict,
        operation: Some(request.operation),
        token,
    })
}

/// The `Deploy-Token` header carries no username: the secret alone identifies the token.
async fn authenticate_by_secret(
    store: &dyn Store,
    digest: &SecretDigest,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    store
        .find_usable_deploy_token(digest)
        .await?
        .filter(|token| token.is_active(now))
        .ok_or(Error::Unauthorized)
}

/// The same owner mapping as the registry token path (a token's name never changes its reach).
pub fn token_access(token: &DeployToken) -> TokenAccess {
    let path = token.owner.full_path.clone();
    let owner = match token.owner.kind {
        NamespaceKind::Project => TokenOwner::Project(path),
        NamespaceKind::Group => TokenOwner::Group(path),
    };
    TokenAccess {
        scopes: token.scopes,
        owner,
        repositories: token.restrictions.repository_patterns.clone(),
    }
}

async fn load_target(store: &dyn Store, target: &TargetRef) -> Result<Target, Error> {
    let (kind, id) = match target {
        TargetRef::Project(id) => (NamespaceKind::Project, id),
        TargetRef::Group(id) => (NamespaceKind::Group, id),
    };
    let found: Option<Namespace> = match id {
        NamespaceId::Id(id) => store.find_namespace_by_id(*id).await?,
        NamespaceId::Path(path) => store.find_namespace(path).await?,
    };
    Ok(match found {
        Some(namespace) if namespace.kind == kind => match kind {
            NamespaceKind::Project => Target::Project {
                path: namespace.full_path,
                visibility: namespace.visibility,
            },
            NamespaceKind::Group => Target::Group(namespace.full_path),
        },
        _ => Target::Missing,
    })
}
