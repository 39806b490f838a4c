//! `/-/profile/preferences` (GitLab's address): the signed-in person's own preferences, today
//! the new-address mail (`service::new_address_mail`). The service checks the session's
//! right to change them again on every post.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use chrono::Utc;

use super::{html, see_other, session, session_form, PageResult};
use crate::routes::route_list::RouteList;
use crate::service::users;
use crate::state::AppState;

const PAGE: &str = "/-/profile/preferences";

pub fn register(routes: &mut RouteList<'_>) {
    routes
        .resource(PAGE)
        .get(preferences_page)
        .post(save_preferences)
        .done();
}

#[derive(Template)]
#[template(path = "preferences.html")]
pub struct PreferencesPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub new_address_mail: bool,
    pub email: Option<String>,
    pub mail_configured: bool,
    pub notice: Option<String>,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

async fn preferences_page(
    request: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let preferences = users::preferences(state.store.as_ref(), &session.caller).await?;
    let page = PreferencesPage {
        user_name: session.user_name(),
        csrf: session.csrf(),
        new_address_mail: preferences.new_address_mail,
        email: Some(session.user.email.clone()).filter(|email| !email.is_empty()),
        mail_configured: state.settings.housekeeping.smtp.is_some(),
        notice: query
            .saved
            .is_some()
            .then(|| "Your preferences were saved.".to_owned()),
    };
    Ok(html(StatusCode::OK, &page))
}

async fn save_preferences(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let form = session_form(&request, payload, &state).await?;
    session.check_csrf(&form)?;
    // An unchecked box is not sent at all.
    let new_address_mail = form.get("new_address_mail") == "true";
    users::set_preferences(
        state.store.as_ref(),
        &session.caller,
        new_address_mail,
        Utc::now(),
    )
    .await?;
    Ok(see_other(&format!("{PAGE}?saved=1")))
}
