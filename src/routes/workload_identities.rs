//! `/api/v4/{projects|groups}/:id/workload_identities[/:wid]`: create, list, get and delete
//! workload identity policies, with the roles of deploy tokens. Registered inside the
//! `/api/v4` scope of `routes::api`, whose caller and namespace parsing it shares.

use crate::routes::route_list::RouteList;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use crate::access::permissions::TokenOperation;
use crate::domain::workload_identity::WorkloadIdentityRequest;
use crate::error::{ApiError, Error};
use crate::routes::api::{
    list_options, namespace_kind, namespace_ref, namespace_route, paginated, public_url,
};
use crate::service::namespaces;
use crate::service::workload_identity;
use crate::state::AppState;
use crate::views;

type ApiResult = Result<HttpResponse, ApiError>;

pub fn register(routes: &mut RouteList<'_>) {
    routes
        .resource("/api/v4/{kind}/{id}/workload_identities")
        .get(list)
        .post(create)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}/workload_identities/{policy_id}")
        .get(get)
        .to(Method::DELETE, delete)
        .done();
    routes
        .resource("/api/v4/{kind}/{id}/workload_identities/{policy_id}/events")
        .get(events)
        .done();
}

async fn list(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    let owner = namespaces::find(state.store.as_ref(), kind, &reference).await?;
    let policies = workload_identity::list(state.store.as_ref(), &caller, &owner).await?;
    let body: Vec<_> = policies
        .iter()
        .map(views::WorkloadIdentityView::new)
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn create(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, kind, reference) = namespace_route(&request, path, &state).await?;
    let owner = namespaces::find(state.store.as_ref(), kind, &reference).await?;
    // Permission before the body, as for deploy tokens: no validation messages for strangers.
    crate::service::deploy_tokens::authorize(
        state.store.as_ref(),
        &caller,
        TokenOperation::Create,
        &owner,
    )
    .await?;
    let body = crate::routes::body::read_api_body(&request, payload, &state).await?;
    let policy_request: WorkloadIdentityRequest = serde_json::from_slice(&body).map_err(|error| {
        Error::InvalidRequest(format!(
            "the body must be a JSON object with name, issuer, audience, conditions (claim: value or [values]), scopes and max_ttl ({error})"
        ))
    })?;
    let created = workload_identity::create(
        state.store.as_ref(),
        &caller,
        &owner,
        policy_request,
        &state.settings.oidc_issuers,
        Utc::now(),
    )
    .await?;
    Ok(
        HttpResponse::Created().json(views::CreatedWorkloadIdentityView {
            policy: views::WorkloadIdentityView::new(&created.policy),
            warnings: &created.warnings,
        }),
    )
}

/// `/{kind}/{id}/workload_identities/{policy_id}`: the caller, the owner and the policy id.
async fn policy_route(
    request: &HttpRequest,
    path: web::Path<(String, String, String)>,
    state: &AppState,
) -> Result<
    (
        crate::service::caller::Caller,
        crate::domain::Namespace,
        i64,
    ),
    ApiError,
> {
    let (kind, id, policy_id) = path.into_inner();
    let kind = namespace_kind(&kind)?;
    let policy_id = policy_id
        .parse::<i64>()
        .map_err(|_| Error::not_found("Workload identity", &policy_id))?;
    let caller = crate::routes::api::caller(request, state).await?;
    let owner = namespaces::find(state.store.as_ref(), kind, &namespace_ref(&id)).await?;
    Ok((caller, owner, policy_id))
}

async fn get(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, owner, policy_id) = policy_route(&request, path, &state).await?;
    let policy = workload_identity::get(state.store.as_ref(), &caller, &owner, policy_id).await?;
    Ok(HttpResponse::Ok().json(views::WorkloadIdentityView::new(&policy)))
}

async fn delete(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, owner, policy_id) = policy_route(&request, path, &state).await?;
    workload_identity::delete(state.store.as_ref(), &caller, &owner, policy_id, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What the policy's jobs and pods did at the registry (its notifications), paginated as
/// a deploy token's events are.
async fn events(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult {
    let (caller, owner, policy_id) = policy_route(&request, path, &state).await?;
    let options = list_options(&request)?;
    let page = crate::service::registry_events::of_workload_identity(
        state.store.as_ref(),
        &caller,
        &owner,
        policy_id,
        options.page,
        options.per_page,
    )
    .await?;
    let page = crate::store::Page {
        total: page.total,
        items: page
            .items
            .iter()
            .map(|event| views::RegistryEventView::new(event, None))
            .collect(),
    };
    Ok(paginated(
        &request,
        &public_url(&state, &request),
        options,
        page,
    ))
}
