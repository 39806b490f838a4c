//! `PUT /api/v4/{projects|groups}/:id/deploy_tokens/:token_id` with `ip_restriction_ranges`
//! (issue #27; WIRE-FORMATS.md §2(e)): GitLab's comma-separated string or a JSON list, in the
//! query string, a form or a JSON body; `""` clears. The same field on `PUT /groups/:id` is
//! read here too (`routes::api` applies it with the group's other settings).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use crate::domain::address_range::IpRanges;
use crate::error::{ApiError, Error};
use crate::service::restrictions;
use crate::state::AppState;
use crate::views;

const FIELD: &str = "ip_restriction_ranges";

/// `ip_restriction_ranges` from the query string, else a JSON or form body; `None` when
/// absent.
pub(super) fn ranges_field(
    request: &HttpRequest,
    body: &[u8],
) -> Result<Option<IpRanges>, ApiError> {
    let from_pairs = |pairs: Vec<(String, String)>| -> Option<Vec<String>> {
        let values: Vec<String> = pairs
            .into_iter()
            .filter(|(key, _)| key == FIELD || key == "ip_restriction_ranges[]")
            .map(|(_, value)| value)
            .collect();
        (!values.is_empty()).then_some(values)
    };
    let query: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string())
        .map_err(|_| Error::InvalidRequest("the query is not valid URL encoding".into()))?;
    let mut entries = from_pairs(query);
    if entries.is_none() && !body.is_empty() {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.to_ascii_lowercase().starts_with("application/json"));
        entries = if is_json {
            let value: Value = serde_json::from_slice(body).map_err(|error| {
                Error::InvalidRequest(format!("the body is not valid JSON: {error}"))
            })?;
            match value.get(FIELD) {
                None => None,
                // JSON null clears, like "".
                Some(Value::Null) => Some(Vec::new()),
                Some(_) => Some(super::api::string_list(&value, FIELD)?),
            }
        } else {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|_| Error::InvalidRequest("the form is not valid URL encoding".into()))?;
            from_pairs(pairs)
        };
    }
    entries
        .map(|entries| IpRanges::parse_list(&entries).map_err(|error| Error::from(error).into()))
        .transpose()
}

/// `PUT .../deploy_tokens/:token_id`: replaces the token's allow-list.
pub async fn update_token(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (caller, owner, token_id) = super::api::token_route(&request, path, &state).await?;
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let ranges = ranges_field(&request, &body)?.ok_or(Error::MissingParameter(FIELD))?;
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
