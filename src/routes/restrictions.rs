//! `PUT /api/v4/{projects|groups}/:id/deploy_tokens/:token_id` with `ip_restriction_ranges`
//! (issue #27; WIRE-FORMATS.md §2(e)): GitLab's comma-separated string or a JSON list, in the
//! query string, a form or a JSON body; `""` clears (read by `requests::DeployTokenUpdate`,
//! which `PUT /groups/:id` in `routes::api` uses too).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use crate::error::{ApiError, Error};
use crate::routes::requests::{DeployTokenUpdate, Sources};
use crate::service::restrictions;
use crate::state::AppState;
use crate::views;

/// `PUT .../deploy_tokens/:token_id`: replaces the token's allow-list.
pub async fn update_token(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (caller, owner, token_id) = super::api::token_route(&request, path, &state).await?;
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let ranges = DeployTokenUpdate::read(&Sources::new(&request, &body))?
        .ranges()?
        .ok_or(Error::MissingParameter(DeployTokenUpdate::FIELD))?;
    let now = Utc::now();
    let token = restrictions::set_deploy_token_ip_ranges(
        state.store.as_ref(),
        &caller,
        Some(&owner),
        token_id,
        ranges,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok().json(views::DeployTokenView::new(&token, now)))
}
