//! The Rotate button of a deploy token's detail page (issue #27): a form with the grace
//! period and an optional new expiry, posted to `.../-/deploy_tokens/<id>/rotate`; the
//! answer is the detail page with the new secret shown once. The service checks the role,
//! the lifetime policy and the grace again.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};

use super::pages::{when, CreatedView};
use super::PageError;
use super::{namespace_form, render_token_page, PageResult};
use crate::domain::expiry::parse_expires_at;
use crate::domain::{DeployToken, NamespaceKind};
use crate::error::Error;
use crate::service::token_lifecycle::{self, LifecycleSettings, RotateRequest};
use crate::service::web_sessions;
use crate::state::AppState;

/// What a rotation post produced, for the page it answers with.
#[derive(Default)]
pub struct Outcome {
    pub rotated: Option<CreatedView>,
    /// Until when the previous secret works, in words.
    pub previous_note: String,
    pub error: Option<String>,
}

impl Outcome {
    pub fn status(&self) -> StatusCode {
        if self.error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        }
    }
}

/// The rotation part of the detail page.
pub struct RotationView {
    pub may_rotate: bool,
    pub url: String,
    pub nonce: String,
    pub max_grace_seconds: i64,
    pub expiry_rule: Option<String>,
    pub expires_max: Option<String>,
    pub rotated_at: Option<String>,
    /// While the previous secret still works.
    pub previous_until: Option<String>,
    pub rotated: Option<CreatedView>,
    pub previous_note: String,
    pub error: Option<String>,
}

pub async fn view(
    state: &AppState,
    token: &DeployToken,
    may_rotate: bool,
    url: String,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<RotationView, PageError> {
    let policy = token_lifecycle::policy_for_owner(
        state.store.as_ref(),
        state.settings.tokens.lifetime,
        &token.owner,
    )
    .await?;
    Ok(RotationView {
        may_rotate,
        url,
        nonce: web_sessions::random_token()?,
        max_grace_seconds: LifecycleSettings::of(&state.settings)
            .max_grace
            .num_seconds(),
        expiry_rule: policy.describe(),
        expires_max: policy
            .latest_expiry(now)
            .map(|latest| latest.format("%Y-%m-%d").to_string()),
        rotated_at: token.rotation.rotated_at.map(when),
        previous_until: token
            .rotation
            .previous_secret_expires_at
            .filter(|_| token.rotation.in_grace(now))
            .map(when),
        rotated: outcome.rotated,
        previous_note: outcome.previous_note,
        error: outcome.error,
    })
}

pub async fn rotate_token(
    request: HttpRequest,
    path: web::Path<(String, i64)>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let (path, id) = path.into_inner();
    let (session, form, namespace) = namespace_form(&request, payload, &state, kind, &path).await?;
    let store = state.store.as_ref();
    // The role first: a caller who may not rotate learns nothing from the form's errors.
    crate::service::deploy_tokens::authorize(
        store,
        &session.caller,
        crate::access::permissions::TokenOperation::Create,
        &namespace,
    )
    .await?;
    let failed = |message: String| Outcome {
        error: Some(message),
        ..Outcome::default()
    };
    let expires_at = match form.get("expires_at").trim() {
        "" => None,
        text => match parse_expires_at(text) {
            Ok(at) => Some(at),
            Err(_) => {
                let outcome = failed("The new expiration date must be a date (YYYY-MM-DD).".into());
                return render_token_page(&state, &session, kind, &path, id, outcome).await;
            }
        },
    };
    let grace_period_seconds = match form.get("grace_period_seconds").trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => {
                let outcome = failed("The grace period must be a whole number of seconds.".into());
                return render_token_page(&state, &session, kind, &path, id, outcome).await;
            }
        },
    };
    // A reload of the answer re-posts the form: rotate nothing, show no secret.
    if !web_sessions::first_submission(store, &session.session, form.get("form_nonce")).await? {
        let outcome = failed(
            "That form was already submitted: the token was rotated, and its new secret cannot be shown again."
                .into(),
        );
        return render_token_page(&state, &session, kind, &path, id, outcome).await;
    }
    let now = Utc::now();
    let outcome = match token_lifecycle::rotate_deploy_token(
        store,
        &session.caller,
        Some(&namespace),
        id,
        RotateRequest {
            expires_at,
            grace_period_seconds,
        },
        LifecycleSettings::of(&state.settings),
        &state.token_formats,
        &state.ci_key,
        now,
    )
    .await
    {
        Ok(rotated) => Outcome {
            rotated: Some(CreatedView {
                username: rotated.token.username.clone(),
                secret: rotated.secret.expose().to_owned(),
            }),
            previous_note: if rotated.previous_secret_expires_at > now {
                format!(
                    "The previous secret works until {}.",
                    when(rotated.previous_secret_expires_at)
                )
            } else {
                "The previous secret no longer works.".to_owned()
            },
            error: None,
        },
        Err(Error::Validation(error)) => failed(error.to_string()),
        Err(Error::InvalidRequest(message) | Error::Conflict(message)) => failed(message),
        Err(other) => return Err(other.into()),
    };
    render_token_page(&state, &session, kind, &path, id, outcome).await
}
