//! The GitLab-compatible management API under `/api/v4` (DOMAIN.md "GitLab-compatible REST
//! API"), so that scripts written against GitLab move over unchanged. Handlers authenticate
//! the caller (a personal access token), parse and render; the rules live in `service` and
//! `access::permissions`. One handler also orders the checks: `create_token` asks
//! `deploy_tokens::authorize` before it parses the body, so that a caller without the role
//! learns nothing from validation errors.

use actix_web::http::header::{self, ContentType};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use crate::auth::{api_token_from_headers, authenticate_personal_access_token};
use crate::client_address;
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::{NamespaceKind, ValidationError};
use crate::error::{ApiError, Error};
use crate::metrics::LoginRoute;
use crate::routes::route_list::RouteList;
use crate::service::caller::Caller;
use crate::service::deploy_tokens::{self, ListOptions};
use crate::service::login_guard::Attempt;
use crate::service::namespaces::{self, NamespaceRef};
use crate::state::AppState;
use crate::store::Page;
use crate::views;

type ApiResult = Result<HttpResponse, ApiError>;

pub fn register(routes: &mut RouteList<'_>) {
    // Before `/api/v4/{kind}/{id}`, which `admin/token` would match.
    crate::routes::leaks::register_admin(routes);
    routes.resource("/api/v4/user").get(current_user).done();
    crate::routes::preferences::register_api(routes);
    routes
        .resource("/api/v4/deploy_tokens")
        .get(list_instance_tokens)
        .done();
    routes
        .resource("/api/v4/projects/{id}/ci_deploy_credentials")
        .get(ci_deploy_credentials)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}")
        .get(get_namespace)
        .to(Method::PUT, update_namespace)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}/deploy_tokens")
        .get(list_tokens)
        .post(create_token)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}/deploy_tokens/{token_id}")
        .get(get_token)
        .to(Method::DELETE, delete_token)
        .to(Method::PUT, crate::routes::restrictions::update_token)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}/deploy_tokens/{token_id}/events")
        .get(token_events)
        .done();
    crate::routes::workload_identities::register(routes);
    crate::routes::token_lifecycle::register(routes);
    // Anything else under /api/v4 is GitLab's JSON 404, not the pages' 404.
    routes
        .config()
        .service(web::scope("/api/v4").default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError(Error::not_found("Route", "")))
        })));
}

/// The authenticated person behind a request.
pub(super) async fn caller(request: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    caller_and_token(request, state)
        .await
        .map(|(caller, _)| caller)
}

/// The authenticated person and the personal access token they presented.
pub(super) async fn caller_and_token(
    request: &HttpRequest,
    state: &AppState,
) -> Result<(Caller, crate::domain::PersonalAccessToken), ApiError> {
    let secret = api_token_from_headers(request.headers()).ok_or(Error::Unauthorized)?;
    let attempt = Attempt::new(
        client_address::text_of_request(request),
        None,
        LoginRoute::Api,
    );
    let (user, token) = state
        .logins
        .check_secret(&attempt, async {
            let now = Utc::now();
            let (user, token) = authenticate_personal_access_token(
                state.store.as_ref(),
                &state.token_formats,
                &secret,
                now,
            )
            .await?;
            crate::service::restrictions::admit_personal_access_token_address(
                &token,
                &user,
                client_address::of_request(request),
                &state.usage,
                &state.metrics,
                now,
            )?;
            Ok((user, token))
        })
        .await?;
    crate::routes::observe::identify(request, Some(token.id), &user.username);
    let caller = Caller::user(
        user,
        token.can_write(),
        crate::client_address::text_of_request(request),
    );
    Ok((caller, token))
}

pub(super) fn namespace_kind(segment: &str) -> Result<NamespaceKind, ApiError> {
    match segment {
        "projects" => Ok(NamespaceKind::Project),
        "groups" => Ok(NamespaceKind::Group),
        _ => Err(Error::not_found("Route", segment).into()),
    }
}

/// `:id` is a number or a URL-encoded full path (`acme%2Fweb`), which actix's `Path` extractor
/// has decoded once already: decoding again would let `acme%252Fweb` name `acme/web`.
pub(super) fn namespace_ref(decoded: &str) -> NamespaceRef {
    NamespaceRef::parse(decoded)
}

/// `/{kind}/{id}...`: the caller, the kind of namespace and how it is named.
pub(super) async fn namespace_route(
    request: &HttpRequest,
    path: web::Path<(String, String)>,
    state: &AppState,
) -> Result<(Caller, NamespaceKind, NamespaceRef), ApiError> {
    let (kind, id) = path.into_inner();
    let kind = namespace_kind(&kind)?;
    let caller = caller(request, state).await?;
    Ok((caller, kind, namespace_ref(&id)))
}

/// The base of `web_url` and `Link`: `public_url`, else what the request was sent to. The
/// `X-Forwarded-Host` / `-Proto` headers are believed only from a trusted proxy: from anyone
/// else they would let a client put another site's address into the answers.
pub(super) fn public_url(state: &AppState, request: &HttpRequest) -> String {
    if let Some(url) = &state.settings.server.public_url {
        return url.clone();
    }
    let from_trusted_proxy = request
        .peer_addr()
        .is_some_and(|peer| state.settings.server.trusted_proxies.contains(peer.ip()));
    if from_trusted_proxy {
        let info = request.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if state.settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        })
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match host {
        Some(host) => format!("{scheme}://{host}"),
        None => format!("{scheme}://{}", state.settings.server.listen),
    }
}

async fn current_user(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    let caller = caller(&request, &state).await?;
    match &caller.identity {
        crate::service::caller::Identity::User { user, .. } => {
            Ok(HttpResponse::Ok().json(views::user(user)))
        }
        crate::service::caller::Identity::Operator { .. } => Err(Error::Unauthorized.into()),
    }
}

/// `GET /projects/:id/ci_deploy_credentials`: what a CI system injects into the project's
/// jobs as `CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD` (the active `gitlab-deploy-token` of the
/// project, else of its parent group). Admin personal access token with the `api` scope.
async fn ci_deploy_credentials(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult {
    let caller = caller(&request, &state).await?;
    let reference = namespace_ref(&path.into_inner());
    let now = Utc::now();
    let credentials = crate::service::ci_credentials::for_project(
        state.store.as_ref(),
        &state.ci_key,
        &caller,
        &reference,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(views::ci_credentials(&credentials, now)))
}

async fn get_namespace(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    let (namespace, _) =
        namespaces::find_visible(state.store.as_ref(), &caller, kind, &reference).await?;
    let view = views::namespace(&namespace, &public_url(&state, &request));
    if kind == NamespaceKind::Group {
        return Ok(HttpResponse::Ok().json(group_view(&state, view, &namespace).await?));
    }
    Ok(HttpResponse::Ok().json(view))
}

/// A group as `GET` and `PUT /groups/:id` answer it: with its `ip_restriction_ranges` and its
/// limits on new tokens.
async fn group_view(
    state: &AppState,
    view: Value,
    group: &crate::domain::Namespace,
) -> Result<Value, ApiError> {
    let ranges = crate::service::restrictions::group_ip_ranges(state.store.as_ref(), group).await?;
    let mut value = crate::routes::restrictions::with_ranges(view, &ranges);
    crate::routes::token_lifecycle::add_group_limits(&mut value, state, group).await?;
    Ok(value)
}

/// `PUT /projects/:id` with `visibility` (GitLab's "Edit a project"; the one setting kept
/// here), in the query string, a form or a JSON body.
async fn update_namespace(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    // Only now the body: a caller without credentials cannot make us wait for one.
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    if kind == NamespaceKind::Group {
        // Every field checked before anything is written: a bad value changes nothing.
        let ranges = crate::routes::restrictions::ranges_field(&request, &body)?;
        let limits = crate::routes::token_lifecycle::group_limits_change(&request, &body)?;
        if ranges.is_none() && limits.is_none() {
            return Err(Error::MissingParameter(
                "ip_restriction_ranges, max_token_lifetime_days or require_token_expiry",
            )
            .into());
        }
        let mut group = None;
        if let Some(limits) = limits {
            group = Some(
                crate::routes::token_lifecycle::set_group_limits(
                    &state, &caller, &reference, limits,
                )
                .await?,
            );
        }
        if let Some(ranges) = ranges {
            group = Some(
                crate::service::restrictions::set_group_ip_ranges(
                    state.store.as_ref(),
                    &caller,
                    &reference,
                    ranges,
                    Utc::now(),
                )
                .await?,
            );
        }
        let group = group.ok_or_else(|| Error::internal("a group update changed nothing"))?;
        let view = views::namespace(&group, &public_url(&state, &request));
        return Ok(HttpResponse::Ok().json(group_view(&state, view, &group).await?));
    }
    let visibility =
        parameter(&request, &body, "visibility")?.ok_or(Error::MissingParameter("visibility"))?;
    let visibility = crate::domain::Visibility::parse(&visibility).map_err(Error::from)?;
    let project =
        namespaces::set_visibility(state.store.as_ref(), &caller, &reference, visibility).await?;
    Ok(HttpResponse::Ok().json(views::namespace(&project, &public_url(&state, &request))))
}

/// A parameter from the query string, else from a JSON or form body, as GitLab takes them
/// (a JSON `true` or `12` reads as the text `true`, `12`).
pub(super) fn parameter(
    request: &HttpRequest,
    body: &[u8],
    name: &str,
) -> Result<Option<String>, ApiError> {
    let from_pairs = |pairs: Vec<(String, String)>| {
        pairs
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    };
    let query: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string())
        .map_err(|_| Error::InvalidRequest("the query is not valid URL encoding".into()))?;
    if let Some(value) = from_pairs(query) {
        return Ok(Some(value));
    }
    if body.is_empty() {
        return Ok(None);
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
        return match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(scalar @ (Value::Bool(_) | Value::Number(_))) => Ok(Some(scalar.to_string())),
            Some(_) => Err(Error::InvalidRequest(format!("{name} is invalid")).into()),
        };
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| Error::InvalidRequest("the form is not valid URL encoding".into()))?;
    Ok(from_pairs(pairs))
}

/// GitLab's pagination parameters.
pub(super) fn list_options(request: &HttpRequest) -> Result<ListOptions, ApiError> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string())
        .map_err(|_| Error::InvalidRequest("the query string is not valid URL encoding".into()))?;
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &'static str, default: u64| -> Result<u64, ApiError> {
        match get(key) {
            None | Some("") => Ok(default),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::InvalidRequest(format!("{key} is invalid")).into()),
        }
    };
    let active_only = match get("active") {
        None | Some("") => false,
        Some(text) => parse_gitlab_bool(text)
            .ok_or_else(|| Error::InvalidRequest("active is invalid".into()))?,
    };
    let page = number("page", 1)?;
    // GitLab clamps per_page to 100 rather than refusing larger values.
    let per_page = number("per_page", 20)?.min(100);
    // The offset must fit the database's signed 64-bit integers.
    if (page - 1)
        .checked_mul(per_page)
        .is_none_or(|offset| offset > i64::MAX as u64)
    {
        return Err(Error::InvalidRequest("page is invalid".into()).into());
    }
    Ok(ListOptions {
        active_only,
        page,
        per_page,
    })
}

/// A boolean parameter as GitLab (Grape) reads it: `true`/`false`, `1`/`0`, `t`/`f`,
/// `yes`/`no`, `y`/`n`, `on`/`off`, in any case. python-gitlab sends `True`.
pub(super) fn parse_gitlab_bool(text: &str) -> Option<bool> {
    const TRUE: [&str; 6] = ["true", "1", "t", "yes", "y", "on"];
    const FALSE: [&str; 6] = ["false", "0", "f", "no", "n", "off"];
    let text = text.trim();
    if TRUE.iter().any(|word| word.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|word| word.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// The list as JSON with GitLab's pagination headers.
pub(super) fn paginated(
    request: &HttpRequest,
    base_url: &str,
    options: ListOptions,
    page: Page<Value>,
) -> HttpResponse {
    let total_pages = page.total.div_ceil(options.per_page).max(1);
    let next = (options.page < total_pages).then_some(options.page + 1);
    let prev = (options.page > 1).then(|| (options.page - 1).min(total_pages));
    let link_to = |number: u64, rel: &str| {
        let mut params: Vec<(String, String)> =
            serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
        params.retain(|(key, _)| key != "page" && key != "per_page");
        params.push(("page".into(), number.to_string()));
        params.push(("per_page".into(), options.per_page.to_string()));
        let query = serde_urlencoded::to_string(&params).unwrap_or_default();
        format!("<{base_url}{}?{query}>; rel=\"{rel}\"", request.path())
    };
    let mut links = Vec::new();
    if let Some(prev) = prev {
        links.push(link_to(prev, "prev"));
    }
    if let Some(next) = next {
        links.push(link_to(next, "next"));
    }
    links.push(link_to(1, "first"));
    links.push(link_to(total_pages, "last"));
    let optional = |value: Option<u64>| value.map(|n| n.to_string()).unwrap_or_default();
    HttpResponse::Ok()
        .insert_header(("x-page", options.page.to_string()))
        .insert_header(("x-per-page", options.per_page.to_string()))
        .insert_header(("x-total", page.total.to_string()))
        .insert_header(("x-total-pages", total_pages.to_string()))
        .insert_header(("x-next-page", optional(next)))
        .insert_header(("x-prev-page", optional(prev)))
        .insert_header((header::LINK, links.join(", ")))
        .json(page.items)
}

fn token_page(page: Page<crate::domain::DeployToken>) -> Page<Value> {
    let now = Utc::now();
    Page {
        total: page.total,
        items: page
            .items
            .iter()
            .map(|t| views::deploy_token(t, now))
            .collect(),
    }
}

async fn list_instance_tokens(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    let caller = caller(&request, &state).await?;
    let options = list_options(&request)?;
    let page = deploy_tokens::list_all(state.store.as_ref(), &caller, options, Utc::now()).await?;
    Ok(paginated(
        &request,
        &public_url(&state, &request),
        options,
        token_page(page),
    ))
}

async fn list_tokens(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    let options = list_options(&request)?;
    let owner = namespaces::find(state.store.as_ref(), kind, &reference).await?;
    let page =
        deploy_tokens::list(state.store.as_ref(), &caller, &owner, options, Utc::now()).await?;
    Ok(paginated(
        &request,
        &public_url(&state, &request),
        options,
        token_page(page),
    ))
}

/// `/{kind}/{id}/deploy_tokens/{token_id}`: the caller, the owner and the token id.
pub(super) async fn token_route(
    request: &HttpRequest,
    path: web::Path<(String, String, String)>,
    state: &AppState,
) -> Result<(Caller, crate::domain::Namespace, i64), ApiError> {
    let (kind, id, token_id) = path.into_inner();
    let kind = namespace_kind(&kind)?;
    let token_id = token_id
        .parse::<i64>()
        .map_err(|_| Error::not_found("Deploy token", &token_id))?;
    let caller = caller(request, state).await?;
    let owner = namespaces::find(state.store.as_ref(), kind, &namespace_ref(&id)).await?;
    Ok((caller, owner, token_id))
}

async fn get_token(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, owner, token_id) = token_route(&request, path, &state).await?;
    let token = deploy_tokens::get(state.store.as_ref(), &caller, &owner, token_id).await?;
    Ok(HttpResponse::Ok().json(views::deploy_token(&token, Utc::now())))
}

/// What the token did at the registry (its notifications), the latest first, paginated.
async fn token_events(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, owner, token_id) = token_route(&request, path, &state).await?;
    let options = list_options(&request)?;
    let (_, page) = crate::service::registry_events::of_deploy_token(
        state.store.as_ref(),
        &caller,
        Some(&owner),
        token_id,
        options.page,
        options.per_page,
    )
    .await?;
    let issued = crate::service::registry_events::issued_tokens_behind(
        state.store.as_ref(),
        token_id,
        &page.items,
        state.settings.signing.token_ttl,
    )
    .await?;
    let page = Page {
        total: page.total,
        items: page
            .items
            .iter()
            .enumerate()
            .map(|(index, event)| {
                views::registry_event(event, issued.get(index).and_then(Option::as_ref))
            })
            .collect(),
    };
    Ok(paginated(
        &request,
        &public_url(&state, &request),
        options,
        page,
    ))
}

async fn delete_token(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, owner, token_id) = token_route(&request, path, &state).await?;
    let authorized = deploy_tokens::authorize(
        state.store.as_ref(),
        &caller,
        crate::access::permissions::TokenOperation::Revoke,
        &owner,
    )
    .await?;
    deploy_tokens::delete(state.store.as_ref(), &authorized, token_id, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn create_token(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    let owner = namespaces::find(state.store.as_ref(), kind, &reference).await?;
    // Permission before validation: a caller without the role learns nothing from errors.
    let authorized = deploy_tokens::authorize(
        state.store.as_ref(),
        &caller,
        crate::access::permissions::TokenOperation::Create,
        &owner,
    )
    .await?;
    // Only now the body: a caller without credentials or the role cannot make us read one.
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let token_request = parse_create_body(content_type, &body)?;
    let now = Utc::now();
    let created = deploy_tokens::create(
        state.store.as_ref(),
        &authorized,
        token_request,
        state.settings.tokens.lifetime,
        &state.token_formats,
        &state.ci_key,
        now,
    )
    .await?;
    Ok(HttpResponse::Created()
        .content_type(ContentType::json())
        .json(views::created_deploy_token(
            &created.token,
            created.secret.expose(),
            now,
        )))
}

/// The create body, as JSON or as a form; `scopes` as an array, `scopes[]` repeated, or a
/// comma list; `expires_at` as a date or a date-time.
pub fn parse_create_body(content_type: &str, body: &[u8]) -> Result<DeployTokenRequest, ApiError> {
    let content_type = content_type.to_ascii_lowercase();
    let fields = if content_type.starts_with("application/json") {
        json_fields(body)?
    } else {
        // curl --data sends a form; an absent Content-Type is treated the same way.
        form_fields(body)?
    };
    let name = fields
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or(Error::MissingParameter("name"))?;
    if fields.scopes.is_empty() {
        return Err(Error::MissingParameter("scopes").into());
    }
    let expires_at = match fields.expires_at.filter(|text| !text.trim().is_empty()) {
        Some(text) => Some(parse_expires_at(&text).map_err(|_| {
            Error::from(ValidationError::new(
                "expires_at",
                "is invalid: use YYYY-MM-DD or an ISO 8601 date-time",
            ))
        })?),
        None => None,
    };
    Ok(DeployTokenRequest {
        name,
        username: fields.username,
        scopes: fields.scopes,
        expires_at,
        ip_restriction_ranges: fields.ip_restriction_ranges,
        repository_patterns: fields.repository_patterns,
    })
}

#[derive(Default)]
struct CreateFields {
    name: Option<String>,
    username: Option<String>,
    scopes: Vec<String>,
    expires_at: Option<String>,
    ip_restriction_ranges: Vec<String>,
    repository_patterns: Vec<String>,
}

/// A JSON field that is a list of strings or one string (a comma list, as GitLab accepts).
pub(super) fn string_list(value: &Value, key: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError(Error::InvalidRequest(format!("{key} is invalid")));
    match value.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(list)) => Ok(vec![list.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn json_fields(body: &[u8]) -> Result<CreateFields, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| Error::InvalidRequest(format!("the body is not valid JSON: {error}")))?;
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(Error::InvalidRequest(format!("{key} is invalid")).into()),
        }
    };
    Ok(CreateFields {
        name: text("name")?,
        username: text("username")?,
        scopes: string_list(&value, "scopes")?,
        expires_at: text("expires_at")?,
        ip_restriction_ranges: string_list(&value, "ip_restriction_ranges")?,
        // One pattern may not hold a comma, so a string is one pattern per comma-separated
        // entry, as for scopes.
        repository_patterns: split_commas(string_list(&value, "repository_patterns")?),
    })
}

fn form_fields(body: &[u8]) -> Result<CreateFields, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| Error::InvalidRequest("the form is not valid URL encoding".into()))?;
    let mut fields = CreateFields::default();
    for (key, value) in pairs {
        match key.as_str() {
            "name" => fields.name = Some(value),
            "username" => fields.username = Some(value),
            "expires_at" => fields.expires_at = Some(value),
            "scopes" | "scopes[]" => fields.scopes.push(value),
            "ip_restriction_ranges" | "ip_restriction_ranges[]" => {
                fields.ip_restriction_ranges.push(value)
            }
            "repository_patterns" | "repository_patterns[]" => {
                fields.repository_patterns.push(value)
            }
            _ => {}
        }
    }
    fields.repository_patterns = split_commas(fields.repository_patterns);
    Ok(fields)
}

fn split_commas(entries: Vec<String>) -> Vec<String> {
    entries
        .iter()
        .flat_map(|entry| entry.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_gitlab_bool;

    #[test]
    fn booleans_are_read_as_gitlab_reads_them() {
        for text in [
            "true", "True", "TRUE", "1", "t", "T", "yes", "Yes", "y", "on",
        ] {
            assert_eq!(parse_gitlab_bool(text), Some(true), "{text}");
        }
        for text in ["false", "False", "0", "f", "F", "no", "NO", "n", "off"] {
            assert_eq!(parse_gitlab_bool(text), Some(false), "{text}");
        }
        for text in ["", "2", "yes please", "truee", "nil"] {
            assert_eq!(parse_gitlab_bool(text), None, "{text}");
        }
    }
}
