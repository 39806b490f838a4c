//! `GET /metrics`: OpenMetrics text exposition (see `crate::metrics`).

use actix_web::{web, HttpResponse};

use crate::error::Report;
use crate::state::AppState;
use crate::store::{database_errors, ScopeCounts};

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // A failing database must not hide the other metrics: the error counter shows it.
    let scope_counts = match state.store.deploy_token_scope_counts().await {
        Ok(counts) => counts,
        Err(error) => {
            tracing::warn!(error = %Report(&error), "deploy token counts unavailable for /metrics");
            ScopeCounts::default()
        }
    };
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(state.metrics.render(
            &scope_counts,
            database_errors(),
            state.store.token_cache_lookups(),
        ))
}
