//! Exchanging an authenticated deploy token for a registry JWT (PROTOCOL.md §3, §6; DOMAIN.md
//! "Scopes → actions"). Two queries at most: the token lookup (done by the caller) and one
//! lookup of all candidate projects for all requested repositories.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound as _, Utc};

use crate::access::policy::{self, Granted, ResolvedScope, Service, TokenAccess, TokenOwner};
use crate::access::repository::{resolve_project, NamespacePath, RepositoryPath};
use crate::access::requested_scope::{parse_requested_scopes, ParsedScopes, RequestedScope};
use crate::config::Settings;
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::{DeployToken, NamespaceKind, TokenSecret};
use crate::error::Error;
use crate::jwt::{AccessEntry, KeyAlgorithm, KeyRing, RegistryClaims, SignError};
use crate::service::signing_pool;
use crate::store::Store;

/// A signed token and what the response reports about it. `Debug` leaves the JWT out.
pub struct IssuedToken {
    pub jwt: String,
    pub expires_in: u64,
    pub issued_at: DateTime<Utc>,
    /// The granted scopes, space-separated (the OAuth2 `scope` field).
    pub scope: String,
    /// False when some requested action (or a malformed scope) was left out.
    pub complete: bool,
}

/// Creates a refresh token bound to `token` and `service_name` (PROTOCOL.md §3–§4: docker
/// keeps it as its identity token and forgets the password).
pub async fn create_refresh_token(
    store: &dyn Store,
    settings: &Settings,
    token: &DeployToken,
    service_name: &str,
    now: DateTime<Utc>,
) -> Result<TokenSecret, Error> {
    let secret = settings
        .tokens
        .formats()
        .generate(TokenKind::RefreshToken)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    let lifetime = chrono::Duration::from_std(settings.tokens.refresh_token_ttl)
        .map_err(|error| Error::internal_from("refresh_token_ttl out of range", error))?;
    // Never outlive the deploy token itself.
    let expires_at = match token.expires_at {
        Some(token_expiry) => token_expiry.min(now + lifetime),
        None => now + lifetime,
    };
    store
        .create_refresh_token(
            token.id,
            service_name,
            &secret.digest(),
            expires_at,
            now,
            settings.tokens.refresh_tokens_per_deploy_token,
        )
        .await?;
    Ok(secret)
}

/// How often expired refresh tokens are swept.
pub const REFRESH_TOKEN_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes the refresh tokens that expired by `now` (they can never be used again).
pub async fn sweep_expired_refresh_tokens(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let swept = store.delete_expired_refresh_tokens(now).await?;
    if swept > 0 {
        tracing::info!(swept, "deleted expired refresh tokens");
    }
    Ok(swept)
}

/// Sweeps expired refresh tokens at start and then every `every`; detached, it ends with
/// the runtime.
pub fn start_refresh_token_sweep(store: Arc<dyn Store>, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            if let Err(error) = sweep_expired_refresh_tokens(store.as_ref(), Utc::now()).await {
                tracing::error!(%error, "sweeping expired refresh tokens failed");
            }
        }
    });
}

/// The deploy token behind a refresh token, if the refresh token is known, unexpired, bound
/// to this service, and its deploy token is still active. Anything else is `Unauthorized`.
pub async fn authenticate_refresh_token(
    store: &dyn Store,
    formats: &TokenFormats,
    secret: &TokenSecret,
    service_name: &str,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    // Malformed, or another kind's: refused without a lookup.
    if !formats.may_be(secret.expose(), TokenKind::RefreshToken) {
        return Err(Error::Unauthorized);
    }
    let grant = store
        .find_refresh_token(&secret.digest())
        .await?
        .ok_or(Error::Unauthorized)?;
    if now >= grant.expires_at
        || grant.service != service_name
        || !grant.deploy_token.is_active(now)
    {
        return Err(Error::Unauthorized);
    }
    Ok(grant.deploy_token)
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("jwt", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .field("scope", &self.scope)
            .field("complete", &self.complete)
            .finish()
    }
}

/// Maps a configured service name to the service it stands for.
pub fn service_named(settings: &Settings, name: &str) -> Result<Service, Error> {
    if name == settings.registry.service {
        Ok(Service::ContainerRegistry)
    } else if name == settings.registry.virtual_service {
        Ok(Service::DependencyProxy)
    } else {
        Err(Error::UnknownService(name.to_owned()))
    }
}

pub async fn issue(
    store: &dyn Store,
    keys: &Arc<KeyRing>,
    settings: &Settings,
    token: &DeployToken,
    service_name: &str,
    scope_values: &[String],
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let service = service_named(settings, service_name)?;
    if !policy::may_use_service(service, token.scopes) {
        return Err(Error::Denied);
    }
    let parsed = parse_requested_scopes(scope_values.iter().map(String::as_str));
    for (scope, reason) in &parsed.rejected {
        tracing::debug!(scope = %scope, reason = %reason, "malformed scope dropped");
    }
    let requested_actions = requested_action_count(&parsed);
    let resolved = resolve_scopes(store, service, &token.owner, parsed.scopes).await?;
    let path = token.owner.full_path.clone();
    // The token's name never changes what it reaches (DOMAIN.md "The gitlab-deploy-token name").
    let owner = match token.owner.kind {
        NamespaceKind::Project => TokenOwner::Project(path),
        NamespaceKind::Group => TokenOwner::Group(path),
    };
    let access = TokenAccess {
        scopes: token.scopes,
        owner,
        repositories: token.restrictions.repository_patterns.clone(),
    };
    let granted = policy::authorize(service, &access, &resolved).map_err(|_| Error::Denied)?;
    let (access_entries, granted_actions) = access_claim(&granted);
    let issued_at = now.trunc_subsecs(0);
    // A JWT never outlives its deploy token: the token is invalid from its expiry on.
    let ttl = match token.expires_at {
        Some(expires_at) => (expires_at - issued_at)
            .to_std()
            .unwrap_or_default()
            .min(settings.signing.token_ttl),
        None => settings.signing.token_ttl,
    };
    let claims = RegistryClaims::new(
        &settings.signing.issuer,
        &token.username,
        service_name,
        access_entries,
        issued_at,
        ttl,
    )
    .map_err(|error| Error::internal_from("cannot build claims", error))?;
    let jwt = sign(keys, claims).await?;
    Ok(IssuedToken {
        jwt,
        expires_in: ttl.as_secs(),
        issued_at,
        scope: granted.scope_string(),
        complete: granted_actions >= requested_actions,
    })
}

/// Every action asked for, a malformed scope counting as one: a response grants them all or
/// is partial.
fn requested_action_count(parsed: &ParsedScopes) -> usize {
    parsed
        .scopes
        .iter()
        .map(|scope| scope.actions.len())
        .sum::<usize>()
        + parsed.rejected.len()
}

/// The JWT `access` claim for what the policy granted, and how many actions it holds.
fn access_claim(granted: &Granted) -> (Vec<AccessEntry>, usize) {
    let entries: Vec<AccessEntry> = granted
        .entries()
        .iter()
        .map(|entry| AccessEntry {
            resource_type: entry.resource_type().to_owned(),
            name: entry.name().to_owned(),
            actions: entry.actions().iter().map(|a| (*a).to_owned()).collect(),
        })
        .collect();
    let actions = entries.iter().map(|entry| entry.actions.len()).sum();
    (entries, actions)
}

/// ES256 costs ~20 µs and runs inline; RSA costs ~0.5 ms, which is too long to hold an
/// executor thread, so it goes to the signing pool.
pub async fn sign<C: serde::Serialize + Send + 'static>(
    keys: &Arc<KeyRing>,
    claims: C,
) -> Result<String, Error> {
    let signing_error = |error: SignError| Error::internal_from("signing failed", error);
    if keys.signing_key().algorithm() == KeyAlgorithm::Es256 {
        return keys.signing_key().sign_jwt(&claims).map_err(signing_error);
    }
    let keys = Arc::clone(keys);
    signing_pool::run(move || keys.signing_key().sign_jwt(&claims))
        .await
        .map_err(|error| Error::internal_from("the signing task failed", error))?
        .map_err(signing_error)
}

/// Resolves every repository scope to its project with one store query in all, or none for
/// a project token.
async fn resolve_scopes(
    store: &dyn Store,
    service: Service,
    owner: &crate::domain::Namespace,
    scopes: Vec<crate::access::requested_scope::RequestedScope>,
) -> Result<Vec<ResolvedScope>, Error> {
    if service != Service::ContainerRegistry {
        return Ok(scopes
            .into_iter()
            .map(|requested| ResolvedScope {
                requested,
                project: None,
            })
            .collect());
    }
    let (repositories, candidates) = repositories_and_candidates(&scopes);
    // A project token reaches only its own project, and nothing below a project can be a
    // project (namespaces nest under groups only), so no longer prefix can win over it: the
    // lookup is needed for group tokens alone.
    let existing = match owner.kind {
        NamespaceKind::Project => vec![owner.full_path.clone()],
        NamespaceKind::Group => store.existing_projects(&candidates).await?,
    };
    Ok(scopes
        .into_iter()
        .zip(repositories)
        .map(|(requested, repository)| {
            let project =
                repository.and_then(|repository| resolve_project(&repository, &existing).cloned());
            ResolvedScope { requested, project }
        })
        .collect())
}

/// A token for a caller without credentials (`docker pull` without a login): `pull` on the
/// public projects among the requested repositories, nothing else; `sub` is "". Costs one
/// store query (the public projects among all candidates) and a signature — no more than an
/// authenticated request. A request without any scope (a login) or for another service
/// needs credentials: `Unauthorized`, as before.
pub async fn issue_anonymous(
    store: &dyn Store,
    keys: &Arc<KeyRing>,
    settings: &Settings,
    service_name: &str,
    scope_values: &[String],
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let service = match service_named(settings, service_name) {
        Ok(Service::ContainerRegistry) => Service::ContainerRegistry,
        _ => return Err(Error::Unauthorized),
    };
    let parsed = parse_requested_scopes(scope_values.iter().map(String::as_str));
    if parsed.scopes.is_empty() {
        return Err(Error::Unauthorized);
    }
    let requested_actions = requested_action_count(&parsed);
    let (repositories, candidates) = repositories_and_candidates(&parsed.scopes);
    let public = store.public_projects(&candidates).await?;
    let resolved: Vec<ResolvedScope> = parsed
        .scopes
        .into_iter()
        .zip(repositories)
        .map(|(requested, repository)| ResolvedScope {
            project: repository
                .and_then(|repository| resolve_project(&repository, &public).cloned()),
            requested,
        })
        .collect();
    let granted = policy::authorize_anonymous(service, &resolved, &public);
    let (access_entries, granted_actions) = access_claim(&granted);
    let issued_at = now.trunc_subsecs(0);
    let claims = RegistryClaims::new(
        &settings.signing.issuer,
        "",
        service_name,
        access_entries,
        issued_at,
        settings.signing.token_ttl,
    )
    .map_err(|error| Error::internal_from("cannot build claims", error))?;
    let jwt = sign(keys, claims).await?;
    Ok(IssuedToken {
        jwt,
        expires_in: settings.signing.token_ttl.as_secs(),
        issued_at,
        scope: granted.scope_string(),
        complete: granted_actions >= requested_actions,
    })
}

/// Each scope's repository (if it names a valid one) and, for all of them together, the
/// distinct paths that could be their project: one store query covers every scope.
fn repositories_and_candidates(
    scopes: &[RequestedScope],
) -> (Vec<Option<RepositoryPath>>, Vec<NamespacePath>) {
    let repositories: Vec<Option<RepositoryPath>> = scopes
        .iter()
        .map(|scope| {
            (scope.resource_type == "repository")
                .then(|| RepositoryPath::parse(&scope.name).ok())
                .flatten()
        })
        .collect();
    let mut candidates: Vec<_> = repositories
        .iter()
        .flatten()
        .flat_map(RepositoryPath::candidate_project_paths)
        .collect();
    candidates.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    candidates.dedup();
    (repositories, candidates)
}
