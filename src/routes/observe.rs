//! One access-log line and one latency observation per request. The line names the route
//! pattern (not the raw path), status, latency, and who called (token id and username, set by
//! the handler through [`identify`]) — never a header, a query string or a body, so no secret,
//! Basic header, JWT or refresh token can reach it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};

use crate::startup::AppState;

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
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_owned();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(request).await?;
    let elapsed = started.elapsed();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    if let Some(state) = state {
        state.metrics.observe_request(&method, &route, elapsed);
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
        token_id = identity.as_ref().and_then(|i| i.token_id),
        username = identity.as_ref().map(|i| i.username.as_str()),
        "request"
    );
    Ok(response)
}
