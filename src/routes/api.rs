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

use crate::auth::{api_token_from_headers, authenticate_personal_access_token};
use crate::client_address;
use crate::domain::NamespaceKind;
use crate::error::{ApiError, Error};
use crate::metrics::LoginRoute;
use crate::routes::requests::{
    CreateDeployTokenBody, DeployTokenUpdate, GroupLimitsParams, ListQuery, ProjectUpdate, Sources,
};
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
        &state.token_formats,
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
            Ok(HttpResponse::Ok().json(views::UserView::new(user)))
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
        .json(views::CiCredentialsView::new(&credentials, now)))
}

async fn get_namespace(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    let (namespace, _) =
        namespaces::find_visible(state.store.as_ref(), &caller, kind, &reference).await?;
    namespace_answer(&state, &request, &namespace).await
}

/// A namespace as `GET` and `PUT /{projects|groups}/:id` answer it: a group with its
/// `ip_restriction_ranges` and its limits on new tokens.
async fn namespace_answer(
    state: &AppState,
    request: &HttpRequest,
    namespace: &crate::domain::Namespace,
) -> ApiResult {
    let public_url = public_url(state, request);
    if namespace.kind == NamespaceKind::Group {
        let store = state.store.as_ref();
        let ranges = crate::service::restrictions::group_ip_ranges(store, namespace).await?;
        let limits = crate::service::token_lifecycle::group_limits(store, namespace).await?;
        let settings = views::GroupSettingsView::new(&ranges, limits);
        let view = views::GroupView::new(namespace, &public_url, Some(settings));
        return Ok(HttpResponse::Ok().json(view));
    }
    Ok(HttpResponse::Ok().json(views::ProjectView::new(namespace, &public_url)))
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
    let sources = Sources::new(&request, &body);
    if kind == NamespaceKind::Group {
        // Every field checked before anything is written: a bad value changes nothing.
        let ranges = DeployTokenUpdate::read(&sources)?.ranges()?;
        let limits = GroupLimitsParams::read(&sources)?.change()?;
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
        return namespace_answer(&state, &request, &group).await;
    }
    let visibility = ProjectUpdate::read(&sources)?.visibility()?;
    let project =
        namespaces::set_visibility(state.store.as_ref(), &caller, &reference, visibility).await?;
    namespace_answer(&state, &request, &project).await
}

/// GitLab's pagination parameters.
pub(super) fn list_options(request: &HttpRequest) -> Result<ListOptions, ApiError> {
    ListQuery::parse(request.query_string())?.into_options()
}

/// The list as JSON with GitLab's pagination headers.
pub(super) fn paginated<T: serde::Serialize>(
    request: &HttpRequest,
    base_url: &str,
    options: ListOptions,
    page: Page<T>,
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

fn token_page(page: &Page<crate::domain::DeployToken>) -> Page<views::DeployTokenView<'_>> {
    let now = Utc::now();
    Page {
        total: page.total,
        items: page
            .items
            .iter()
            .map(|token| views::DeployTokenView::new(token, now))
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
        token_page(&page),
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
        token_page(&page),
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
    Ok(HttpResponse::Ok().json(views::DeployTokenView::new(&token, Utc::now())))
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
                views::RegistryEventView::new(event, issued.get(index).and_then(Option::as_ref))
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
    let token_request = CreateDeployTokenBody::parse(content_type, &body)?.into_request()?;
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
        .json(views::CreatedDeployTokenView::new(
            &created.token,
            created.secret.expose(),
            now,
        )))
}
