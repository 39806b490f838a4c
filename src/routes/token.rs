//! `GET /jwt/auth` (docker token protocol, Basic credentials) and `POST /jwt/auth` (OAuth2
//! password and refresh_token grants, used by containerd and by docker with an identity
//! token) — PROTOCOL.md §3–§4. Both exist because clients pick one or the other; they share
//! everything after parsing.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{SecondsFormat, Utc};

use crate::access::policy::Service;
use crate::auth::{authenticate_deploy_token, BasicCredentials};
use crate::client_address;
use crate::domain::{DeployToken, TokenSecret};
use crate::error::Error;
use crate::metrics::{LoginRoute, ServiceLabel, TokenOutcome};
use crate::routes::observe::identify;
use crate::service::login_guard::Attempt;
use crate::service::registry_token::{self, IssuedToken};
use crate::service::usage::TokenUse;
use crate::service::workload_identity::{self, FederatedLogin};
use crate::state::AppState;

/// The query or form as ordered pairs: `scope` repeats, so a map will not do.
pub fn pairs(encoded: &str) -> Result<Vec<(String, String)>, Error> {
    serde_urlencoded::from_str(encoded).map_err(|_| {
        Error::InvalidRequest("the request parameters are not valid URL encoding".into())
    })
}

/// The OAuth2 form body (`application/x-www-form-urlencoded`) as ordered pairs.
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, Error> {
    std::str::from_utf8(body)
        .map_err(|_| Error::InvalidRequest("the form is not UTF-8".into()))
        .and_then(pairs)
}

pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

pub(crate) fn required<'a>(
    pairs: &'a [(String, String)],
    key: &'static str,
) -> Result<&'a str, Error> {
    first(pairs, key)
        .filter(|value| !value.is_empty())
        .ok_or(Error::MissingParameter(key))
}

fn rfc3339(issued: &IssuedToken) -> String {
    issued.issued_at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The answer to a token request, serialized straight from the issued token (no JSON tree
/// built per request).
#[derive(serde::Serialize)]
struct TokenAnswer<'a> {
    token: &'a str,
    access_token: &'a str,
    /// The OAuth2 form's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    expires_in: u64,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

impl<'a> TokenAnswer<'a> {
    fn new(issued: &'a IssuedToken) -> TokenAnswer<'a> {
        TokenAnswer {
            token: &issued.jwt,
            access_token: &issued.jwt,
            scope: None,
            expires_in: issued.expires_in,
            issued_at: rfc3339(issued),
            refresh_token: None,
        }
    }
}

/// The service label for metrics: a configured name or `unknown`, never caller text.
fn service_label(state: &AppState, service: &str) -> ServiceLabel {
    match registry_token::service_named(&state.settings, service) {
        Ok(Service::ContainerRegistry) => ServiceLabel::Registry,
        Ok(Service::DependencyProxy) => ServiceLabel::VirtualRegistry,
        Err(_) => ServiceLabel::Unknown,
    }
}

fn record_outcome(state: &AppState, service: &str, result: &Result<(HttpResponse, bool), Error>) {
    let outcome = match result {
        Ok((_, true)) => TokenOutcome::Issued,
        Ok((_, false)) => TokenOutcome::Partial,
        Err(Error::Unauthorized) => TokenOutcome::Unauthorized,
        Err(Error::Denied) => TokenOutcome::Denied,
        Err(Error::TooManyRequests { .. }) => TokenOutcome::Throttled,
        Err(_) => TokenOutcome::Error,
    };
    state
        .metrics
        .record_token_request(service_label(state, service), outcome);
}

pub async fn get_token(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let params = pairs(request.query_string());
    let result = match &params {
        // One view of the database for the whole request (the token cache checks once).
        Ok(params) => crate::store::one_view(get_token_inner(&request, &state, params)).await,
        Err(error) => Err(Error::InvalidRequest(error.to_string())),
    };
    finish(&state, params.as_deref(), result)
}

/// The OAuth2 form carries the credentials, so its body is read before anything is checked:
/// bounded by `token_body_limit` and `request_body_timeout`.
pub async fn post_token(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let limits = &state.settings.limits;
    let body = crate::routes::body::read_limited(
        request.headers(),
        payload,
        limits.token_body_limit,
        limits.request_body_timeout,
    )
    .await;
    let params = body.and_then(|body| form_pairs(&body));
    let params = match params {
        Ok(params) => params,
        Err(error) => return finish(&state, Ok(&[]), Err(error)),
    };
    let result = crate::store::one_view(post_token_inner(&request, &state, &params)).await;
    finish(&state, Ok(&params), result)
}

/// Counts the outcome under the requested service, then answers.
fn finish(
    state: &AppState,
    params: Result<&[(String, String)], &Error>,
    result: Result<(HttpResponse, bool), Error>,
) -> Result<HttpResponse, Error> {
    let service = params
        .ok()
        .and_then(|params| first(params, "service"))
        .unwrap_or_default();
    record_outcome(state, service, &result);
    result.map(|(response, _)| response)
}

/// The response, and whether everything requested was granted.
async fn get_token_inner(
    request: &HttpRequest,
    state: &AppState,
    params: &[(String, String)],
) -> Result<(HttpResponse, bool), Error> {
    let service = first(params, "service").unwrap_or_default();
    let now = Utc::now();
    let Some(header_value) = request.headers().get(header::AUTHORIZATION) else {
        return anonymous_token(request, state, service, &all(params, "scope"), now).await;
    };
    let credentials = header_value
        .to_str()
        .ok()
        .and_then(BasicCredentials::from_header)
        .ok_or(Error::Unauthorized)?;
    let attempt = Attempt::new(
        client_address::text_of_request(request),
        Some(&credentials.username),
        LoginRoute::Registry,
        &state.token_formats,
    );
    let login = state
        .logins
        .check_secret(
            &attempt,
            admitted(
                request,
                state,
                LoginRoute::Registry,
                authenticate_basic(state, &credentials.username, &credentials.secret, now),
                now,
            ),
        )
        .await?;
    let issued = issue(state, request, &login, service, &all(params, "scope"), now).await?;
    let refresh = match first(params, "offline_token") {
        Some("true") => Some(create_refresh(state, request, &login, service, now).await?),
        _ => None,
    };
    let answer = TokenAnswer {
        refresh_token: refresh.as_ref().map(TokenSecret::expose),
        ..TokenAnswer::new(&issued)
    };
    Ok((HttpResponse::Ok().json(answer), issued.complete))
}

/// No `Authorization` header at all: pulls of public projects (PROTOCOL.md §6, `sub` "").
async fn anonymous_token(
    request: &HttpRequest,
    state: &AppState,
    service: &str,
    scopes: &[String],
    now: chrono::DateTime<Utc>,
) -> Result<(HttpResponse, bool), Error> {
    let issued = registry_token::issue_anonymous(
        state.store.as_ref(),
        &state.keys.current(),
        &state.settings,
        service,
        scopes,
        now,
    )
    .await?;
    tracing::info!(service, granted = %issued.scope, ip = ?client_address::text_of_request(request), "anonymous registry token issued");
    Ok((
        HttpResponse::Ok().json(TokenAnswer::new(&issued)),
        issued.complete,
    ))
}

async fn post_token_inner(
    request: &HttpRequest,
    state: &AppState,
    params: &[(String, String)],
) -> Result<(HttpResponse, bool), Error> {
    let service = first(params, "service").unwrap_or_default();
    let now = Utc::now();
    // Which deploy token, and the refresh token to hand back (if any).
    let (login, refresh) = match required(params, "grant_type")? {
        "password" => {
            let username = required(params, "username")?;
            let secret = TokenSecret::from_presented(required(params, "password")?.to_owned());
            let attempt = Attempt::new(
                client_address::text_of_request(request),
                Some(username),
                LoginRoute::Registry,
                &state.token_formats,
            );
            let login = state
                .logins
                .check_secret(
                    &attempt,
                    admitted(
                        request,
                        state,
                        LoginRoute::Registry,
                        authenticate_basic(state, username, &secret, now),
                        now,
                    ),
                )
                .await?;
            (login, None)
        }
        "refresh_token" => {
            let secret = TokenSecret::from_presented(required(params, "refresh_token")?.to_owned());
            let attempt = Attempt::new(
                client_address::text_of_request(request),
                None,
                LoginRoute::RefreshToken,
                &state.token_formats,
            );
            let login = state
                .logins
                .check_secret(
                    &attempt,
                    admitted(
                        request,
                        state,
                        LoginRoute::RefreshToken,
                        authenticate_refresh(state, &secret, service, now),
                        now,
                    ),
                )
                .await?;
            // The client keeps using the same refresh token.
            (login, Some(secret))
        }
        other => return Err(Error::UnsupportedGrantType(other.to_owned())),
    };
    let issued = issue(state, request, &login, service, &all(params, "scope"), now).await?;
    // Only once the service was accepted: a refresh token is bound to a real service.
    let refresh = match refresh {
        Some(kept) => Some(kept),
        None if first(params, "access_type") == Some("offline") => {
            Some(create_refresh(state, request, &login, service, now).await?)
        }
        None => None,
    };
    let answer = TokenAnswer {
        scope: Some(&issued.scope),
        refresh_token: refresh.as_ref().map(TokenSecret::expose),
        ..TokenAnswer::new(&issued)
    };
    Ok((HttpResponse::Ok().json(answer), issued.complete))
}

/// A login, refused (as a wrong secret, by the login guard) when it comes from outside the
/// token's or its groups' address allow-lists; refresh tokens inherit their deploy token's.
async fn admitted(
    request: &HttpRequest,
    state: &AppState,
    route: LoginRoute,
    login: impl std::future::Future<Output = Result<Login, Error>>,
    now: chrono::DateTime<Utc>,
) -> Result<Login, Error> {
    let login = login.await?;
    let token = match &login {
        Login::DeployToken(token) => token,
        Login::Workload(login) => &login.credential,
    };
    crate::service::restrictions::admit_address(
        token,
        client_address::of_request(request),
        route,
        &state.usage,
        &state.metrics,
        now,
    )?;
    Ok(login)
}

/// Who a Basic login (or the password grant) is: a deploy token, or a CI job or pod whose
/// OIDC token a workload identity policy accepts (`service::workload_identity`).
// The deploy token stays inline: it is every registry login's path, and a box would cost an
// allocation per request; the rare workload login is boxed.
#[allow(clippy::large_enum_variant)]
enum Login {
    DeployToken(DeployToken),
    Workload(Box<FederatedLogin>),
}

/// A password shaped like a compact JWS with a policy's username goes down the federation
/// path, a secret minted by the token exchange to its policy; everything else is a deploy
/// token.
async fn authenticate_basic(
    state: &AppState,
    username: &str,
    secret: &TokenSecret,
    now: chrono::DateTime<Utc>,
) -> Result<Login, Error> {
    if workload_identity::is_federated(username, secret.expose()) {
        let login = workload_identity::authenticate(
            state.store.as_ref(),
            &state.oidc,
            &state.metrics,
            username,
            secret.expose(),
            now,
        )
        .await?;
        return Ok(Login::Workload(Box::new(login)));
    }
    if workload_identity::is_exchanged_credential(&state.token_formats, secret) {
        let login = workload_identity::authenticate_exchanged(
            state.store.as_ref(),
            &state.token_formats,
            Some(username),
            secret,
            now,
        )
        .await?;
        return Ok(Login::Workload(Box::new(login)));
    }
    authenticate_deploy_token(
        state.store.as_ref(),
        &state.token_formats,
        username,
        secret,
        now,
    )
    .await
    .map(Login::DeployToken)
}

/// A refresh token for the login: bound to the deploy token and service, or, for a workload,
/// a credential of its policy capped at the policy's `max_ttl`.
async fn create_refresh(
    state: &AppState,
    request: &HttpRequest,
    login: &Login,
    service: &str,
    now: chrono::DateTime<Utc>,
) -> Result<TokenSecret, Error> {
    match login {
        Login::DeployToken(token) => {
            registry_token::create_refresh_token(
                state.store.as_ref(),
                &state.settings,
                token,
                service,
                now,
            )
            .await
        }
        Login::Workload(login) => {
            workload_identity::create_refresh_credential(
                state.store.as_ref(),
                &state.token_formats,
                login,
                client_address::text_of_request(request),
                now,
            )
            .await
        }
    }
}

/// The refresh_token grant: a deploy token's refresh token, or a workload's refresh
/// credential.
async fn authenticate_refresh(
    state: &AppState,
    secret: &TokenSecret,
    service: &str,
    now: chrono::DateTime<Utc>,
) -> Result<Login, Error> {
    if workload_identity::is_exchanged_credential(&state.token_formats, secret) {
        let login = workload_identity::authenticate_exchanged(
            state.store.as_ref(),
            &state.token_formats,
            None,
            secret,
            now,
        )
        .await?;
        return Ok(Login::Workload(Box::new(login)));
    }
    registry_token::authenticate_refresh_token(
        state.store.as_ref(),
        &state.token_formats,
        secret,
        service,
        now,
    )
    .await
    .map(Login::DeployToken)
}

/// Credentials were checked by the caller before the service is looked at, so an unknown
/// service tells nothing to a caller without valid credentials.
async fn issue(
    state: &AppState,
    request: &HttpRequest,
    login: &Login,
    service: &str,
    scopes: &[String],
    // The instant the credentials were checked at: one clock read per request.
    now: chrono::DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let token = match login {
        Login::DeployToken(token) => token,
        Login::Workload(login) => &login.credential,
    };
    let token_id = matches!(login, Login::DeployToken(_)).then_some(token.id);
    identify(request, token_id, &token.username);
    let issued = registry_token::issue(
        state.store.as_ref(),
        &state.keys.current(),
        &state.settings,
        token,
        service,
        scopes,
        now,
    )
    .await?;
    tracing::info!(token_id, username = %token.username, service, granted = %issued.scope, "registry token issued");
    if let Login::Workload(login) = login {
        workload_identity::record_login(
            &state.usage,
            login,
            client_address::text_of_request(request),
            service,
            &issued.scope,
            now,
        );
        return Ok(issued);
    }
    state.usage.record(TokenUse {
        deploy_token_id: token.id,
        namespace_id: token.owner.id,
        username: token.username.clone(),
        at: now,
        ip_address: client_address::text_of_request(request),
        service: service.to_owned(),
        granted: issued.scope.clone(),
        // With the registry's notifications on, "last used" is its last real action.
        marks_last_used: state.settings.registry.events_secret.is_none()
            || service != state.settings.registry.service,
    });
    Ok(issued)
}
