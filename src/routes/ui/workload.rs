//! `/<project>/-/settings/workload_identities` (and `/groups/<group>/...`): the namespace's
//! workload identity policies with each one's recent federated logins and exchanges. Read
//! only: policies are created and deleted through the API and the command line.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;

use super::pages::{kind_word, settings_url, when};
use super::{html, namespace_of, session, PageResult};
use crate::domain::workload_identity::{Expected, WorkloadIdentity};
use crate::domain::{AuditAction, AuditEvent, NamespaceKind};
use crate::service::workload_identity;
use crate::state::AppState;

/// Most uses shown per policy (the newest).
const USES_SHOWN: usize = 20;

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
}

#[derive(Template)]
#[template(path = "workload_identities.html")]
pub struct WorkloadIdentitiesPage {
    pub user_name: Option<String>,
    pub csrf: String,
    pub kind: &'static str,
    pub path: String,
    pub settings_url: String,
    pub policies: Vec<PolicyRow>,
}

pub fn page_url(kind: NamespaceKind, path: &str) -> String {
    settings_url(kind, path).replace("/-/settings/repository", "/-/settings/workload_identities")
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

pub async fn policies_page(
    request: HttpRequest,
    path: web::Path<String>,
    kind: web::Data<NamespaceKind>,
    state: web::Data<AppState>,
) -> PageResult {
    let kind = **kind;
    let session = session(&request, &state).await?;
    let (namespace, _) = namespace_of(&state, &session, kind, &path).await?;
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
        });
    }
    let full_path = namespace.full_path.as_str();
    let page = WorkloadIdentitiesPage {
        user_name: session.user_name(),
        csrf: session.csrf(),
        kind: kind_word(kind),
        path: full_path.to_owned(),
        settings_url: settings_url(kind, full_path),
        policies: rows,
    };
    Ok(html(StatusCode::OK, &page))
}
