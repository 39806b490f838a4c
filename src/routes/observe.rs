//! One access-log line and one latency observation per request. The line names the route
//! pattern (not the raw path), status, latency, the client address (see
//! `crate::client_address`), the User-Agent (bounded and escaped), and who called (token id and
//! username, set by the handler through [`identify`]) — never another header, a query string
//! or a body, so no secret, Basic header, JWT or refresh token can reach it.
//!
//! [`RequestSpan`] replaces tracing-actix-web's default root span, which records the raw
//! target (query string included), the raw User-Agent and a client IP taken from
//! `X-Forwarded-For` whoever sent it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::state::AppState;

/// Who a request acted as, for the access log.
#[derive(Debug, Clone)]
pub struct RequestIdentity {
    /// The deploy token (registry requests) or the personal access token (API).
    pub token_id: Option<i64>,
    pub username: String,
}

/// Records who the request acted as.
pub fn identify(request: &HttpRequest, token_id: Option<i64>, username: &str) {
    request.extensions_mut().insert(RequestIdentity {
        token_id,
        username: username.to_owned(),
    });
}

pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // actix accepts any method name: only standard ones become metric labels.
    let method = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let state = request.app_data::<web::Data<AppState>>().cloned();
    // What only the access line needs is made only when the line is written (the configured
    // level includes it).
    let logged = tracing::enabled!(target: "regauth::access", tracing::Level::INFO);
    let client = logged
        .then(|| crate::client_address::of_request(request.request()))
        .flatten();
    let user_agent = logged
        .then(|| request.headers().get(header::USER_AGENT))
        .flatten()
        .map(|value| bounded_escaped(&String::from_utf8_lossy(value.as_bytes())));
    let response = next.call(request).await?;
    let elapsed = started.elapsed();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    if !logged {
        if let Some(state) = state {
            state.metrics.observe_request(method, route, elapsed);
        }
        return Ok(response);
    }
    if let Some(state) = state {
        state
            .metrics
            .observe_request(method, route.clone(), elapsed);
    }
    let identity = response
        .request()
        .extensions()
        .get::<RequestIdentity>()
        .cloned();
    tracing::info!(
        target: "regauth::access",
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        client = client.map(tracing::field::display),
        user_agent,
        token_id = identity.as_ref().and_then(|i| i.token_id),
        username = identity.as_ref().map(|i| i.username.as_str()),
        "request"
    );
    Ok(response)
}

/// The longest User-Agent kept in the log, in characters.
pub const USER_AGENT_LOG_LIMIT: usize = 256;

/// Caller-supplied text for a log line: control characters escaped (`\n`, `\u{1b}`), so that
/// a line cannot be split or recoloured, and cut to [`USER_AGENT_LOG_LIMIT`] characters.
pub fn bounded_escaped(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == USER_AGENT_LOG_LIMIT {
            out.push_str("...");
            break;
        }
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The request span: a request id and the client address, nothing the caller chose freely.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let client = crate::client_address::of_request(request.request());
        tracing::info_span!(
            "request",
            request_id,
            client = client.map(tracing::field::display)
        )
    }

    fn on_request_end<B: MessageBody>(
        _span: Span,
        _outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        // The access line (above) carries the outcome.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_escaped_and_bounded() {
        assert_eq!(
            bounded_escaped("docker/27.0 go/1.22"),
            "docker/27.0 go/1.22"
        );
        assert_eq!(
            bounded_escaped("evil\n\u{1b}[31mred\r\tx\\"),
            "evil\\n\\u{1b}[31mred\\r\\tx\\\\"
        );
        let long = "a".repeat(64 * 1024);
        let logged = bounded_escaped(&long);
        assert_eq!(logged.len(), USER_AGENT_LOG_LIMIT + 3);
        assert!(logged.ends_with("..."));
        assert!(!bounded_escaped("\u{7f}\u{9b}")
            .chars()
            .any(char::is_control));
    }
}
