//! `POST /oauth/token` with the token-exchange grant (RFC 8693): a CI job or pod trades its
//! OIDC token for a short-lived credential that works wherever a deploy token does. OAuth
//! error bodies (`error::OAuthError`); the reasons are in the log only.

use crate::routes::route_list::RouteList;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use crate::client_address;
use crate::error::{Error, OAuthError};
use crate::metrics::LoginRoute;
use crate::routes::token::{first, form_pairs, required};
use crate::service::login_guard::Attempt;
use crate::service::workload_identity::{self, ExchangeRequest};
use crate::state::AppState;

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub fn register(routes: &mut RouteList<'_>) {
    routes.resource("/oauth/token").post(token).done();
}

async fn token(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let limits = &state.settings.limits;
    let body = crate::routes::body::read_limited(
        request.headers(),
        payload,
        limits.token_body_limit,
        limits.request_body_timeout,
    )
    .await?;
    let params = form_pairs(&body)?;
    let grant_type = required(&params, "grant_type")?;
    if grant_type != TOKEN_EXCHANGE_GRANT {
        return Err(Error::UnsupportedGrantType(grant_type.to_owned()).into());
    }
    let token_type = required(&params, "subject_token_type")?;
    if token_type != workload_identity::JWT_TOKEN_TYPE
        && token_type != workload_identity::ID_TOKEN_TYPE
    {
        return Err(Error::InvalidRequest(format!(
            "subject_token_type must be {} (an OIDC ID token)",
            workload_identity::JWT_TOKEN_TYPE
        ))
        .into());
    }
    let exchange = ExchangeRequest {
        subject_token: required(&params, "subject_token")?,
        resource: first(&params, "resource"),
        scope: first(&params, "scope"),
    };
    let ip_address = client_address::text_of_request(&request);
    let attempt = Attempt::new(
        ip_address.clone(),
        exchange.resource,
        LoginRoute::TokenExchange,
        &state.token_formats,
    );
    let exchanged = state
        .logins
        .check_secret(
            &attempt,
            workload_identity::exchange(
                state.store.as_ref(),
                &state.oidc,
                &state.metrics,
                &state.token_formats,
                &state.usage,
                exchange,
                ip_address,
                Utc::now(),
            ),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "access_token": exchanged.secret.expose(),
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "N_A",
            "expires_in": exchanged.expires_in,
            "scope": exchanged.scopes.names().join(" "),
            "username": exchanged.policy.username(),
        })))
}
