//! The deploy-token pages, at GitLab's own addresses: `/users/sign_in`, `/users/sign_out`,
//! `/` (the groups and projects the user manages), `/<project>/-/settings/repository` and
//! `/groups/<group>/-/settings/repository` (list, add, show once, revoke), and a token's
//! detail view with its audit trail. Handlers read the session and the form, call the
//! services (which check every permission) and render a template; errors become pages in
//! `error::PageError`.

mod page_error;
pub mod pages;
pub mod profile;
pub mod rotation;
mod sign_in;
mod tokens;
pub mod workload;

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::client_address;
use crate::domain::{NamespaceKind, User};
use crate::error::Error;
use crate::routes::body::read_limited;
use crate::routes::route_list::RouteList;
use crate::service::caller::Caller;
use crate::service::namespaces::{self, NamespaceRef};
use crate::service::web_sessions;
use crate::state::AppState;
use crate::store::WebSession;
pub use page_error::PageError;
use sign_in::{sign_in, sign_in_page, sign_out};
use tokens::{create_token, home, render_token_page, revoke_token, settings_page, token_page};

type PageResult = Result<HttpResponse, PageError>;

const SESSION_COOKIE: &str = "_regauth_session";
/// The sign-in form's CSRF token before there is a session (double-submit cookie).
const SIGN_IN_CSRF_COOKIE: &str = "_regauth_sign_in_csrf";
const CSRF_FIELD: &str = "authenticity_token";
/// Most audit events a detail view shows (the newest).
const AUDIT_EVENTS_SHOWN: usize = 100;
/// The latest registry events a token's page shows (the API pages through them all).
const REGISTRY_EVENTS_SHOWN: u64 = 50;

pub fn register(routes: &mut RouteList<'_>) {
    routes
        .resource("/-/static/regauth.css")
        .get(stylesheet)
        .done();
    routes.resource("/-/static/copy.js").get(script).done();
    routes
        .resource("/users/sign_in")
        .get(sign_in_page)
        .post(sign_in)
        .done();
    routes.resource("/users/sign_out").post(sign_out).done();
    routes.resource("/").get(home).done();
    // Before the project routes below, whose paths begin with any text.
    profile::register(routes);
    // Groups first: `/groups/...` must not be read as a project path.
    for (prefix, kind) in [
        ("/groups/{path:.+}", NamespaceKind::Group),
        ("/{path:.+}", NamespaceKind::Project),
    ] {
        routes
            .resource(format!("{prefix}/-/settings/repository"))
            .data(kind)
            .get(settings_page)
            .done();
        routes
            .resource(format!(
                "{prefix}/-/settings/repository/deploy_token/create"
            ))
            .data(kind)
            .post(create_token)
            .done();
        routes
            .resource(format!("{prefix}/-/deploy_tokens/{{id:[0-9]+}}"))
            .data(kind)
            .get(token_page)
            .done();
        routes
            .resource(format!("{prefix}/-/deploy_tokens/{{id:[0-9]+}}/revoke"))
            .data(kind)
            .post(revoke_token)
            .done();
        routes
            .resource(format!("{prefix}/-/deploy_tokens/{{id:[0-9]+}}/rotate"))
            .data(kind)
            .post(rotation::rotate_token)
            .done();
        routes
            .resource(format!("{prefix}/-/settings/workload_identities"))
            .data(kind)
            .get(workload::policies_page)
            .post(workload::create_policy)
            .done();
        routes
            .resource(format!(
                "{prefix}/-/workload_identities/{{id:[0-9]+}}/delete"
            ))
            .data(kind)
            .post(workload::delete_policy)
            .done();
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/regauth.css"))
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/copy.js"))
}

/// Renders a page with the headers every page carries: never cached (a page may hold a
/// secret shown once), no framing, scripts and styles from this origin only.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "same-origin"))
            .body(body),
        Err(error) => {
            tracing::error!(error = %error, "a page template failed");
            HttpResponse::InternalServerError().body("internal server error")
        }
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The value of one of the pages' cookies (by its name under this scheme), if set and not
/// empty (a removed cookie a browser still sends).
fn cookie_value(request: &HttpRequest, state: &AppState, base: &str) -> Option<String> {
    request
        .cookie(&cookie_name(state, base))
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| !value.is_empty())
}

/// `Secure` when regauth is reached over https: it serves TLS itself, or its public URL
/// (a TLS-terminating proxy in front) says so.
fn secure(state: &AppState) -> bool {
    state.settings.server.tls.is_some()
        || state
            .settings
            .server
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
}

/// A cookie's name: under HTTPS with the `__Host-` prefix, which browsers accept only with
/// `Secure`, `Path=/` and no `Domain`, so that neither a sibling subdomain nor a plain-HTTP
/// page can plant or overwrite it (a planted session or CSRF cookie).
fn cookie_name(state: &AppState, base: &str) -> String {
    if secure(state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// Sets one of the pages' cookies: `HttpOnly`, `SameSite=Lax`, for `path` (the whole site
/// under HTTPS, as `__Host-` requires) and `Secure` under HTTPS; a session cookie without
/// `max_age`.
fn set_cookie(
    response: &mut HttpResponse,
    state: &AppState,
    base: &str,
    value: &str,
    path: &str,
    max_age: Option<std::time::Duration>,
) {
    let secure = secure(state);
    let mut cookie = Cookie::build(cookie_name(state, base), value)
        .path(if secure { "/" } else { path })
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish();
    if let Some(max_age) = max_age {
        let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        cookie.set_max_age(CookieDuration::seconds(seconds));
    }
    // Our names and values are tokens: they always make a header value.
    if let Err(error) = response.add_cookie(&cookie) {
        tracing::error!(%error, cookie = base, "a cookie could not be set");
    }
}

/// Tells the browser to drop one of the pages' cookies (set with the same `path`).
fn remove_cookie(response: &mut HttpResponse, state: &AppState, base: &str, path: &str) {
    set_cookie(
        response,
        state,
        base,
        "",
        path,
        Some(std::time::Duration::ZERO),
    );
}

/// A form body, repeated fields kept (`scopes=a&scopes=b`).
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Result<Form, PageError> {
        serde_urlencoded::from_bytes(body)
            .map(Form)
            .map_err(|_| Error::InvalidRequest("the form is not valid URL encoding".into()).into())
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A form body, at most `limit` bytes, within `request_body_timeout`.
async fn read_form(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    state: &AppState,
) -> Result<Form, PageError> {
    let body = read_limited(
        request.headers(),
        payload,
        limit,
        state.settings.limits.request_body_timeout,
    )
    .await?;
    Form::parse(&body)
}

/// The form of a signed-in page: read only once the session is known, so that nobody without
/// one can make the server wait for a body.
pub(super) async fn session_form(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Form, PageError> {
    read_form(
        request,
        payload,
        state.settings.limits.api_body_limit,
        state,
    )
    .await
}

/// The signed-in person behind a page request.
struct Session {
    session: WebSession,
    user: User,
    caller: Caller,
}

impl Session {
    fn user_name(&self) -> Option<String> {
        Some(self.user.username.clone())
    }

    fn csrf(&self) -> String {
        self.session.csrf_token.clone()
    }

    /// Refuses a form without this session's CSRF token.
    fn check_csrf(&self, form: &Form) -> Result<(), PageError> {
        if web_sessions::csrf_matches(&self.session.csrf_token, form.get(CSRF_FIELD)) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }
}

/// The session, or `Unauthorized` (which `PageError` turns into the sign-in page, coming
/// back here afterwards).
async fn session(request: &HttpRequest, state: &AppState) -> Result<Session, PageError> {
    let back_to = || PageError::SignIn {
        back_to: Some(request.path().to_owned()),
    };
    let id = cookie_value(request, state, SESSION_COOKIE).ok_or_else(back_to)?;
    let (session, user) = web_sessions::resume(state.store.as_ref(), &id, Utc::now())
        .await?
        .ok_or_else(back_to)?;
    crate::routes::observe::identify(request, None, &user.username);
    let caller = web_sessions::caller(
        &session,
        user.clone(),
        client_address::text_of_request(request),
    );
    Ok(Session {
        session,
        user,
        caller,
    })
}

/// The namespace named by the URL, if the caller may see it (404 otherwise).
async fn namespace_of(
    state: &AppState,
    session: &Session,
    kind: NamespaceKind,
    path: &str,
) -> Result<(crate::domain::Namespace, Option<crate::domain::Role>), PageError> {
    Ok(namespaces::find_visible(
        state.store.as_ref(),
        &session.caller,
        kind,
        &NamespaceRef::Path(path.to_owned()),
    )
    .await?)
}

/// A signed-in form posted to a page of one group or project: the session, the form (read
/// only once the session is known, and refused without its CSRF token) and the namespace the
/// URL names, if the caller may see it.
async fn namespace_form(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    kind: NamespaceKind,
    path: &str,
) -> Result<(Session, Form, crate::domain::Namespace), PageError> {
    let session = session(request, state).await?;
    let form = session_form(request, payload, state).await?;
    session.check_csrf(&form)?;
    let (namespace, _) = namespace_of(state, &session, kind, path).await?;
    Ok((session, form, namespace))
}
