//! `GET /-/health`: the process is alive. `GET /-/readiness`: it can serve token requests —
//! the database answers and the signing key signs; 503 naming the failing check otherwise.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::Report;
use crate::service::registry_token::sign;
use crate::startup::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => format!("failing: {}", Report(&error)),
        Err(_) => "failing: no answer within 2 s".to_owned(),
    };
    // Off the executor for RSA keys, like every signature.
    let signing_key = match sign(&state.keys, json!({ "readiness": true })).await {
        Ok(_) => "ok".to_owned(),
        Err(error) => format!("failing: {}", Report(&error)),
    };
    let ready = database == "ok" && signing_key == "ok";
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": { "database": database, "signing_key": signing_key },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
