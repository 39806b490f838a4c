//! The CI side of the `gitlab-deploy-token` name (DOMAIN.md "The gitlab-deploy-token name"):
//! what a CI system injects into a project's jobs as `CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD`.
//!
//! The project's own active `gitlab-deploy-token` wins; otherwise that of its immediate parent
//! group (never a group further up, as GitLab). Its secret is recoverable only because tokens
//! of that name, and no other, are stored sealed with the `ci_secret_key_file` key
//! ([`crate::ci_secret`]).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::caller::Caller;
use super::namespaces::NamespaceRef;
use crate::access::permissions;
use crate::ci_secret::{CiSecretError, CiSecretKey};
use crate::domain::deploy_token::GITLAB_DEPLOY_TOKEN_NAME;
use crate::domain::{AuditAction, AuditEvent, DeployToken, NamespaceKind};
use crate::error::Error;
use crate::store::Store;

/// The credentials handed to a CI system. `Debug` leaves the password out.
pub struct CiCredentials {
    pub token: DeployToken,
    pub password: String,
}

impl std::fmt::Debug for CiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiCredentials")
            .field("token", &self.token)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Seals the secret of a token about to be created, when it is named `gitlab-deploy-token`;
/// `None` for every other name, whose secrets are never stored.
pub fn seal_for_ci(
    key: &CiSecretKey,
    name: &str,
    secret: &str,
    digest_hex: &str,
) -> Result<Option<String>, Error> {
    if name != GITLAB_DEPLOY_TOKEN_NAME {
        return Ok(None);
    }
    key.seal(secret, digest_hex)
        .map(Some)
        .map_err(|error| Error::internal_from("sealing a CI secret", error))
}

/// The credentials for the jobs of `project`: its active `gitlab-deploy-token`, else its
/// parent group's. `NotFound` when there is none; `Conflict` when the sealed secret does not
/// open with the current key (the key file was replaced): never a wrong or partial secret.
pub async fn for_project(
    store: &dyn Store,
    key: &CiSecretKey,
    caller: &Caller,
    project: &NamespaceRef,
    now: DateTime<Utc>,
) -> Result<CiCredentials, Error> {
    // Before the lookup: a caller without the right learns nothing, not even existence.
    if !permissions::may_read_ci_credentials(caller.principal()) {
        return Err(Error::Forbidden);
    }
    let project = super::namespaces::find(store, NamespaceKind::Project, project).await?;
    let mut owners = vec![project.id];
    if let Some(parent) = project.full_path.parent() {
        if let Some(group) = store.find_namespace(&parent).await? {
            owners.push(group.id);
        }
    }
    for owner_id in owners {
        let Some(found) = store
            .find_active_named_token(owner_id, GITLAB_DEPLOY_TOKEN_NAME, now)
            .await?
        else {
            continue;
        };
        let sealed = found.ci_secret.as_deref().ok_or_else(|| {
            Error::Conflict(
                "this gitlab-deploy-token was created before regauth kept CI secrets; create a new one".into(),
            )
        })?;
        let password = key
            .open(sealed, &found.digest_hex)
            .map_err(|error| match error {
                CiSecretError::OtherKey { .. } | CiSecretError::Undecryptable => {
                    Error::Conflict(error.to_string())
                }
                other => Error::internal_from("opening a CI secret", other),
            })?;
        let event = AuditEvent {
            created_at: now,
            actor_kind: caller.actor_kind(),
            actor: caller.actor_name().to_owned(),
            action: AuditAction::CiCredentialsRead,
            deploy_token_id: Some(found.token.id),
            namespace_id: Some(found.token.owner.id),
            ip_address: caller.ip_address.clone(),
            details: json!({ "project": project.full_path.as_str() }),
        };
        store.record_audit_events(&[event]).await?;
        tracing::info!(
            token_id = found.token.id,
            project = project.full_path.as_str(),
            actor = caller.actor_name(),
            "CI credentials handed out"
        );
        return Ok(CiCredentials {
            token: found.token,
            password,
        });
    }
    Err(Error::not_found(
        "Deploy Token",
        format!(
            "{}: no active gitlab-deploy-token on the project or its parent group",
            project.full_path.as_str()
        ),
    ))
}
