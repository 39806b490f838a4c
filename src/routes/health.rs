//! `GET /-/health`: the process is alive. `GET /-/readiness`: it can serve token requests —
//! the database answers and the signing key signs; 503 naming the failing check otherwise
//! (why it fails is logged, never told to the unauthenticated caller).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::service::health;
use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let checks = health::readiness(state.store.as_ref(), &state.keys.current()).await;
    // Readiness is unauthenticated: the body names the failing check, the reason (database
    // error text, host names) goes to the log only.
    let render = |name: &str, check: &Result<(), String>| match check {
        Ok(()) => "ok",
        Err(reason) => {
            tracing::warn!(check = name, %reason, "not ready");
            "failing"
        }
    };
    let ready = checks.is_ready();
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": {
            "database": render("database", &checks.database),
            "signing_key": render("signing_key", &checks.signing_key),
        },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
