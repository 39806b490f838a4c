//! `/-/forward-auth`: the sub-request a reverse proxy sends before a git or package request
//! (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`). It answers 200
//! (let it through), 401 with a Basic challenge (the proxy passes it on, and git or curl retry
//! with credentials) or 403 — the only answers nginx's `auth_request` understands.
//!
//! The original URI comes from the configured headers (`X-Original-URI`, `X-Forwarded-Uri`),
//! the method from `X-Original-Method` / `X-Forwarded-Method`. Both are required: nginx's
//! `auth_request` sub-request is a GET whatever the original method, so deciding on the
//! sub-request's own method let anonymous callers PUT and DELETE packages of public projects.
//! A request without them is a proxy configuration error: refused (403) and logged loudly, once
//! per process. Headers that disagree are refused: the proxy sets one, the client may have
//! sent another.
//!
//! An LFS batch request names its operation in its body; a proxy that passes the body on
//! (Traefik's `forwardBody`) lets a download through with read access. The body is read only
//! after the credentials were checked, bounded like every body; without it, a batch request
//! needs write access.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use crate::access::forward::{is_lfs_batch, LfsBatchOperation};
use crate::access::policy::Verdict;
use crate::auth::BasicCredentials;
use crate::client_address;
use crate::domain::TokenSecret;
use crate::error::Error;
use crate::metrics::LoginRoute;
use crate::routes::observe::{bounded_escaped, identify};
use crate::service::forward_auth::{self, Presented};
use crate::service::login_guard::Attempt;
use crate::service::usage::TokenUse;
use crate::state::AppState;

/// The one value the configured headers carry. `Err` when they carry different values: a
/// proxy sets only the header it knows and passes the client's other headers through, so a
/// client could otherwise send `X-Original-URI` to a Traefik (which sets `X-Forwarded-Uri`) and
/// have regauth decide on a path other than the one served.
fn sole_header<'a>(request: &'a HttpRequest, names: &[String]) -> Result<Option<&'a str>, ()> {
    let mut found: Option<&str> = None;
    for name in names {
        for value in request.headers().get_all(name.as_str()) {
            let value = value.to_str().map_err(|_| ())?.trim();
            if value.is_empty() {
                continue;
            }
            match found {
                Some(seen) if seen != value => return Err(()),
                _ => found = Some(value),
            }
        }
    }
    Ok(found)
}

/// Basic credentials, else GitLab's `Deploy-Token` header, else none. A malformed
/// `Authorization` header counts as bad credentials, not as none.
fn presented(request: &HttpRequest) -> Result<Presented, Error> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let credentials = value
            .to_str()
            .ok()
            .and_then(BasicCredentials::from_header)
            .ok_or(Error::Unauthorized)?;
        return Ok(Presented::Basic {
            username: credentials.username,
            secret: credentials.secret,
        });
    }
    if let Some(value) = request.headers().get("Deploy-Token") {
        let secret = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or(Error::Unauthorized)?;
        return Ok(Presented::DeployTokenHeader(TokenSecret::from_presented(
            secret.to_owned(),
        )));
    }
    Ok(Presented::None)
}

/// Logs a proxy configuration error loudly the first time, quietly after (every request of a
/// misconfigured proxy has it).
fn configuration_error(logged: &AtomicBool, header_names: &[String], what: &str) {
    if logged.swap(true, Ordering::Relaxed) {
        tracing::debug!(
            what,
            "forward-auth request refused: proxy configuration error"
        );
    } else {
        tracing::error!(
            headers = ?header_names,
            "forward-auth request without the original {what}: every such request is refused \
             (403); set one of these headers in the proxy (nginx: proxy_set_header \
             X-Original-Method $request_method; and X-Original-URI $request_uri;)"
        );
    }
}

static MISSING_URI_LOGGED: AtomicBool = AtomicBool::new(false);
static MISSING_METHOD_LOGGED: AtomicBool = AtomicBool::new(false);

/// The operation an LFS batch request's body names, read (bounded, with the body deadline)
/// only when the proxy passed a body on.
async fn lfs_batch_operation(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Option<LfsBatchOperation>, Error> {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|length| length.trim() != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return Ok(None);
    }
    let body = crate::routes::body::read_api_body(request, payload, state).await?;
    Ok(LfsBatchOperation::from_body(&body))
}

pub async fn forward_auth(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let settings = &state.settings;
    let (Ok(uri), Ok(method)) = (
        sole_header(&request, &settings.forward_auth.uri_headers),
        sole_header(&request, &settings.forward_auth.method_headers),
    ) else {
        tracing::warn!(
            "forward-auth request with conflicting original URI or method headers refused"
        );
        return Err(Error::Denied);
    };
    let Some(uri) = uri else {
        configuration_error(
            &MISSING_URI_LOGGED,
            &settings.forward_auth.uri_headers,
            "URI",
        );
        return Err(Error::Denied);
    };
    let Some(method) = method else {
        configuration_error(
            &MISSING_METHOD_LOGGED,
            &settings.forward_auth.method_headers,
            "method",
        );
        return Err(Error::Denied);
    };
    let now = Utc::now();
    let authenticated = match presented(&request) {
        Ok(presented) => {
            // Failed credentials count toward the brute-force limits like on /jwt/auth.
            let attempt = match &presented {
                forward_auth::Presented::None => None,
                forward_auth::Presented::Basic { username, .. } => Some(Attempt::new(
                    client_address::text_of_request(&request),
                    Some(username),
                    LoginRoute::ForwardAuth,
                    &state.token_formats,
                )),
                forward_auth::Presented::DeployTokenHeader(_) => Some(Attempt::new(
                    client_address::text_of_request(&request),
                    None,
                    LoginRoute::ForwardAuth,
                    &state.token_formats,
                )),
            };
            let authenticate = async {
                let token = forward_auth::authenticate(
                    state.store.as_ref(),
                    &state.token_formats,
                    presented,
                    now,
                )
                .await?;
                if let Some(token) = &token {
                    crate::service::restrictions::admit_address(
                        token,
                        client_address::of_request(&request),
                        LoginRoute::ForwardAuth,
                        &state.usage,
                        &state.metrics,
                        now,
                    )?;
                }
                Ok(token)
            };
            match attempt {
                Some(attempt) => state.logins.check_secret(&attempt, authenticate).await,
                None => authenticate.await,
            }
        }
        Err(error) => Err(error),
    };
    let decision = match authenticated {
        Ok(token) => {
            let lfs = if is_lfs_batch(method, uri) {
                lfs_batch_operation(&request, payload, &state).await?
            } else {
                None
            };
            forward_auth::authorize(
                state.store.as_ref(),
                settings.forward_auth.external_authorization,
                method,
                uri,
                lfs,
                token,
            )
            .await
        }
        Err(error) => Err(error),
    };
    let decision = match decision {
        Ok(decision) => decision,
        Err(error) => {
            // Which family a request with bad credentials belonged to is still worth counting.
            if let Some(guarded) = crate::access::forward::classify(method, uri) {
                let outcome = match error {
                    Error::Unauthorized => "unauthorized",
                    _ => "error",
                };
                state
                    .metrics
                    .record_family_request(guarded.operation.family(), outcome);
            }
            return Err(error);
        }
    };
    let outcome = match decision.verdict {
        Verdict::Allow => "allowed",
        Verdict::Unauthenticated => "unauthorized",
        Verdict::Forbidden => "denied",
    };
    if let Some(family) = decision.family() {
        state.metrics.record_family_request(family, outcome);
    }
    // The path names a project, never a secret; the query is left out all the same, and the
    // path is escaped and bounded: the client chose it.
    let path = bounded_escaped(uri.split('?').next().unwrap_or_default());
    let path = path.as_str();
    let operation = decision.operation.map(|op| format!("{op:?}"));
    match &decision.token {
        Some(token) => {
            identify(&request, Some(token.id), &token.username);
            tracing::info!(token_id = token.id, username = %token.username, method, path, operation, outcome, "forward-auth decision");
            // Id 0: a credential of a workload identity policy, no deploy token to record.
            if decision.verdict == Verdict::Allow && token.id == 0 {
                crate::service::workload_identity::record_forward_use(
                    &state.usage,
                    token,
                    client_address::text_of_request(&request),
                    decision
                        .family()
                        .map(|family| family.as_str())
                        .unwrap_or_default(),
                    &format!("{} {path}", operation.clone().unwrap_or_default()),
                    now,
                );
            } else if decision.verdict == Verdict::Allow {
                state.usage.record(TokenUse {
                    deploy_token_id: token.id,
                    namespace_id: token.owner.id,
                    username: token.username.clone(),
                    at: now,
                    ip_address: client_address::text_of_request(&request),
                    service: decision
                        .family()
                        .map(|family| family.as_str().to_owned())
                        .unwrap_or_default(),
                    granted: format!("{} {path}", operation.unwrap_or_default()),
                    marks_last_used: true,
                });
            }
        }
        None => {
            tracing::info!(
                method,
                path,
                operation,
                outcome,
                "forward-auth decision (anonymous)"
            )
        }
    }
    match decision.verdict {
        Verdict::Allow => Ok(HttpResponse::Ok().finish()),
        Verdict::Unauthenticated => Err(Error::Unauthorized),
        Verdict::Forbidden => Err(Error::Denied),
    }
}
