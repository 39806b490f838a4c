//! Rotation and lifetime limits under `/api/v4` (issue #27): `POST
//! /{projects|groups}/:id/deploy_tokens/:token_id/rotate`, `POST
//! /personal_access_tokens/:id/rotate` (`:id` may be `self`), and a group's
//! `max_token_lifetime_days` / `require_token_expiry` through `PUT /groups/:id`. Parameters
//! come as GitLab's clients send them: in the query string, a form or a JSON body.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use super::api::{caller, caller_and_token, namespace_kind, namespace_ref, parse_gitlab_bool};
use crate::domain::expiry::parse_expires_at;
use crate::domain::{Namespace, ValidationError};
use crate::error::{ApiError, Error};
use crate::routes::route_list::RouteList;
use crate::service::caller::Caller;
use crate::service::namespaces::{self, NamespaceRef};
use crate::service::token_lifecycle::{
    self, GroupLimitsChange, LifecycleSettings, PersonalAccessTokenRef, RotateRequest,
};
use crate::state::AppState;
use crate::views;

type ApiResult = Result<HttpResponse, ApiError>;

pub fn register(routes: &mut RouteList<'_>) {
    routes
        .resource("/api/v4/personal_access_tokens/{id}/rotate")
        .post(rotate_personal_access_token)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}/deploy_tokens/{token_id}/rotate")
        .post(rotate_deploy_token)
        .done();
}

/// The request's parameters: the query string, then a JSON or form body. A JSON `null` is
/// kept as `None` (it clears a group's maximum).
fn parameters(
    request: &HttpRequest,
    body: &[u8],
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let query: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string())
        .map_err(|_| Error::InvalidRequest("the query is not valid URL encoding".into()))?;
    let mut fields: Vec<(String, Option<String>)> = query
        .into_iter()
        .map(|(key, value)| (key, Some(value)))
        .collect();
    if body.is_empty() {
        return Ok(fields);
    }
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().starts_with("application/json"));
    if is_json {
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            Error::InvalidRequest(format!("the body is not valid JSON: {error}"))
        })?;
        let Value::Object(object) = value else {
            return Err(Error::InvalidRequest("the body must be a JSON object".into()).into());
        };
        for (key, value) in object {
            let text = match value {
                Value::Null => None,
                Value::String(text) => Some(text),
                Value::Number(number) => Some(number.to_string()),
                Value::Bool(flag) => Some(flag.to_string()),
                _ => return Err(Error::InvalidRequest(format!("{key} is invalid")).into()),
            };
            fields.push((key, text));
        }
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| Error::InvalidRequest("the form is not valid URL encoding".into()))?;
        fields.extend(pairs.into_iter().map(|(key, value)| (key, Some(value))));
    }
    Ok(fields)
}

/// The last value given for `key`: `None` absent, `Some(None)` null or empty.
fn field<'a>(fields: &'a [(String, Option<String>)], key: &str) -> Option<Option<&'a str>> {
    fields
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
        })
}

fn rotate_request(fields: &[(String, Option<String>)]) -> Result<RotateRequest, ApiError> {
    let expires_at = field(fields, "expires_at")
        .flatten()
        .map(|text| {
            parse_expires_at(text).map_err(|_| {
                Error::from(ValidationError::new(
                    "expires_at",
                    "is invalid: use YYYY-MM-DD or an ISO 8601 date-time",
                ))
            })
        })
        .transpose()?;
    let grace_period_seconds = field(fields, "grace_period_seconds")
        .flatten()
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                Error::from(ValidationError::new(
                    "grace_period_seconds",
                    "is invalid: a whole number of seconds",
                ))
            })
        })
        .transpose()?;
    Ok(RotateRequest {
        expires_at,
        grace_period_seconds,
    })
}

async fn rotate_deploy_token(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult {
    let (kind, id, token_id) = path.into_inner();
    let kind = namespace_kind(&kind)?;
    let token_id = token_id
        .parse::<i64>()
        .map_err(|_| Error::not_found("Deploy token", &token_id))?;
    let caller = caller(&request, &state).await?;
    let owner = namespaces::find(state.store.as_ref(), kind, &namespace_ref(&id)).await?;
    // Permission before the body, as for creation.
    crate::service::deploy_tokens::authorize(
        state.store.as_ref(),
        &caller,
        crate::access::permissions::TokenOperation::Create,
        &owner,
    )
    .await?;
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let rotate = rotate_request(&parameters(&request, &body)?)?;
    let now = Utc::now();
    let rotated = token_lifecycle::rotate_deploy_token(
        state.store.as_ref(),
        &caller,
        Some(&owner),
        token_id,
        rotate,
        LifecycleSettings::of(&state.settings),
        &state.token_formats,
        &state.ci_key,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(views::rotated_deploy_token(
            &rotated.token,
            rotated.secret.expose(),
            rotated.previous_secret_expires_at,
            now,
        )))
}

async fn rotate_personal_access_token(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult {
    let id = path.into_inner();
    let (caller, presented) = caller_and_token(&request, &state).await?;
    let which = if id == "self" {
        PersonalAccessTokenRef::Presented(presented.id)
    } else {
        PersonalAccessTokenRef::Id(
            id.parse::<i64>()
                .map_err(|_| Error::not_found("Personal access token", &id))?,
        )
    };
    // A secret already replaced (still in its grace period) may not rotate its own token:
    // whoever holds only the old secret, perhaps leaked, must not take the token over.
    let (PersonalAccessTokenRef::Id(target) | PersonalAccessTokenRef::Presented(target)) = which;
    if presented.rotation.found_by_previous_secret && target == presented.id {
        return Err(Error::Forbidden.into());
    }
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let rotate = rotate_request(&parameters(&request, &body)?)?;
    let now = Utc::now();
    let rotated = token_lifecycle::rotate_personal_access_token(
        state.store.as_ref(),
        &caller,
        which,
        rotate,
        LifecycleSettings::of(&state.settings),
        &state.token_formats,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(views::rotated_personal_access_token(
            &rotated.token,
            rotated.secret.expose(),
            rotated.previous_secret_expires_at,
            now,
        )))
}

/// From `PUT /groups/:id` (body already read): `max_token_lifetime_days` (a number of days;
/// `null`, empty or `0` removes the group's own maximum) and `require_token_expiry`; `None`
/// when neither is given.
pub(super) fn group_limits_change(
    request: &HttpRequest,
    body: &[u8],
) -> Result<Option<GroupLimitsChange>, ApiError> {
    let fields = parameters(request, body)?;
    let max_token_lifetime_days = field(&fields, "max_token_lifetime_days")
        .map(|value| match value {
            None | Some("0") => Ok(None),
            Some(text) => text.parse::<u32>().map(Some).map_err(|_| {
                Error::from(ValidationError::new(
                    "max_token_lifetime_days",
                    "is invalid: a whole number of days",
                ))
            }),
        })
        .transpose()?;
    let require_token_expiry = field(&fields, "require_token_expiry")
        .map(|value| {
            value.and_then(parse_gitlab_bool).ok_or_else(|| {
                Error::from(ValidationError::new(
                    "require_token_expiry",
                    "is invalid: true or false",
                ))
            })
        })
        .transpose()?;
    if max_token_lifetime_days.is_none() && require_token_expiry.is_none() {
        return Ok(None);
    }
    Ok(Some(GroupLimitsChange {
        max_token_lifetime_days,
        require_token_expiry,
    }))
}

/// Applies a group's new limits on new tokens; the group.
pub(super) async fn set_group_limits(
    state: &AppState,
    caller: &Caller,
    reference: &NamespaceRef,
    change: GroupLimitsChange,
) -> Result<Namespace, ApiError> {
    let (group, _) = token_lifecycle::set_group_limits(
        state.store.as_ref(),
        caller,
        reference,
        change,
        state.settings.tokens.lifetime,
        Utc::now(),
    )
    .await?;
    Ok(group)
}

/// Adds the group's own limits to its JSON (`GET` / `PUT /groups/:id`).
pub(super) async fn add_group_limits(
    value: &mut Value,
    state: &AppState,
    group: &Namespace,
) -> Result<(), ApiError> {
    let limits = token_lifecycle::group_limits(state.store.as_ref(), group).await?;
    if let (Value::Object(object), Value::Object(extra)) =
        (value, token_lifecycle::limits_json(limits))
    {
        object.extend(extra);
    }
    Ok(())
}
