//! `POST /api/v4/container_registry_event/events`: the registry's notifications, at GitLab's
//! path so that one registry configuration serves both. Authenticated as GitLab does it (the
//! `Authorization` header equals `registry_events_secret`), checked before a byte of the body
//! is read; answered 200 once the envelope is written to the inbox (one insert: the registry
//! waits for each answer before it sends the next event), its events recorded from there
//! right after (`service::registry_event_inbox`). Off (404) without the setting.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use crate::domain::registry_event::{is_envelope_media_type, ENVELOPE_MEDIA_TYPES};
use crate::error::{ApiError, Error, Report};
use crate::metrics::EnvelopeOutcome;
use crate::state::AppState;

/// The largest envelope: 16 KiB per event for 64 events (distribution sends one or a few).
pub const ENVELOPE_LIMIT: usize = 1024 * 1024;

pub async fn receive(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(secret) = &state.settings.registry.events_secret else {
        return Err(Error::not_found("Route", "").into());
    };
    let inbox = &state.registry_event_inbox;
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map_or(&b""[..], |value| value.as_bytes());
    if !secret.matches(presented) {
        state
            .metrics
            .record_event_envelope(EnvelopeOutcome::Unauthorized);
        tracing::warn!(
            client = %crate::client_address::text_of_request(&request).unwrap_or_default(),
            "registry notification refused: the Authorization header is not registry_events_secret"
        );
        return Err(Error::Unauthorized.into());
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !is_envelope_media_type(content_type) {
        state
            .metrics
            .record_event_envelope(EnvelopeOutcome::Invalid);
        return Err(Error::InvalidRequest(format!(
            "Content-Type must be {}",
            ENVELOPE_MEDIA_TYPES.join(" or ")
        ))
        .into());
    }
    let body = crate::routes::body::read_limited(
        request.headers(),
        payload,
        ENVELOPE_LIMIT,
        state.settings.limits.request_body_timeout,
    )
    .await?;
    let accepted = match inbox.accept(state.store.as_ref(), &body, Utc::now()).await {
        Ok(accepted) => accepted,
        Err(error) => {
            let outcome = match error {
                Error::InvalidRequest(_) => EnvelopeOutcome::Invalid,
                _ => EnvelopeOutcome::Error,
            };
            state.metrics.record_event_envelope(outcome);
            if outcome == EnvelopeOutcome::Invalid {
                tracing::warn!(error = %Report(&error), "registry notification refused");
            }
            return Err(error.into());
        }
    };
    state
        .metrics
        .record_event_envelope(EnvelopeOutcome::Accepted);
    for odd in &accepted.odd {
        state.metrics.record_odd_registry_event();
        tracing::warn!(
            event_id = odd.id.as_deref().unwrap_or(""),
            action = odd.action.map_or("", |action| action.as_str()),
            reason = %odd.reason,
            "registry notification event set aside"
        );
    }
    Ok(HttpResponse::Ok().json(crate::views::EnvelopeReceiptView {
        accepted: accepted.events,
        odd: accepted.odd.len(),
    }))
}
