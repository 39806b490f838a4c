//! JSON representations in GitLab's API shapes, shared by the REST API and the CLI's
//! `--json` output so that both print the same thing.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::domain::{DeployToken, Namespace, NamespaceKind, User};

/// ISO 8601 with milliseconds, as GitLab prints times.
pub fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A deploy token as GitLab's API returns it (never the secret; see [`created_deploy_token`]).
pub fn deploy_token(token: &DeployToken, now: DateTime<Utc>) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "username": token.username,
        "expires_at": token.expires_at.map(timestamp),
        "scopes": token.scopes.names(),
        "revoked": token.revoked,
        "expired": token.is_expired(now),
        "ip_restriction_ranges": token.restrictions.ip_ranges.to_text(),
        "repository_patterns": token.restrictions.repository_patterns.texts(),
        "rotated_at": token.rotation.rotated_at.map(timestamp),
    })
}

/// One registry event of a token: what it did to which repository, from where, when. Blob
/// pulls of a day are one entry (`count`, first at `created_at`, last at `last_at`).
/// `issued`: the registry token regauth issued that most likely did it (best effort), if any.
pub fn registry_event(
    event: &crate::domain::registry_event::StoredRegistryEvent,
    issued: Option<&(
        crate::domain::registry_event::Issuance,
        crate::domain::registry_event::IssueMatch,
    )>,
) -> Value {
    json!({
        "id": event.id,
        "action": event.action.as_str(),
        "target": event.kind.as_str(),
        "repository": event.repository,
        "from_repository": event.from_repository,
        "tag": event.tag,
        "digest": event.digest,
        "media_type": event.media_type,
        "size": event.size,
        "address": event.address,
        "user_agent": event.user_agent,
        "actor": event.actor,
        "count": event.count,
        "created_at": timestamp(event.created_at),
        "last_at": timestamp(event.last_at),
        "issued_token": issued.map(|(issuance, confidence)| json!({
            "issued_at": timestamp(issuance.first),
            "address": issuance.address,
            "granted": issuance.granted,
            "match": confidence.as_str(),
        })),
    })
}

/// The create response: the one place a secret is ever rendered.
/// A rotated deploy token: as created (with its new secret), plus until when the previous
/// secret works.
pub fn rotated_deploy_token(
    token: &DeployToken,
    secret: &str,
    previous_secret_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let mut value = created_deploy_token(token, secret, now);
    value["previous_token_expires_at"] = json!(timestamp(previous_secret_expires_at));
    value
}

/// A personal access token as GitLab's API returns it (never the secret); `expires_at` is a
/// date when the expiry is at midnight UTC, as GitLab's always is.
pub fn personal_access_token(
    token: &crate::domain::PersonalAccessToken,
    now: DateTime<Utc>,
) -> Value {
    let expires_at = token.expires_at.map(|at| {
        if at.time() == chrono::NaiveTime::MIN {
            at.format("%Y-%m-%d").to_string()
        } else {
            timestamp(at)
        }
    });
    let scopes: Vec<&str> = token.scopes.iter().map(|scope| scope.as_str()).collect();
    json!({
        "id": token.id,
        "name": token.name,
        "revoked": token.revoked,
        "created_at": timestamp(token.created_at),
        "scopes": scopes,
        "user_id": token.user_id,
        "active": token.is_active(now),
        "expires_at": expires_at,
        "rotated_at": token.rotation.rotated_at.map(timestamp),
    })
}

/// A rotated personal access token with its new secret (GitLab's rotate answer).
pub fn rotated_personal_access_token(
    token: &crate::domain::PersonalAccessToken,
    secret: &str,
    previous_secret_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let mut value = personal_access_token(token, now);
    value["token"] = json!(secret);
    value["previous_token_expires_at"] = json!(timestamp(previous_secret_expires_at));
    value
}

pub fn created_deploy_token(token: &DeployToken, secret: &str, now: DateTime<Utc>) -> Value {
    let mut value = deploy_token(token, now);
    value["token"] = json!(secret);
    value
}

/// The CI credentials response: the variables to inject, and which token they come from.
pub fn ci_credentials(
    credentials: &crate::service::ci_credentials::CiCredentials,
    now: DateTime<Utc>,
) -> Value {
    let token = &credentials.token;
    json!({
        "CI_DEPLOY_USER": token.username,
        "CI_DEPLOY_PASSWORD": credentials.password,
        "deploy_token": deploy_token(token, now),
        "owner": {
            "kind": token.owner.kind.to_string(),
            "full_path": token.owner.full_path.as_str(),
        },
    })
}

pub fn namespace(namespace: &Namespace, public_url: &str) -> Value {
    let full_path = namespace.full_path.as_str();
    let web_url = format!("{public_url}/{full_path}");
    match namespace.kind {
        NamespaceKind::Project => json!({
            "id": namespace.id,
            "name": namespace.name,
            "path": namespace.full_path.last_component(),
            "path_with_namespace": full_path,
            "namespace": { "id": namespace.parent_id, "full_path": namespace.full_path.parent().map(|p| p.as_str().to_owned()) },
            "web_url": web_url,
            "visibility": namespace.visibility.as_str(),
            "created_at": timestamp(namespace.created_at),
        }),
        NamespaceKind::Group => json!({
            "id": namespace.id,
            "name": namespace.name,
            "path": namespace.full_path.last_component(),
            "full_path": full_path,
            "parent_id": namespace.parent_id,
            "web_url": web_url,
            "created_at": timestamp(namespace.created_at),
        }),
    }
}

pub fn user(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.username,
        "email": user.email,
        "is_admin": user.admin,
        "state": if user.blocked { "blocked" } else { "active" },
        "created_at": timestamp(user.created_at),
    })
}

/// A workload identity policy, as the API and the CLI's `--json` print it.
pub fn workload_identity(policy: &crate::domain::workload_identity::WorkloadIdentity) -> Value {
    json!({
        "id": policy.id,
        "name": policy.name,
        "username": policy.username(),
        "issuer": policy.issuer,
        "audience": policy.audience,
        "conditions": policy.conditions,
        "scopes": policy.scopes.names(),
        "max_ttl": policy.max_ttl_seconds,
        "ip_restriction_ranges": policy.restrictions.ip_ranges.to_text(),
        "created_at": timestamp(policy.created_at),
        "created_by": policy.created_by,
    })
}
