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
pub mod workload;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::access::permissions::{self, TokenOperation};
use crate::client_address;
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::{NamespaceKind, User};
use crate::error::Error;
use crate::metrics::LoginRoute;
use crate::routes::body::read_limited;
use crate::routes::route_list::RouteList;
use crate::service::caller::Caller;
use crate::service::deploy_tokens::{self, ListOptions};
use crate::service::login_guard::Attempt;
use crate::service::namespaces::{self, NamespaceRef};
use crate::service::web_sessions::{self, Password};
use crate::state::AppState;
use crate::store::WebSession;
pub use page_error::PageError;
use pages::*;

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

fn cookie_value(request: &HttpRequest, state: &AppState, base: &str) -> Option<String> {
    let name = cookie_name(state, base);
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name.as_str())
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `Secure` when regauth is reached over https: it serves TLS itself, or its public URL
/// (a TLS-terminating proxy in front) says so.
fn secure(state: &AppState) -> bool {
    state.settings.tls.is_some()
        || state
            .settings
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

fn cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: Option<u64>) -> String {
    let name = cookie_name(state, name);
    // `__Host-` requires the whole site as path.
    let path = if secure(state) { "/" } else { path };
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure(state) {
        text.push_str("; Secure");
    }
    text
}

fn set_cookie(response: &mut HttpResponse, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
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

#[derive(serde::Deserialize)]
struct SignInQuery {
    redirect_to: Option<String>,
}

/// Where sign-in may send the browser: a local path of this site only, by a strict grammar —
/// one `/`, then RFC 3986 path characters (and a query), with no empty first segment, no
/// backslash, no white space or control character, and no percent-encoded slash, backslash or
/// control character. Browsers strip tabs and newlines and read `\` as `/`, so `/\t/evil`,
/// `/\evil` and `/%2F/evil` would otherwise leave the site; CR/LF would break the header.
/// Anything else is `/`.
fn local_path(target: Option<&str>) -> &str {
    match target {
        Some(path) if is_local_path(path) => path,
        _ => "/",
    }
}

const LOCAL_PATH_MAX: usize = 2048;

fn is_local_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.len() > LOCAL_PATH_MAX || bytes.first() != Some(&b'/') || bytes.get(1) == Some(&b'/') {
        return false;
    }
    let allowed =
        |byte: u8| byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(&byte);
    if !bytes.iter().all(|&byte| allowed(byte)) {
        return false;
    }
    // Every `%` starts an escape of two hex digits that is not `/`, `\` or a control.
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        let escape = rest.get(at + 1..at + 3).unwrap_or("");
        let Ok(byte) = u8::from_str_radix(escape, 16) else {
            return false;
        };
        if escape.len() != 2 || byte < 0x20 || byte == 0x7f || byte == b'/' || byte == b'\\' {
            return false;
        }
        rest = &rest[at + 3..];
    }
    true
}

fn sign_in_form(
    state: &AppState,
    status: StatusCode,
    redirect_to: &str,
    username: String,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult {
    let csrf = web_sessions::random_token()?;
    let mut response = html(
        status,
        &SignInPage {
            user_name: None,
            csrf: csrf.clone(),
            username,
            redirect_to: redirect_to.to_owned(),
            error,
            notice,
        },
    );
    set_cookie(
        &mut response,
        cookie(state, SIGN_IN_CSRF_COOKIE, &csrf, "/users", None),
    );
    Ok(response)
}

async fn sign_in_page(
    request: HttpRequest,
    query: web::Query<SignInQuery>,
    state: web::Data<AppState>,
) -> PageResult {
    let redirect_to = local_path(query.redirect_to.as_deref());
    if let Some(id) = cookie_value(&request, &state, SESSION_COOKIE) {
        if web_sessions::resume(state.store.as_ref(), &id, Utc::now())
            .await?
            .is_some()
        {
            return Ok(see_other(redirect_to));
        }
    }
    sign_in_form(
        &state,
        StatusCode::OK,
        redirect_to,
        String::new(),
        None,
        None,
    )
}

async fn sign_in(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    // Nobody is signed in yet: the small sign-in form is read at once, bounded in size and time.
    let limits = &state.settings.limits;
    let form = read_form(&request, payload, limits.token_body_limit, &state).await?;
    let redirect_to = local_path(Some(form.get("redirect_to")));
    let expected = cookie_value(&request, &state, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    if !web_sessions::csrf_matches(&expected, form.get(CSRF_FIELD)) {
        return Err(PageError::Csrf);
    }
    let username = form.get("username").trim().to_owned();
    let address = client_address::text_of_request(&request);
    // A failed sign-in counts toward the brute-force limits, per address and username.
    let attempt = Attempt::new(address.clone(), Some(&username), LoginRoute::Web);
    let result = state
        .logins
        .check_password(
            &attempt,
            web_sessions::sign_in(
                state.store.as_ref(),
                &username,
                Password::new(form.get("password").to_owned()),
                address.as_deref(),
                state.settings.session_ttl,
                Utc::now(),
            ),
        )
        .await;
    match result {
        Ok(new) => {
            let mut response = see_other(redirect_to);
            set_cookie(
                &mut response,
                cookie(
                    &state,
                    SESSION_COOKIE,
                    new.id.expose(),
                    "/",
                    Some(state.settings.session_ttl.as_secs()),
                ),
            );
            set_cookie(
                &mut response,
                cookie(&state, SIGN_IN_CSRF_COOKIE, "", "/users", Some(0)),
            );
            Ok(response)
        }
        // One message whatever was wrong, as GitLab says it.
        Err(Error::Unauthorized) => sign_in_form(
            &state,
            StatusCode::UNAUTHORIZED,
            redirect_to,
            username,
            Some("Invalid username or password.".into()),
            None,
        ),
        Err(other) => Err(other.into()),
    }
}

async fn sign_out(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let form = session_form(&request, payload, &state).await?;
    session.check_csrf(&form)?;
    web_sessions::sign_out(state.store.as_ref(), &session.session).await?;
    let mut response = see_other("/users/sign_in");
    set_cookie(
        &mut response,
        cookie(&state, SESSION_COOKIE, "", "/", Some(0)),
    );
    Ok(response)
}

#[derive(serde::Deserialize)]
struct HomeQuery {
    search: Option<String>,
}

async fn home(
    request: HttpRequest,
    query: web::Query<HomeQuery>,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let search = query.search.clone().unwrap_or_default();
    let found = web_sessions::manageable_namespaces(
        state.store.as_ref(),
        &session.caller,
        &session.user,
        &search,
    )
    .await?;
    let namespaces = found
        .into_iter()
        .map(|item| {
            let path = item.namespace.full_path.as_str().to_owned();
            let role = match item.role {
                Some(role) => format!("{role}"),
                None => "admin".to_owned(),
            };
            NamespaceRow {
                kind: kind_word(item.namespace.kind),
                url: settings_url(item.namespace.kind, &path),
                path,
                access: if item.may_create {
                    format!("{role} · may add and revoke")
                } else {
                    format!("{role} · may view")
                },
            }
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &HomePage {
            user_name: session.user_name(),
            csrf: session.csrf(),
            search,
            namespaces,
        },
    ))
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

#[derive(serde::Deserialize)]
struct SettingsQuery {
    revoked: Option<String>,
    resubmitted: Option<String>,
}

/// What the settings page shows besides the token list.
#[derive(Default)]
struct SettingsExtras {
    form: FormValues,
    errors: FieldErrors,
    created: Option<CreatedView>,
    notice: Option<String>,
}

async fn render_settings(
    state: &AppState,
    session: &Session,
    kind: NamespaceKind,
    path: &str,
    status: StatusCode,
    extras: SettingsExtras,
) -> PageResult {
    let (namespace, role) = namespace_of(state, session, kind, path).await?;
    let now = Utc::now();
    let options = ListOptions {
        active_only: true,
        ..ListOptions::default()
    };
    let tokens = deploy_tokens::list(
        state.store.as_ref(),
        &session.caller,
        &namespace,
        options,
        now,
    )
    .await?;
    let may = |operation| {
        permissions::may_manage_tokens(session.caller.principal(), operation, kind, role)
    };
    let path = namespace.full_path.as_str().to_owned();
    let lifetime = crate::service::token_lifecycle::policy_for_owner(
        state.store.as_ref(),
        state.settings.token_lifetime,
        &namespace,
    )
    .await?;
    let page = SettingsPage {
        expiry_rule: lifetime.describe(),
        expires_max: lifetime
            .latest_expiry(now)
            .map(|latest| latest.format("%Y-%m-%d").to_string()),
        user_name: session.user_name(),
        csrf: session.csrf(),
        kind: kind_word(kind),
        create_url: format!("{}/deploy_token/create", pages::settings_url(kind, &path)),
        tokens: tokens.items.iter().map(token_row).collect(),
        may_create: may(TokenOperation::Create),
        may_revoke: may(TokenOperation::Revoke),
        scopes: scope_options(kind, &extras.form.scopes),
        form: extras.form,
        errors: extras.errors,
        created: extras.created,
        nonce: web_sessions::random_token()?,
        notice: extras.notice,
        path,
    };
    Ok(html(status, &page))
}

async fn settings_page(
    request: HttpRequest,
    path: web::Path<String>,
    kind: web::Data<NamespaceKind>,
    query: web::Query<SettingsQuery>,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let notice = if query.revoked.is_some() {
        Some("The deploy token was revoked.".to_owned())
    } else if query.resubmitted.is_some() {
        Some(
            "That form was already submitted: the token exists, and its secret cannot be shown again."
                .to_owned(),
        )
    } else {
        None
    };
    let extras = SettingsExtras {
        notice,
        ..SettingsExtras::default()
    };
    render_settings(&state, &session, **kind, &path, StatusCode::OK, extras).await
}

async fn create_token(
    request: HttpRequest,
    path: web::Path<String>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let session = session(&request, &state).await?;
    let form = session_form(&request, payload, &state).await?;
    session.check_csrf(&form)?;
    let (namespace, _) = namespace_of(&state, &session, kind, &path).await?;
    let store = state.store.as_ref();
    // The role first: a caller who may not add learns nothing from validation errors.
    let authorized =
        deploy_tokens::authorize(store, &session.caller, TokenOperation::Create, &namespace)
            .await?;
    let values = FormValues {
        name: form.get("name").to_owned(),
        expires_at: form.get("expires_at").trim().to_owned(),
        username: form.get("username").to_owned(),
        scopes: form.all("scopes"),
        ip_restriction_ranges: form.get("ip_restriction_ranges").trim().to_owned(),
        repository_patterns: form.get("repository_patterns").trim().to_owned(),
    };
    let now = Utc::now();
    let mut errors = FieldErrors::default();
    let expires_at = match values.expires_at.as_str() {
        "" => None,
        text => match parse_expires_at(text) {
            Ok(at) => Some(at),
            Err(_) => {
                errors.set("expires_at", "must be a date (YYYY-MM-DD)".into());
                None
            }
        },
    };
    let invalid = |errors: FieldErrors, form: FormValues| SettingsExtras {
        form,
        errors,
        ..SettingsExtras::default()
    };
    let request_body = DeployTokenRequest {
        name: values.name.clone(),
        username: Some(values.username.clone()),
        scopes: values.scopes.clone(),
        expires_at,
        ip_restriction_ranges: vec![values.ip_restriction_ranges.clone()],
        repository_patterns: values
            .repository_patterns
            .split(',')
            .map(str::trim)
            .filter(|pattern| !pattern.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    // Every field's error at once, not one per round trip.
    for error in deploy_tokens::field_errors(&request_body, &namespace, now) {
        errors.set(error.field, error.message);
    }
    if errors.count() > 0 {
        let extras = invalid(errors, values);
        return render_settings(
            &state,
            &session,
            kind,
            &path,
            StatusCode::UNPROCESSABLE_ENTITY,
            extras,
        )
        .await;
    }
    // A reload of the answer re-posts the form: create nothing, show no secret.
    if !web_sessions::first_submission(store, &session.session, form.get("form_nonce")).await? {
        return Ok(see_other(&format!(
            "{}?resubmitted=1",
            pages::settings_url(kind, namespace.full_path.as_str())
        )));
    }
    match deploy_tokens::create(
        store,
        &authorized,
        request_body,
        state.settings.token_lifetime,
        &state.token_formats,
        &state.ci_key,
        now,
    )
    .await
    {
        Ok(created) => {
            let extras = SettingsExtras {
                created: Some(CreatedView {
                    username: created.token.username.clone(),
                    secret: created.secret.expose().to_owned(),
                }),
                notice: (!created.warnings.is_empty()).then(|| created.warnings.join(" ")),
                ..SettingsExtras::default()
            };
            render_settings(&state, &session, kind, &path, StatusCode::CREATED, extras).await
        }
        Err(Error::Validation(error)) => {
            errors.set(error.field, error.message);
            let extras = invalid(errors, values);
            render_settings(
                &state,
                &session,
                kind,
                &path,
                StatusCode::UNPROCESSABLE_ENTITY,
                extras,
            )
            .await
        }
        Err(Error::Conflict(message)) => {
            errors.set("username", message);
            let extras = invalid(errors, values);
            render_settings(
                &state,
                &session,
                kind,
                &path,
                StatusCode::UNPROCESSABLE_ENTITY,
                extras,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

async fn token_page(
    request: HttpRequest,
    path: web::Path<(String, i64)>,
    kind: web::Data<NamespaceKind>,
    state: web::Data<AppState>,
) -> PageResult {
    let (path, id) = path.into_inner();
    let session = session(&request, &state).await?;
    render_token_page(
        &state,
        &session,
        **kind,
        &path,
        id,
        rotation::Outcome::default(),
    )
    .await
}

/// The token's detail page; after a rotation, with its new secret (shown this once) or the
/// form's error.
async fn render_token_page(
    state: &AppState,
    session: &Session,
    kind: NamespaceKind,
    path: &str,
    id: i64,
    outcome: rotation::Outcome,
) -> PageResult {
    let (namespace, role) = namespace_of(state, session, kind, path).await?;
    let (token, events) =
        deploy_tokens::audit_trail(state.store.as_ref(), &session.caller, &namespace, id).await?;
    let now = Utc::now();
    let created_by = events
        .iter()
        .find(|event| event.action == crate::domain::AuditAction::DeployTokenCreate)
        .map(|event| event.actor.clone());
    let (_, registry_events) = crate::service::registry_events::of_deploy_token(
        state.store.as_ref(),
        &session.caller,
        Some(&namespace),
        id,
        1,
        REGISTRY_EVENTS_SHOWN,
    )
    .await?;
    // The last real registry action's address, else the last token issue's.
    let last_used_from = registry_events
        .items
        .first()
        .and_then(|event| event.address.clone())
        .or_else(|| {
            events
                .iter()
                .rev()
                .find(|event| event.action == crate::domain::AuditAction::RegistryTokenIssue)
                .and_then(|event| event.ip_address.clone())
        });
    let events_truncated = events.len() > AUDIT_EVENTS_SHOWN;
    let rows = events
        .iter()
        .rev()
        .take(AUDIT_EVENTS_SHOWN)
        .map(event_row)
        .collect();
    let status = if token.revoked {
        "Revoked"
    } else if token.is_expired(now) {
        "Expired"
    } else {
        "Active"
    };
    let full_path = namespace.full_path.as_str();
    let may_revoke = !token.revoked
        && permissions::may_manage_tokens(
            session.caller.principal(),
            TokenOperation::Revoke,
            kind,
            role,
        );
    let may_rotate = !token.revoked
        && permissions::may_manage_tokens(
            session.caller.principal(),
            TokenOperation::Create,
            kind,
            role,
        );
    let status_code = outcome.status();
    let page = TokenPage {
        user_name: session.user_name(),
        csrf: session.csrf(),
        kind: kind_word(kind),
        path: full_path.to_owned(),
        settings_url: pages::settings_url(kind, full_path),
        revoke_url: format!("{}/revoke", token_url(kind, full_path, token.id)),
        rotation: rotation::view(
            state,
            &token,
            may_rotate,
            format!("{}/rotate", token_url(kind, full_path, token.id)),
            outcome,
            now,
        )
        .await?,
        token: token_row(&token),
        status,
        may_revoke,
        created_by,
        last_used_from,
        events: rows,
        events_truncated,
        registry_events: registry_events
            .items
            .iter()
            .map(pages::registry_event_row)
            .collect(),
        registry_events_total: registry_events.total,
    };
    Ok(html(status_code, &page))
}

async fn revoke_token(
    request: HttpRequest,
    path: web::Path<(String, i64)>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let (path, id) = path.into_inner();
    let session = session(&request, &state).await?;
    let form = session_form(&request, payload, &state).await?;
    session.check_csrf(&form)?;
    let (namespace, _) = namespace_of(&state, &session, kind, &path).await?;
    let store = state.store.as_ref();
    let authorized =
        deploy_tokens::authorize(store, &session.caller, TokenOperation::Revoke, &namespace)
            .await?;
    // Only a token of this namespace: `revoke` looks for it among the owner's.
    deploy_tokens::revoke(store, &authorized, id, Utc::now()).await?;
    Ok(see_other(&format!(
        "{}?revoked=1",
        pages::settings_url(kind, namespace.full_path.as_str())
    )))
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn sign_in_redirects_only_to_local_paths_of_a_strict_grammar() {
        for local in [
            "/",
            "/acme/web/-/settings/repository",
            "/groups/acme/-/deploy_tokens/7",
            "/?search=web%20app",
            "/acme/we%C3%BCb",
        ] {
            assert_eq!(local_path(Some(local)), local);
        }
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%2f/evil.example",
            "/%5C/evil.example",
            "/%5c%5cevil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/\r\nSet-Cookie: x=1",
            "/x\ny",
            "javascript:alert(1)",
            "https://evil.example",
            "evil.example",
            "/ /evil.example",
            "/%",
            "/%zz",
            "/%0",
            "",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(local_path(None), "/");
    }
}
