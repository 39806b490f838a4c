//! Workload identity federation: managing the trust policies of a project or group (the
//! same roles as deploy tokens, for the CLI and the API alike), and the federated login, in
//! which an OIDC token of a trusted issuer stands in for a deploy token's secret.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::caller::Caller;
use super::deploy_tokens::authorize;
use crate::access::permissions::TokenOperation;
use crate::config::oidc::{IssuerKind, OidcIssuer};
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::workload_identity::{
    conditions_match, parse_workload_username, NewWorkloadIdentity, WorkloadIdentity,
    WorkloadIdentityRequest,
};
use crate::domain::{
    ActorKind, AuditAction, AuditEvent, DeployToken, DeployTokenScope, Namespace, ScopeSet,
    TokenSecret, ValidationError,
};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::oidc::{Rejection, VerifiedToken, Verifier};
use crate::store::workload::NewWorkloadCredential;
use crate::store::Store;

/// A policy just created, and what its author should reconsider.
#[derive(Debug)]
pub struct CreatedWorkloadIdentity {
    pub policy: WorkloadIdentity,
    pub warnings: Vec<String>,
}

fn audit(
    caller: &Caller,
    action: AuditAction,
    policy: &WorkloadIdentity,
    now: DateTime<Utc>,
) -> AuditEvent {
    AuditEvent {
        created_at: now,
        actor_kind: caller.actor_kind(),
        actor: caller.actor_name().to_owned(),
        action,
        deploy_token_id: None,
        namespace_id: Some(policy.owner.id),
        ip_address: caller.ip_address.clone(),
        details: json!({
            "policy_id": policy.id,
            "username": policy.username(),
            "name": policy.name,
            "issuer": policy.issuer,
            "audience": policy.audience,
            "conditions": policy.conditions,
            "scopes": policy.scopes.names(),
            "max_ttl": policy.max_ttl_seconds,
        }),
    }
}

/// Validation happens after the permission check, so that a caller without the role learns
/// nothing from the messages.
#[tracing::instrument(skip_all)]
pub async fn create(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    request: WorkloadIdentityRequest,
    issuers: &[OidcIssuer],
    now: DateTime<Utc>,
) -> Result<CreatedWorkloadIdentity, Error> {
    authorize(store, caller, TokenOperation::Create, owner).await?;
    let trust = issuers
        .iter()
        .find(|issuer| issuer.url == request.issuer.trim())
        .map(OidcIssuer::trust);
    let new_policy = NewWorkloadIdentity::validate(request, owner.kind, trust)?;
    let record =
        |policy: &WorkloadIdentity| audit(caller, AuditAction::WorkloadIdentityCreate, policy, now);
    let policy = store
        .create_workload_identity(owner, &new_policy, caller.actor_name(), now, &record)
        .await?;
    tracing::info!(
        policy_id = policy.id,
        owner = owner.full_path.as_str(),
        issuer = %policy.issuer,
        scopes = ?policy.scopes.names(),
        actor = caller.actor_name(),
        "workload identity created"
    );
    for warning in &new_policy.warnings {
        tracing::warn!(policy_id = policy.id, "{warning}");
    }
    Ok(CreatedWorkloadIdentity {
        policy,
        warnings: new_policy.warnings,
    })
}

pub async fn list(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
) -> Result<Vec<WorkloadIdentity>, Error> {
    authorize(store, caller, TokenOperation::List, owner).await?;
    Ok(store.list_workload_identities(owner).await?)
}

async fn owned_policy(
    store: &dyn Store,
    owner: &Namespace,
    id: i64,
) -> Result<WorkloadIdentity, Error> {
    match store.find_workload_identity(id).await? {
        Some(policy) if policy.owner.id == owner.id => Ok(policy),
        _ => Err(Error::not_found("Workload identity", id)),
    }
}

pub async fn get(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    id: i64,
) -> Result<WorkloadIdentity, Error> {
    authorize(store, caller, TokenOperation::Read, owner).await?;
    owned_policy(store, owner, id).await
}

/// One policy with its most recent federated logins (newest first).
#[tracing::instrument(skip_all)]
pub async fn recent_uses(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    id: i64,
    limit: usize,
) -> Result<(WorkloadIdentity, Vec<AuditEvent>), Error> {
    let policy = get(store, caller, owner, id).await?;
    let uses = store.recent_workload_logins(&policy, limit).await?;
    Ok((policy, uses))
}

/// Deleting a policy ends its logins at once: registry JWTs already issued run out within
/// `token_ttl`.
#[tracing::instrument(skip_all)]
pub async fn delete(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    authorize(store, caller, TokenOperation::Revoke, owner).await?;
    let policy = owned_policy(store, owner, id).await?;
    let record = audit(caller, AuditAction::WorkloadIdentityDelete, &policy, now);
    if !store.delete_workload_identity(id, &record).await? {
        return Err(Error::not_found("Workload identity", id));
    }
    tracing::info!(
        policy_id = id,
        actor = caller.actor_name(),
        "workload identity deleted"
    );
    Ok(())
}

/// An accepted federated login.
#[derive(Debug, Clone)]
pub struct FederatedLogin {
    pub policy: WorkloadIdentity,
    /// The policy as the registry-token rules see a credential: its owner, scopes and
    /// username, expiring with the OIDC token or the policy's `max_ttl`, whichever is first.
    /// Its id is 0: it is no stored deploy token.
    pub credential: DeployToken,
    /// Who the job is, for the audit trail and the log (never the token).
    pub details: Value,
}

/// Whether a Basic login is a federated one: a policy's username and a password shaped like
/// a compact JWS. Anything else goes to the deploy-token check.
pub fn is_federated(username: &str, password: &str) -> bool {
    parse_workload_username(username).is_some() && crate::oidc::looks_like_jws(password)
}

/// The federated login: the token's header, issuer, signature and time claims
/// (`oidc::Verifier`), then the policy named by the username: its issuer, audience and
/// conditions. Every refusal is `Unauthorized` (counted by the brute-force guard), with
/// the reason in the log and the metric only; an unreachable issuer is a 503.
pub async fn authenticate(
    store: &dyn Store,
    verifier: &Verifier,
    metrics: &Metrics,
    username: &str,
    oidc_token: &str,
    now: DateTime<Utc>,
) -> Result<FederatedLogin, Error> {
    let result = check(store, verifier, username, oidc_token, now).await;
    settle(
        metrics,
        result,
        "accepted",
        |login| &login.policy.issuer,
        username,
    )
}

/// Why a federated login or an exchange failed.
enum Failure {
    /// The token, or its match with a policy, was refused: (the configured issuer, why).
    Refused(Option<String>, Rejection),
    Other(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Other(error)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        Failure::Other(error.into())
    }
}

/// Counts and logs the outcome (by issuer), then answers: every refusal is `Unauthorized`
/// but an unreachable issuer, which is a 503.
fn settle<T>(
    metrics: &Metrics,
    result: Result<T, Failure>,
    success: &'static str,
    issuer_of: impl Fn(&T) -> &str,
    who: &str,
) -> Result<T, Error> {
    match &result {
        Ok(value) => metrics.record_workload_login(issuer_of(value), success),
        Err(Failure::Refused(issuer, rejection)) => {
            let label = issuer.as_deref().unwrap_or("unknown");
            metrics.record_workload_login(label, rejection.as_str());
            tracing::info!(who, issuer = label, reason = %rejection, "OIDC token refused");
        }
        Err(Failure::Other(_)) => {}
    }
    result.map_err(|failure| match failure {
        Failure::Refused(_, Rejection::IssuerUnavailable) => Error::IssuerUnavailable,
        Failure::Refused(..) => Error::Unauthorized,
        Failure::Other(error) => error,
    })
}

/// Steps 1-4 (`oidc::Verifier`); a refusal names the configured issuer when the token did.
async fn verify(
    verifier: &Verifier,
    oidc_token: &str,
    now: DateTime<Utc>,
) -> Result<Arc<VerifiedToken>, Failure> {
    verifier.verify(oidc_token, now).await.map_err(|rejection| {
        let issuer = crate::oidc::jws::UnverifiedToken::parse(oidc_token)
            .ok()
            .and_then(|token| {
                verifier
                    .issuer(&token.issuer)
                    .map(|issuer| issuer.url.clone())
            });
        Failure::Refused(issuer, rejection)
    })
}

async fn check(
    store: &dyn Store,
    verifier: &Verifier,
    username: &str,
    oidc_token: &str,
    now: DateTime<Utc>,
) -> Result<FederatedLogin, Failure> {
    let verified = verify(verifier, oidc_token, now).await?;
    let issuer = Some(verified.issuer.url.clone());
    let refuse = |rejection| Failure::Refused(issuer.clone(), rejection);
    let policy_id = parse_workload_username(username).ok_or_else(|| refuse(Rejection::NoPolicy))?;
    let policy = store
        .find_workload_identity(policy_id)
        .await?
        .ok_or_else(|| refuse(Rejection::NoPolicy))?;
    accepts(&policy, &verified).map_err(refuse)?;
    let expires_at = verified
        .expires_at
        .min(now + chrono::Duration::seconds(i64::from(policy.max_ttl_seconds)));
    let credential = credential_of(&policy, policy.scopes, expires_at);
    let details = job_details(&verified, &policy);
    Ok(FederatedLogin {
        policy,
        credential,
        details,
    })
}

/// Steps 5 and 6 of the verification order, for one policy: its issuer, audience and
/// conditions.
fn accepts(policy: &WorkloadIdentity, verified: &VerifiedToken) -> Result<(), Rejection> {
    if policy.issuer != verified.issuer.url {
        return Err(Rejection::NoPolicy);
    }
    if !verified.claims.has_audience(&policy.audience) {
        return Err(Rejection::Audience);
    }
    if !conditions_match(&policy.conditions, verified.claims.as_value()) {
        return Err(Rejection::Conditions);
    }
    Ok(())
}

/// The policy as the registry-token and forward-auth rules see a credential. Its id is 0: it
/// is no stored deploy token.
fn credential_of(
    policy: &WorkloadIdentity,
    scopes: ScopeSet,
    expires_at: DateTime<Utc>,
) -> DeployToken {
    DeployToken {
        id: 0,
        name: policy.name.clone(),
        username: policy.username(),
        owner: policy.owner.clone(),
        scopes,
        expires_at: Some(expires_at),
        revoked: false,
        created_at: policy.created_at,
        last_used_at: None,
        restrictions: std::sync::Arc::new(policy.restrictions.clone()),
        rotation: Default::default(),
    }
}

/// The job's identity from its claims, with a link to it where the platform has one.
fn job_details(token: &VerifiedToken, policy: &WorkloadIdentity) -> Value {
    let claims = &token.claims;
    let text = |name: &str| claims.text(name).map(str::to_owned);
    let claim = |name: &str| {
        claims
            .claims
            .get(name)
            .filter(|value| value.is_string() || value.is_number())
            .map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
    };
    let mut details = json!({
        "policy_id": policy.id,
        "username": policy.username(),
        "issuer": token.issuer.url,
        "subject": text("sub"),
        "jti": text("jti"),
        "oidc_expires_at": token.expires_at,
    });
    let job = match token.issuer.kind {
        IssuerKind::Gitlab => {
            let link = match (text("project_path"), claim("job_id")) {
                (Some(project), Some(job)) => Some(format!(
                    "{}/{project}/-/jobs/{job}",
                    token.issuer.url.trim_end_matches('/')
                )),
                _ => None,
            };
            json!({
                "project_path": text("project_path"),
                "ref": text("ref"),
                "sha": text("sha"),
                "job_id": claim("job_id"),
                "pipeline_id": claim("pipeline_id"),
                "link": link,
            })
        }
        IssuerKind::Github => {
            let link = match (text("repository"), claim("run_id")) {
                (Some(repository), Some(run)) => Some(format!(
                    "https://github.com/{repository}/actions/runs/{run}/attempts/{}",
                    claim("run_attempt").unwrap_or_else(|| "1".into())
                )),
                _ => None,
            };
            json!({
                "repository": text("repository"),
                "ref": text("ref"),
                "sha": text("sha"),
                "run_id": claim("run_id"),
                "link": link,
            })
        }
        IssuerKind::Kubernetes => {
            let value = claims.as_value();
            let at = |path: &str| {
                crate::domain::workload_identity::claim_at(value, path)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            json!({
                "namespace": at("kubernetes.io.namespace"),
                "service_account": at("kubernetes.io.serviceaccount.name"),
                "pod": at("kubernetes.io.pod.name"),
            })
        }
        IssuerKind::Generic => json!({}),
    };
    details["job"] = job;
    details
}

/// The audit record of one federated login, batched with the token-use records
/// (`service::usage`): the login never waits for a database write, and the same job logging
/// in again and again within a second is one record with a count.
pub fn record_login(
    usage: &crate::service::usage::UsageRecorder,
    login: &FederatedLogin,
    ip_address: Option<String>,
    service: &str,
    granted: &str,
    now: DateTime<Utc>,
) {
    let mut details = login.details.clone();
    details["service"] = json!(service);
    details["granted"] = json!(granted);
    usage.audit_counted(AuditEvent {
        created_at: now,
        actor_kind: ActorKind::Workload,
        actor: login.policy.username(),
        action: AuditAction::WorkloadLogin,
        deploy_token_id: None,
        namespace_id: Some(login.policy.owner.id),
        ip_address,
        details,
    });
}

/// The audit record of a git or package request (`/-/forward-auth`) allowed to an exchanged
/// credential (`credential` as `authenticate_exchanged` made it), batched like the rest.
pub fn record_forward_use(
    usage: &crate::service::usage::UsageRecorder,
    credential: &DeployToken,
    ip_address: Option<String>,
    service: &str,
    granted: &str,
    now: DateTime<Utc>,
) {
    usage.audit_counted(AuditEvent {
        created_at: now,
        actor_kind: ActorKind::Workload,
        actor: credential.username.clone(),
        action: AuditAction::WorkloadLogin,
        deploy_token_id: None,
        namespace_id: Some(credential.owner.id),
        ip_address,
        details: json!({
            "policy_id": parse_workload_username(&credential.username),
            "username": credential.username,
            "via": "exchange",
            "service": service,
            "granted": granted,
        }),
    });
}

/// The token types accepted as `subject_token_type`.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// What an exchange asks for (RFC 8693 §2.1).
#[derive(Debug, Clone, Copy)]
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    /// A policy username; optional when exactly one policy of the issuer accepts the token.
    pub resource: Option<&'a str>,
    /// Scope names to narrow the policy's to (space- or comma-separated).
    pub scope: Option<&'a str>,
}

/// A minted credential: the only moment its secret exists in clear.
#[derive(Debug)]
pub struct Exchanged {
    pub secret: TokenSecret,
    pub policy: WorkloadIdentity,
    pub scopes: ScopeSet,
    pub expires_in: u64,
}

/// The token exchange: the OIDC token is verified as for a federated login, the policy is
/// the `resource` (or the one policy of the issuer that accepts the token), the token's `jti`
/// is recorded so that it is exchanged once only, and a credential with the policy's scopes
/// (or fewer) is minted for `max_ttl`. Refusals of the token are all `Unauthorized`
/// (`invalid_grant`); an ambiguous or malformed `resource` is `NotFound` (`invalid_target`);
/// scopes the policy lacks are a `scope` validation error (`invalid_scope`).
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    store: &dyn Store,
    verifier: &Verifier,
    metrics: &Metrics,
    formats: &TokenFormats,
    usage: &crate::service::usage::UsageRecorder,
    request: ExchangeRequest<'_>,
    ip_address: Option<String>,
    now: DateTime<Utc>,
) -> Result<Exchanged, Error> {
    let admit = |policy: &WorkloadIdentity| {
        crate::service::restrictions::admit_address(
            &credential_of(policy, policy.scopes, now),
            ip_address.as_deref().and_then(|text| text.parse().ok()),
            crate::metrics::LoginRoute::TokenExchange,
            usage,
            metrics,
            now,
        )
    };
    let result = exchange_checked(
        store,
        verifier,
        formats,
        request,
        ip_address.clone(),
        &admit,
        now,
    )
    .await;
    let who = request.resource.unwrap_or("(no resource)");
    settle(
        metrics,
        result,
        "exchanged",
        |exchanged| &exchanged.policy.issuer,
        who,
    )
}

/// `scope`, checked against what the policy grants.
fn narrowed_scopes(policy: &WorkloadIdentity, scope: Option<&str>) -> Result<ScopeSet, Error> {
    let Some(text) = scope.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(policy.scopes);
    };
    let mut scopes = ScopeSet::empty();
    for name in text.split([' ', ',']).filter(|name| !name.is_empty()) {
        match DeployTokenScope::parse(name) {
            Some(scope) if policy.scopes.contains(scope) => scopes.insert(scope),
            _ => {
                return Err(ValidationError::new(
                    "scope",
                    format!("{name:?} is not a scope the policy grants"),
                )
                .into())
            }
        }
    }
    Ok(scopes)
}

async fn exchange_checked(
    store: &dyn Store,
    verifier: &Verifier,
    formats: &TokenFormats,
    request: ExchangeRequest<'_>,
    ip_address: Option<String>,
    admit: &dyn Fn(&WorkloadIdentity) -> Result<(), Error>,
    now: DateTime<Utc>,
) -> Result<Exchanged, Failure> {
    let verified = verify(verifier, request.subject_token, now).await?;
    let issuer = Some(verified.issuer.url.clone());
    let refuse = |rejection| Failure::Refused(issuer.clone(), rejection);
    let policy = match request.resource.map(str::trim).filter(|r| !r.is_empty()) {
        Some(resource) => {
            let id = parse_workload_username(resource)
                .ok_or_else(|| Error::not_found("Workload identity", resource))?;
            let policy = store
                .find_workload_identity(id)
                .await?
                .ok_or_else(|| refuse(Rejection::NoPolicy))?;
            accepts(&policy, &verified).map_err(refuse)?;
            policy
        }
        None => {
            let mut accepting: Vec<WorkloadIdentity> = store
                .workload_identities_of_issuer(&verified.issuer.url)
                .await?
                .into_iter()
                .filter(|policy| accepts(policy, &verified).is_ok())
                .collect();
            match accepting.len() {
                0 => return Err(refuse(Rejection::NoPolicy)),
                // Read again by id: so read, it carries its groups' allow-lists.
                1 => store
                    .find_workload_identity(accepting.remove(0).id)
                    .await?
                    .ok_or_else(|| refuse(Rejection::NoPolicy))?,
                _ => {
                    return Err(Error::not_found(
                        "Workload identity",
                        "several policies accept this token: name one with resource",
                    )
                    .into())
                }
            }
        }
    };
    admit(&policy)?;
    let scopes = narrowed_scopes(&policy, request.scope)?;
    let jti = verified
        .claims
        .text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= 255)
        .ok_or_else(|| refuse(Rejection::Malformed))?
        .to_owned();
    let secret = new_credential_secret(formats)?;
    let lifetime = chrono::Duration::seconds(i64::from(policy.max_ttl_seconds));
    let expires_at = now + lifetime;
    let mut details = job_details(&verified, &policy);
    details["scopes"] = json!(scopes.names());
    details["expires_at"] = json!(expires_at);
    let record = |credential_id: i64| {
        let mut details = details.clone();
        details["credential_id"] = json!(credential_id);
        AuditEvent {
            created_at: now,
            actor_kind: ActorKind::Workload,
            actor: policy.username(),
            action: AuditAction::WorkloadExchange,
            deploy_token_id: None,
            namespace_id: Some(policy.owner.id),
            ip_address: ip_address.clone(),
            details,
        }
    };
    let digest = secret.digest();
    let stored = store
        .exchange_workload_token(
            NewWorkloadCredential {
                policy_id: policy.id,
                issuer: &verified.issuer.url,
                jti: Some(&jti),
                jti_expires_at: verified.expires_at
                    + chrono::Duration::seconds(crate::oidc::jws::LEEWAY_SECONDS),
                digest: &digest,
                scopes,
                expires_at,
                now,
            },
            &record,
        )
        .await?;
    if stored.is_none() {
        return Err(refuse(Rejection::Replayed));
    }
    tracing::info!(policy_id = policy.id, issuer = %policy.issuer, scopes = ?scopes.names(), "OIDC token exchanged");
    Ok(Exchanged {
        secret,
        scopes,
        expires_in: lifetime.num_seconds().unsigned_abs(),
        policy,
    })
}

/// A new credential's secret in the checksummed format (`token_format`), so scanners can
/// match it: `regauth-wl-`, or `<instance>wt-` under `token_instance_prefix`.
fn new_credential_secret(formats: &TokenFormats) -> Result<TokenSecret, Error> {
    formats
        .generate(TokenKind::WorkloadCredential)
        .map_err(|_| Error::internal("the system random generator failed"))
}

/// Whether a presented secret carries the prefix of the token exchange's credentials, under
/// either prefix (one minted before `token_instance_prefix` was set keeps `regauth-wl-`).
/// The prefix alone: [`authenticate_exchanged`] judges the whole text (checksum) before any
/// lookup, so no secret is judged twice on the registry's login path.
pub fn is_exchanged_credential(formats: &TokenFormats, secret: &TokenSecret) -> bool {
    formats.kind_by_prefix(secret.expose()) == Some(TokenKind::WorkloadCredential)
}

/// A credential minted by the exchange, presented with its policy's username (the registry,
/// forward-auth). Unknown, expired, of a deleted policy, or under another username: all
/// `Unauthorized`.
pub async fn authenticate_exchanged(
    store: &dyn Store,
    formats: &TokenFormats,
    username: Option<&str>,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Result<FederatedLogin, Error> {
    // A look-alike (wrong length, characters or checksum) costs no lookup.
    if !formats.may_be(secret.expose(), TokenKind::WorkloadCredential) {
        return Err(Error::Unauthorized);
    }
    let found = store
        .find_workload_credential(&secret.digest())
        .await?
        .filter(|found| now < found.expires_at)
        .filter(|found| username.is_none_or(|name| name == found.policy.username()))
        .ok_or(Error::Unauthorized)?;
    let credential = credential_of(&found.policy, found.scopes, found.expires_at);
    let details = json!({
        "policy_id": found.policy.id,
        "username": found.policy.username(),
        "issuer": found.policy.issuer,
        "credential_id": found.id,
        "via": "exchange",
    });
    Ok(FederatedLogin {
        policy: found.policy,
        credential,
        details,
    })
}

/// How often expired exchanged credentials and `jti`s are swept.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Sweeps expired exchanged credentials and `jti`s at start and then every `every`.
pub fn start_sweep(store: Arc<dyn Store>, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            match store.delete_expired_workload_credentials(Utc::now()).await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "deleted expired workload credentials"),
                Err(error) => tracing::error!(%error, "sweeping workload credentials failed"),
            }
        }
    });
}

/// `offline_token` / `access_type=offline` on a federated login: a refresh token that is a
/// credential of the policy, valid for the policy's `max_ttl` from now (not bounded by the
/// OIDC token's `exp`, so that a push outlives a 5-minute job token), deleted with the
/// policy. docker keeps it as its identity token and sends it in the refresh_token grant.
#[tracing::instrument(skip_all)]
pub async fn create_refresh_credential(
    store: &dyn Store,
    formats: &TokenFormats,
    login: &FederatedLogin,
    ip_address: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenSecret, Error> {
    let policy = &login.policy;
    let secret = new_credential_secret(formats)?;
    let expires_at = now + chrono::Duration::seconds(i64::from(policy.max_ttl_seconds));
    let mut details = login.details.clone();
    details["via"] = json!("offline_token");
    details["expires_at"] = json!(expires_at);
    let record = |credential_id: i64| {
        let mut details = details.clone();
        details["credential_id"] = json!(credential_id);
        AuditEvent {
            created_at: now,
            actor_kind: ActorKind::Workload,
            actor: policy.username(),
            action: AuditAction::WorkloadExchange,
            deploy_token_id: None,
            namespace_id: Some(policy.owner.id),
            ip_address: ip_address.clone(),
            details,
        }
    };
    let digest = secret.digest();
    store
        .exchange_workload_token(
            NewWorkloadCredential {
                policy_id: policy.id,
                issuer: &policy.issuer,
                jti: None,
                jti_expires_at: expires_at,
                digest: &digest,
                scopes: login.credential.scopes,
                expires_at,
                now,
            },
            &record,
        )
        .await?;
    Ok(secret)
}
