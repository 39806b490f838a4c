//! `GET` / `PUT /api/v4/user/preferences`: the caller's own preferences, at GitLab's address.
//! regauth has one of its own, `new_address_mail`: the mail sent when a token the user
//! manages acts at the registry from a network it had not used lately
//! (`service::new_address_mail`). GitLab's other preference fields mean nothing here.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use super::api::caller;
use crate::error::{ApiError, Error};
use crate::routes::requests::{PreferencesUpdate, Sources};
use crate::routes::route_list::RouteList;
use crate::service::users::{self, Preferences};
use crate::state::AppState;
use crate::views::PreferencesView;

pub fn register_api(routes: &mut RouteList<'_>) {
    routes
        .resource("/api/v4/user/preferences")
        .get(show)
        .to(Method::PUT, update)
        .done();
}

fn view(user_id: i64, preferences: Preferences) -> PreferencesView {
    PreferencesView {
        user_id,
        new_address_mail: preferences.new_address_mail,
    }
}

fn user_id(caller: &crate::service::caller::Caller) -> Result<i64, Error> {
    match &caller.identity {
        crate::service::caller::Identity::User { user, .. } => Ok(user.id),
        crate::service::caller::Identity::Operator { .. } => Err(Error::Unauthorized),
    }
}

async fn show(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let caller = caller(&request, &state).await?;
    let preferences = users::preferences(state.store.as_ref(), &caller).await?;
    Ok(HttpResponse::Ok().json(view(user_id(&caller)?, preferences)))
}

async fn update(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&request, &state).await?;
    // Only now the body: a caller without credentials cannot make us wait for one.
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let on = PreferencesUpdate::read(&Sources::new(&request, &body))?.new_address_mail()?;
    let preferences = users::set_preferences(state.store.as_ref(), &caller, on, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(view(user_id(&caller)?, preferences)))
}
