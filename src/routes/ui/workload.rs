//! `/<project>/-/settings/workload_identities` (and `/groups/<group>/...`): the namespace's
//! workload identity policies with each one's recent federated logins and exchanges, a form to
//! add one (Maintainers and Owners, as for deploy tokens) and a delete button on each. The
//! services check every permission again on every post.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use chrono::Utc;

use super::pages::{kind_word, scope_options, settings_url, when, ScopeOption};
use super::PageError;
use super::{html, namespace_form, namespace_of, see_other, session, PageResult, Session};
use crate::access::permissions::{self, TokenOperation};
use crate::domain::workload_identity::{
    Conditions, Expected, WorkloadIdentity, WorkloadIdentityRequest,
};
use crate::domain::{AuditAction, AuditEvent, NamespaceKind, Role};
use crate::error::Error;
use crate::service::workload_identity;
use crate::state::AppState;

/// Most uses shown per policy (the newest).
const USES_SHOWN: usize = 20;
/// Most registry events shown per policy (the newest; the API pages through them all).
const REGISTRY_EVENTS_SHOWN: u64 = 20;

pub struct UseRow {
    pub at: String,
    pub what: &'static str,
    /// The job: project or repository, ref (or the pod), as the token named it.
    pub job: String,
    /// A link to the job's page, when the platform has one.
    pub link: Option<String>,
    pub from: String,
}

pub struct PolicyRow {
    pub id: i64,
    pub name: String,
    pub username: String,
    pub issuer: String,
    pub audience: String,
    pub conditions: String,
    pub scopes: String,
    pub max_ttl: u32,
    pub uses: Vec<UseRow>,
    /// The latest of what its jobs and pods did at the registry.
    pub registry_events: Vec<super::pages::RegistryEventRow>,
    pub registry_events_total: u64,
    pub delete_url: String,
}

/// What the add form was filled with, to show it again next to its error.
#[derive(Debug, Default, Clone)]
pub struct PolicyForm {
    pub name: String,
    pub issuer: String,
    pub audience: String,
    /// One `claim=value` per line.
    pub conditions: String,
    pub max_ttl: String,
}

#[derive(Template)]
#[template(path = "workload_identities.html")]
pub struct WorkloadIdentitiesPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub kind: &'static str,
    pub path: String,
    pub settings_url: String,
    pub page_url: String,
    pub policies: Vec<PolicyRow>,
    pub may_create: bool,
    pub may_delete: bool,
    pub issuers: Vec<String>,
    pub scopes: Vec<ScopeOption>,
    pub form: PolicyForm,
    pub notice: Option<String>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

/// What a page carries besides the policies: a notice, the add form's state.
#[derive(Default)]
struct Extras {
    form: PolicyForm,
    checked_scopes: Vec<String>,
    notice: Option<String>,
    warnings: Vec<String>,
    error: Option<String>,
}

pub fn page_url(kind: NamespaceKind, path: &str) -> String {
    format!(
        "{}/-/settings/workload_identities",
        super::pages::namespace_url(kind, path)
    )
}

fn conditions_text(policy: &WorkloadIdentity) -> String {
    if policy.conditions.is_empty() {
        return "none".into();
    }
    policy
        .conditions
        .iter()
        .map(|(claim, expected)| match expected {
            Expected::One(value) => format!("{claim} = {value}"),
            Expected::AnyOf(values) => format!("{claim} ∈ {{{}}}", values.join(", ")),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn use_row(event: &AuditEvent) -> UseRow {
    let details = &event.details;
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    let job = &details["job"];
    let who = text(&job["project_path"])
        .or_else(|| text(&job["repository"]))
        .or_else(|| {
            text(&job["namespace"])
                .map(|ns| format!("{ns}/{}", text(&job["service_account"]).unwrap_or_default()))
        })
        .or_else(|| text(&details["subject"]))
        .unwrap_or_else(|| "—".into());
    let job_text = match text(&job["ref"]) {
        Some(reference) => format!("{who} @ {reference}"),
        None => who,
    };
    UseRow {
        at: when(event.created_at),
        what: match event.action {
            AuditAction::WorkloadExchange => "token exchange",
            _ => "login",
        },
        job: job_text,
        // Only links the token's own claims built for a known platform (https or the
        // configured issuer), never free text from elsewhere.
        link: text(&job["link"])
            .filter(|link| link.starts_with("https://") || link.starts_with("http://")),
        from: event.ip_address.clone().unwrap_or_else(|| "—".into()),
    }
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    deleted: Option<String>,
}

pub async fn policies_page(
    request: HttpRequest,
    path: web::Path<String>,
    kind: web::Data<NamespaceKind>,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> PageResult {
    let session = session(&request, &state).await?;
    let extras = Extras {
        notice: query
            .deleted
            .is_some()
            .then(|| "The workload identity was deleted.".to_owned()),
        ..Extras::default()
    };
    render(&state, &session, **kind, &path, StatusCode::OK, extras).await
}

async fn render(
    state: &AppState,
    session: &Session,
    kind: NamespaceKind,
    path: &str,
    status: StatusCode,
    extras: Extras,
) -> PageResult {
    let (namespace, role) = namespace_of(state, session, kind, path).await?;
    let store = state.store.as_ref();
    let policies = workload_identity::list(store, &session.caller, &namespace).await?;
    let mut rows = Vec::with_capacity(policies.len());
    for policy in policies {
        let (policy, uses) = workload_identity::recent_uses(
            store,
            &session.caller,
            &namespace,
            policy.id,
            USES_SHOWN,
        )
        .await?;
        let registry_events = crate::service::registry_events::of_workload_identity(
            store,
            &session.caller,
            &namespace,
            policy.id,
            1,
            REGISTRY_EVENTS_SHOWN,
        )
        .await?;
        rows.push(PolicyRow {
            id: policy.id,
            name: policy.name.clone(),
            username: policy.username(),
            issuer: policy.issuer.clone(),
            audience: policy.audience.clone(),
            conditions: conditions_text(&policy),
            scopes: policy.scopes.names().join(", "),
            max_ttl: policy.max_ttl_seconds,
            uses: uses.iter().map(use_row).collect(),
            registry_events: registry_events
                .items
                .iter()
                .map(super::pages::registry_event_row)
                .collect(),
            registry_events_total: registry_events.total,
            delete_url: format!(
                "{}/-/workload_identities/{}/delete",
                super::pages::namespace_url(kind, namespace.full_path.as_str()),
                policy.id
            ),
        });
    }
    let may = |operation| may_manage(session, operation, kind, role);
    let full_path = namespace.full_path.as_str();
    let page = WorkloadIdentitiesPage {
        user_name: session.user_name(),
        csrf: session.csrf(),
        kind: kind_word(kind),
        path: full_path.to_owned(),
        settings_url: settings_url(kind, full_path),
        page_url: page_url(kind, full_path),
        policies: rows,
        may_create: may(TokenOperation::Create),
        may_delete: may(TokenOperation::Revoke),
        issuers: state
            .settings
            .oidc_issuers
            .iter()
            .map(|issuer| issuer.url.clone())
            .collect(),
        scopes: scope_options(kind, &extras.checked_scopes),
        form: extras.form,
        notice: extras.notice,
        warnings: extras.warnings,
        error: extras.error,
    };
    Ok(html(status, &page))
}

fn may_manage(
    session: &Session,
    operation: TokenOperation,
    kind: NamespaceKind,
    role: Option<Role>,
) -> bool {
    permissions::may_manage_tokens(session.caller.principal(), operation, kind, role)
}

/// `claim=value` lines as conditions; a claim on several lines is an any-of.
fn parse_condition_lines(text: &str) -> Result<Conditions, String> {
    let mut conditions = Conditions::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let Some((claim, value)) = line.split_once('=') else {
            return Err(format!("conditions: {line:?} is not claim=value"));
        };
        let (claim, value) = (claim.trim().to_owned(), value.trim().to_owned());
        let merged = match conditions.remove(&claim) {
            None => Expected::One(value),
            Some(Expected::One(first)) => Expected::AnyOf(vec![first, value]),
            Some(Expected::AnyOf(mut values)) => {
                values.push(value);
                Expected::AnyOf(values)
            }
        };
        conditions.insert(claim, merged);
    }
    Ok(conditions)
}

pub async fn create_policy(
    request: HttpRequest,
    path: web::Path<String>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let (session, form, namespace) = namespace_form(&request, payload, &state, kind, &path).await?;
    // The role first: a caller who may not add learns nothing from validation errors.
    crate::service::deploy_tokens::authorize(
        state.store.as_ref(),
        &session.caller,
        TokenOperation::Create,
        &namespace,
    )
    .await?;
    let values = PolicyForm {
        name: form.get("name").to_owned(),
        issuer: form.get("issuer").to_owned(),
        audience: form.get("audience").to_owned(),
        conditions: form.get("conditions").to_owned(),
        max_ttl: form.get("max_ttl").trim().to_owned(),
    };
    let checked_scopes = form.all("scopes");
    let error = match policy_request(&values, &checked_scopes) {
        Err(message) => message,
        Ok(policy_request) => match workload_identity::create(
            state.store.as_ref(),
            &session.caller,
            &namespace,
            policy_request,
            &state.settings.oidc_issuers,
            Utc::now(),
        )
        .await
        {
            Ok(created) => {
                let extras = Extras {
                    notice: Some(format!(
                        "Workload identity {} created: jobs log in as {}.",
                        created.policy.name,
                        created.policy.username()
                    )),
                    warnings: created.warnings,
                    ..Extras::default()
                };
                return render(&state, &session, kind, &path, StatusCode::CREATED, extras).await;
            }
            Err(Error::Validation(error)) => error.to_string(),
            Err(error) => return Err(PageError::from(error)),
        },
    };
    // The form again, with the error.
    let extras = Extras {
        form: values,
        checked_scopes,
        error: Some(error),
        ..Extras::default()
    };
    render(
        &state,
        &session,
        kind,
        &path,
        StatusCode::UNPROCESSABLE_ENTITY,
        extras,
    )
    .await
}

/// The policy a form asks for, or what is wrong with its conditions or `max_ttl` (the rest
/// the service checks).
fn policy_request(
    values: &PolicyForm,
    checked_scopes: &[String],
) -> Result<WorkloadIdentityRequest, String> {
    let conditions = parse_condition_lines(&values.conditions)?;
    let max_ttl = match values.max_ttl.as_str() {
        "" => None,
        text => Some(
            text.parse()
                .map_err(|_| "max_ttl must be a number of seconds".to_owned())?,
        ),
    };
    Ok(WorkloadIdentityRequest {
        name: values.name.clone(),
        issuer: values.issuer.clone(),
        audience: values.audience.clone(),
        conditions,
        scopes: checked_scopes.to_vec(),
        max_ttl,
        ip_restriction_ranges: Vec::new(),
    })
}

pub async fn delete_policy(
    request: HttpRequest,
    path: web::Path<(String, i64)>,
    kind: web::Data<NamespaceKind>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let (path, id) = path.into_inner();
    let (session, _, namespace) = namespace_form(&request, payload, &state, kind, &path).await?;
    workload_identity::delete(
        state.store.as_ref(),
        &session.caller,
        &namespace,
        id,
        Utc::now(),
    )
    .await?;
    Ok(see_other(&format!(
        "{}?deleted=1",
        page_url(kind, namespace.full_path.as_str())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(conditions: &str, max_ttl: &str) -> PolicyForm {
        PolicyForm {
            name: "ci".into(),
            issuer: "https://gitlab.example.com".into(),
            audience: "regauth".into(),
            conditions: conditions.into(),
            max_ttl: max_ttl.into(),
        }
    }

    #[test]
    fn a_policy_form_is_read_into_a_request_or_names_its_first_mistake() {
        let scopes = ["read_registry".to_owned()];
        let request = policy_request(&form("ref=main\nref=dev", "300"), &scopes).unwrap();
        assert_eq!(request.max_ttl, Some(300));
        assert_eq!(request.scopes, scopes);
        assert!(
            matches!(request.conditions.get("ref"), Some(Expected::AnyOf(values)) if values.len() == 2)
        );
        assert_eq!(
            policy_request(&form("", ""), &scopes).unwrap().max_ttl,
            None
        );
        assert_eq!(
            policy_request(&form("ref=main", "soon"), &scopes).unwrap_err(),
            "max_ttl must be a number of seconds"
        );
        // The conditions are read first.
        assert_eq!(
            policy_request(&form("ref", "soon"), &scopes).unwrap_err(),
            "conditions: \"ref\" is not claim=value"
        );
    }
}
