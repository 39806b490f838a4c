//! `GET /-/health`: the process is alive. `GET /-/readiness`: it can serve token requests —
//! the database answers and the signing key signs; 503 naming the failing check otherwise.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::service::health;
use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let checks = health::readiness(state.store.as_ref(), &state.keys).await;
    let render = |check: &Result<(), String>| match check {
        Ok(()) => "ok".to_owned(),
        Err(reason) => format!("failing: {reason}"),
    };
    let ready = checks.is_ready();
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": { "database": render(&checks.database), "signing_key": render(&checks.signing_key) },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
