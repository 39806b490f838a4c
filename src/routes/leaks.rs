//! Leaked tokens, reported by value (`service::leaks`):
//! - `POST /api/v4/admin/token` `{"token": …}` says what a token is, `DELETE` revokes it (GitLab's
//!   admin token API; administrators only; 404 for anything that is not a regauth token);
//! - `POST /-/secret-scanning/github`: GitHub's secret-scanning partner reports, signed with
//!   ECDSA P-256 over the raw body (`github_secret_scanning_keys_file`; off without it);
//! - `GET /v1/revocable_token_types`, `POST /v1/revoke_tokens`: GitLab's Token Revocation API,
//!   with the pre-shared `gitlab_token_revocation_token` (off without it).
//!
//! Reports are read only after their signature or pre-shared token was checked, bounded like
//! every body, answered alike for known and unknown tokens, and idempotent.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use crate::client_address;
use crate::domain::TokenSecret;
use crate::error::{ApiError, Error};
use crate::metrics::LoginRoute;
use crate::routes::requests::AdminTokenBody;
use crate::routes::route_list::RouteList;
use crate::service::leaks::{self, Identified, LeakReport, Reporter};
use crate::service::login_guard::Attempt;
use crate::service::secret_scanning::{self, Finding};
use crate::state::AppState;
use crate::views;

/// The largest report regauth reads (a GitHub batch of 1,000 findings is about 200 KiB).
const REPORT_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The token type regauth's tokens have in GitLab's Token Revocation API.
pub const GITLAB_TOKEN_TYPE: &str = "regauth_token";

pub fn register_admin(routes: &mut RouteList<'_>) {
    routes
        .resource("/api/v4/admin/token")
        .post(token_information)
        .to(Method::DELETE, revoke_token)
        .done();
}

pub fn register_reports(routes: &mut RouteList<'_>) {
    routes
        .resource("/-/secret-scanning/github")
        .post(github_report)
        .done();
    routes
        .resource("/v1/revocable_token_types")
        .get(gitlab_token_types)
        .done();
    routes
        .resource("/v1/revoke_tokens")
        .post(gitlab_report)
        .done();
}

/// The administrator behind an admin-API request, then the `{"token": …}` body.
async fn admin_and_token(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(crate::service::caller::Caller, TokenSecret), ApiError> {
    let caller = crate::routes::api::caller(request, state).await?;
    if !matches!(
        caller.principal(),
        crate::access::permissions::Principal::User { admin: true, .. }
    ) {
        return Err(Error::Forbidden.into());
    }
    let body = crate::routes::body::read_api_body(request, payload, state).await?;
    Ok((caller, AdminTokenBody::parse(&body)?.secret()))
}

async fn token_information(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, secret) = admin_and_token(&request, payload, &state).await?;
    match leaks::identify(state.store.as_ref(), &state.token_formats, &secret).await? {
        Some(found) => {
            Ok(HttpResponse::Ok().json(views::TokenInformation::new(&found, Utc::now())))
        }
        None => Err(Error::not_found("Token", "").into()),
    }
}

async fn revoke_token(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (caller, secret) = admin_and_token(&request, payload, &state).await?;
    let report = LeakReport {
        secret,
        location: None,
        source: Some("admin_api".to_owned()),
    };
    let revoked = leaks::revoke(
        state.store.as_ref(),
        &state.token_formats,
        &report,
        Reporter::Administrator,
        caller.actor_name(),
        caller.ip_address.clone(),
        Utc::now(),
    )
    .await?;
    match revoked {
        Some((found, newly)) => {
            if newly {
                after_revocation(&state, &found, Reporter::Administrator, None);
            }
            Ok(HttpResponse::NoContent().finish())
        }
        None => Err(Error::not_found("Token", "").into()),
    }
}

/// Revokes every real token of a report; per finding, whether it was one of regauth's.
/// Reports beyond `ReportLimiter`'s allowance are 429.
async fn revoke_findings(
    state: &AppState,
    findings: Vec<Finding>,
    reporter: Reporter,
    ip_address: Option<String>,
) -> Result<Vec<(Finding, bool)>, Error> {
    if let Err(retry_after) = state.report_limiter.admit() {
        tracing::warn!(
            reporter = reporter.as_str(),
            "a secret-scanning report beyond the allowance was refused"
        );
        return Err(Error::TooManyRequests { retry_after });
    }
    let now = Utc::now();
    let mut outcomes = Vec::with_capacity(findings.len());
    for finding in findings {
        let report = LeakReport {
            secret: TokenSecret::from_presented(finding.token.clone()),
            location: finding.location.clone(),
            source: finding.source.clone(),
        };
        let revoked = leaks::revoke(
            state.store.as_ref(),
            &state.token_formats,
            &report,
            reporter,
            reporter_actor(reporter),
            ip_address.clone(),
            now,
        )
        .await?;
        if let Some((found, true)) = &revoked {
            after_revocation(state, found, reporter, finding.location.clone());
        }
        outcomes.push((finding, revoked.is_some()));
    }
    Ok(outcomes)
}

/// Counts a newly revoked leaked token and mails the people who manage a deploy token.
fn after_revocation(
    state: &AppState,
    found: &Identified,
    reporter: Reporter,
    location: Option<String>,
) {
    state.metrics.record_leaked_revocation();
    if let Identified::DeployToken(token) = found {
        leaks::notify_owners_later(
            std::sync::Arc::clone(&state.store),
            state.settings.housekeeping.smtp.as_ref(),
            token.clone(),
            reporter,
            location,
        );
    }
}

fn reporter_actor(reporter: Reporter) -> &'static str {
    match reporter {
        Reporter::GitHub => "github-secret-scanning",
        Reporter::GitLab => "gitlab-secret-detection",
        Reporter::Administrator => "admin",
    }
}

fn header_text<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// GitHub's partner endpoint: verify, revoke, answer the feedback (by token digest).
async fn github_report(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    if !state.github_keys.configured() {
        return Err(Error::not_found("Route", "secret-scanning"));
    }
    let (Some(identifier), Some(signature)) = (
        header_text(&request, "Github-Public-Key-Identifier"),
        header_text(&request, "Github-Public-Key-Signature"),
    ) else {
        return Err(Error::Unauthorized);
    };
    // An unknown identifier is refused before the body is read.
    let keys = state
        .github_keys
        .keys_for(identifier)
        .await
        .map_err(|error| Error::internal_from("GitHub's secret-scanning keys", error))?;
    if !keys.knows(identifier) {
        tracing::warn!(
            identifier,
            "a GitHub secret-scanning report names an unknown key"
        );
        return Err(Error::Unauthorized);
    }
    let limits = &state.settings.limits;
    let body = crate::routes::body::read_limited(
        request.headers(),
        payload,
        REPORT_BODY_LIMIT,
        limits.request_body_timeout,
    )
    .await?;
    if let Err(error) = keys.verify(identifier, signature, &body) {
        tracing::warn!(%error, "a GitHub secret-scanning report was refused");
        return Err(Error::Unauthorized);
    }
    let findings = secret_scanning::parse_github_report(&body)
        .map_err(|error| Error::InvalidRequest(error.to_string()))?;
    let outcomes = revoke_findings(
        &state,
        findings,
        Reporter::GitHub,
        client_address::text_of_request(&request),
    )
    .await?;
    let feedback: Vec<Value> = outcomes
        .iter()
        .map(|(finding, real)| {
            secret_scanning::feedback(&finding.token, &finding.token_type, *real)
        })
        .collect();
    Ok(HttpResponse::Ok().json(feedback))
}

/// Checks GitLab's pre-shared token (constant time; failures count as failed logins).
async fn gitlab_authorized(request: &HttpRequest, state: &AppState) -> Result<(), Error> {
    let Some(expected) = &state.settings.leak_reports.gitlab_token_revocation_token else {
        return Err(Error::not_found("Route", "revoke_tokens"));
    };
    let presented = header_text(request, header::AUTHORIZATION.as_str()).unwrap_or("");
    let attempt = Attempt::new(
        client_address::text_of_request(request),
        None,
        LoginRoute::Api,
        &state.token_formats,
    );
    state
        .logins
        .check_secret(&attempt, async {
            if crate::domain::secret::constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
                Ok(())
            } else {
                Err(Error::Unauthorized)
            }
        })
        .await
}

async fn gitlab_token_types(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    gitlab_authorized(&request, &state).await?;
    Ok(HttpResponse::Ok().json(views::RevocableTokenTypesView {
        types: [GITLAB_TOKEN_TYPE],
    }))
}

async fn gitlab_report(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    gitlab_authorized(&request, &state).await?;
    let body = crate::routes::body::read_limited(
        request.headers(),
        payload,
        REPORT_BODY_LIMIT,
        state.settings.limits.request_body_timeout,
    )
    .await?;
    let findings = secret_scanning::parse_gitlab_report(&body)
        .map_err(|error| Error::InvalidRequest(error.to_string()))?;
    if let Some(other) = findings
        .iter()
        .find(|finding| finding.token_type != GITLAB_TOKEN_TYPE)
    {
        return Err(Error::InvalidRequest(format!(
            "unsupported token type {:?}; GET /v1/revocable_token_types",
            crate::domain::text::printable(&other.token_type)
        )));
    }
    revoke_findings(
        &state,
        findings,
        Reporter::GitLab,
        client_address::text_of_request(&request),
    )
    .await?;
    // Accepted, whatever the tokens were: no oracle.
    Ok(HttpResponse::NoContent().finish())
}
