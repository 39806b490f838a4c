//! Rotation and lifetime limits under `/api/v4` (issue #27): `POST
//! /{projects|groups}/:id/deploy_tokens/:token_id/rotate`, `POST
//! /personal_access_tokens/:id/rotate` (`:id` may be `self`), and a group's
//! `max_token_lifetime_days` / `require_token_expiry` through `PUT /groups/:id`. Parameters
//! come as GitLab's clients send them: in the query string, a form or a JSON body.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use super::api::{caller, caller_and_token, namespace_kind, namespace_ref};
use crate::domain::Namespace;
use crate::error::{ApiError, Error};
use crate::routes::requests::{RotateParams, Sources};
use crate::routes::route_list::RouteList;
use crate::service::caller::Caller;
use crate::service::namespaces::{self, NamespaceRef};
use crate::service::token_lifecycle::{
    self, GroupLimitsChange, LifecycleSettings, PersonalAccessTokenRef,
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
    let rotate = RotateParams::read(&Sources::new(&request, &body))?.into_request()?;
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
        .json(views::RotatedDeployTokenView::new(
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
    let rotate = RotateParams::read(&Sources::new(&request, &body))?.into_request()?;
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
        .json(views::RotatedPersonalAccessTokenView::new(
            &rotated.token,
            rotated.secret.expose(),
            rotated.previous_secret_expires_at,
            now,
        )))
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
