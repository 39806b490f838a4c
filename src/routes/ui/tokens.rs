//! `/` (the groups and projects the user manages) and the deploy-token pages of a group or
//! project: the list with the add form, a token's detail view with its trails, and revoke.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;

use super::pages::{
    self, event_row, kind_word, scope_options, settings_url, token_row, token_url, CreatedView,
    FieldErrors, FormValues, HomePage, NamespaceRow, SettingsPage, TokenPage,
};
use super::{
    html, namespace_form, namespace_of, rotation, see_other, session, PageResult, Session,
    AUDIT_EVENTS_SHOWN, REGISTRY_EVENTS_SHOWN,
};
use crate::access::permissions::{self, TokenOperation};
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::NamespaceKind;
use crate::error::Error;
use crate::service::deploy_tokens::{self, ListOptions};
use crate::service::web_sessions;
use crate::state::AppState;

#[derive(serde::Deserialize)]
pub(super) struct HomeQuery {
    search: Option<String>,
}

pub(super) async fn home(
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

#[derive(serde::Deserialize)]
pub(super) struct SettingsQuery {
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
        state.settings.tokens.lifetime,
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

pub(super) async fn settings_page(
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

pub(super) async fn create_token(
    request: HttpRequest,
    path: web::Path<String>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let (session, form, namespace) = namespace_form(&request, payload, &state, kind, &path).await?;
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
    if errors.count() == 0 {
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
            state.settings.tokens.lifetime,
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
                return render_settings(&state, &session, kind, &path, StatusCode::CREATED, extras)
                    .await;
            }
            Err(Error::Validation(error)) => errors.set(error.field, error.message),
            Err(Error::Conflict(message)) => errors.set("username", message),
            Err(other) => return Err(other.into()),
        }
    }
    // The form again, with every field's error.
    let extras = SettingsExtras {
        form: values,
        errors,
        ..SettingsExtras::default()
    };
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

pub(super) async fn token_page(
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
pub(super) async fn render_token_page(
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

pub(super) async fn revoke_token(
    request: HttpRequest,
    path: web::Path<(String, i64)>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let (path, id) = path.into_inner();
    let (session, _, namespace) = namespace_form(&request, payload, &state, kind, &path).await?;
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
