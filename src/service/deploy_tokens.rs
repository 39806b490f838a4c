//! Creating, listing, revoking and deleting deploy tokens: one set of functions for the CLI
//! and the API, each checking permissions (access::permissions) and writing the audit trail.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::caller::Caller;
use super::namespaces::kind_label;
use crate::access::permissions::{self, TokenOperation};
use crate::ci_secret::CiSecretKey;
use crate::domain::deploy_token::{DeployTokenRequest, ValidationError};
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::token_lifetime::{LifetimeLimits, MissingExpiry};
use crate::domain::{AuditAction, AuditEvent, DeployToken, Namespace, NewDeployToken, TokenSecret};
use crate::error::Error;
use crate::store::{Page, Store, TokenQuery};

/// A freshly created token: the only moment its secret exists in clear.
#[derive(Debug)]
pub struct CreatedDeployToken {
    pub token: DeployToken,
    pub secret: TokenSecret,
    pub warnings: Vec<String>,
}

/// Which tokens and which page.
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    pub active_only: bool,
    pub page: u64,
    pub per_page: u64,
}

impl Default for ListOptions {
    /// Everything on one page, for the command line.
    fn default() -> Self {
        ListOptions {
            active_only: false,
            page: 1,
            per_page: u64::MAX / 2,
        }
    }
}

/// Proof that [`authorize`] allowed `operation` on the tokens of `owner` for `caller`: only
/// `authorize` makes one, and the operations that write (`create`, `revoke`, `delete`) take
/// it, so none runs unchecked and none asks for the caller's role a second time.
#[derive(Debug, Clone, Copy)]
pub struct Authorized<'a> {
    caller: &'a Caller,
    owner: &'a Namespace,
    operation: TokenOperation,
}

impl<'a> Authorized<'a> {
    pub fn caller(&self) -> &'a Caller {
        self.caller
    }

    pub fn owner(&self) -> &'a Namespace {
        self.owner
    }

    /// This proof, if it was given for `operation`: an internal error otherwise (a proof of
    /// reading used to write is a bug, never the caller's fault).
    fn for_operation(&self, operation: TokenOperation) -> Result<&Self, Error> {
        if self.operation == operation {
            Ok(self)
        } else {
            Err(Error::internal(
                "a deploy-token permission was checked for another operation",
            ))
        }
    }
}

/// Checks the caller's role on the token owner for `operation`. A caller who may not even
/// see the owner gets the owner's 404, not a 403.
pub async fn authorize<'a>(
    store: &dyn Store,
    caller: &'a Caller,
    operation: TokenOperation,
    owner: &'a Namespace,
) -> Result<Authorized<'a>, Error> {
    let role = super::namespaces::role_of(store, caller, owner).await?;
    let principal = caller.principal();
    if !permissions::may_see_namespace(principal, role) {
        return Err(Error::not_found(
            kind_label(owner.kind),
            owner.full_path.as_str(),
        ));
    }
    if !permissions::may_manage_tokens(principal, operation, owner.kind, role) {
        return Err(Error::Forbidden);
    }
    Ok(Authorized {
        caller,
        owner,
        operation,
    })
}

pub(super) fn audit(
    caller: &Caller,
    action: AuditAction,
    token: &DeployToken,
    now: DateTime<Utc>,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        created_at: now,
        actor_kind: caller.actor_kind(),
        actor: caller.actor_name().to_owned(),
        action,
        deploy_token_id: Some(token.id),
        namespace_id: Some(token.owner.id),
        ip_address: caller.ip_address.clone(),
        details,
    }
}

/// What is wrong with a request, every field at once (for a form that shows all its
/// errors); empty when [`create`] would accept it as far as its fields go.
pub fn field_errors(
    request: &DeployTokenRequest,
    owner: &Namespace,
    now: DateTime<Utc>,
) -> Vec<ValidationError> {
    NewDeployToken::validate_all(request.clone(), owner.kind, now)
        .err()
        .unwrap_or_default()
}

// The instance's lifetime limits joined the list (issue #27); they are settings, not request
// fields, so they stay a parameter of their own.
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn create(
    store: &dyn Store,
    authorized: &Authorized<'_>,
    request: DeployTokenRequest,
    lifetime: LifetimeLimits,
    formats: &TokenFormats,
    ci_key: &CiSecretKey,
    now: DateTime<Utc>,
) -> Result<CreatedDeployToken, Error> {
    let authorized = authorized.for_operation(TokenOperation::Create)?;
    let (caller, owner) = (authorized.caller(), authorized.owner());
    let new_token = NewDeployToken::validate(request, owner.kind, now)?;
    // The lifetime policy (instance and groups above), after the fields' own rules.
    super::token_lifecycle::policy_for_owner(store, lifetime, owner)
        .await?
        .expiry_for_new_token(new_token.expires_at(), MissingExpiry::Refuse, now)?;
    let secret = formats
        .generate(TokenKind::DeployToken)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    // The audit record is written in the token's transaction: both or neither.
    let record = |token: &DeployToken| {
        let details = json!({
            "name": token.name,
            "username": token.username,
            "scopes": token.scopes.names(),
            "expires_at": token.expires_at,
            "ip_restriction_ranges": token.restrictions.ip_ranges.to_text(),
            "repository_patterns": token.restrictions.repository_patterns.texts(),
        });
        audit(caller, AuditAction::DeployTokenCreate, token, now, details)
    };
    let digest = secret.digest();
    // Only a `gitlab-deploy-token` keeps a recoverable (sealed) secret, for CI.
    let ci_secret = super::ci_credentials::seal_for_ci(
        ci_key,
        new_token.name(),
        secret.expose(),
        digest.as_hex(),
    )?;
    let token = store
        .create_deploy_token(
            owner,
            &new_token,
            &digest,
            ci_secret.as_deref(),
            caller.actor_name(),
            now,
            &record,
        )
        .await?;
    tracing::info!(
        token_id = token.id,
        owner = owner.full_path.as_str(),
        scopes = ?token.scopes.names(),
        actor = caller.actor_name(),
        "deploy token created"
    );
    let warnings = new_token.warnings();
    for warning in &warnings {
        tracing::warn!(token_id = token.id, "{warning}");
    }
    Ok(CreatedDeployToken {
        token,
        secret,
        warnings,
    })
}

pub async fn list(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    options: ListOptions,
    now: DateTime<Utc>,
) -> Result<Page<DeployToken>, Error> {
    authorize(store, caller, TokenOperation::List, owner).await?;
    query(store, Some(owner.id), options, now).await
}

/// Every token of the instance (admins only).
#[tracing::instrument(skip_all)]
pub async fn list_all(
    store: &dyn Store,
    caller: &Caller,
    options: ListOptions,
    now: DateTime<Utc>,
) -> Result<Page<DeployToken>, Error> {
    if !permissions::may_list_instance_tokens(caller.principal()) {
        return Err(Error::Forbidden);
    }
    query(store, None, options, now).await
}

async fn query(
    store: &dyn Store,
    owner_id: Option<i64>,
    options: ListOptions,
    now: DateTime<Utc>,
) -> Result<Page<DeployToken>, Error> {
    let query = TokenQuery {
        owner_id,
        active_at: options.active_only.then_some(now),
        page: options.page.max(1),
        per_page: options.per_page.max(1),
    };
    Ok(store.list_deploy_tokens(&query).await?)
}

/// One token of `owner`; a token of another owner is reported as absent.
pub async fn get(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    token_id: i64,
) -> Result<DeployToken, Error> {
    authorize(store, caller, TokenOperation::Read, owner).await?;
    owned_token(store, owner, token_id).await
}

/// One token of `owner` with its audit trail (oldest first), for the token's detail view.
#[tracing::instrument(skip_all)]
pub async fn audit_trail(
    store: &dyn Store,
    caller: &Caller,
    owner: &Namespace,
    token_id: i64,
) -> Result<(DeployToken, Vec<AuditEvent>), Error> {
    let token = get(store, caller, owner, token_id).await?;
    let events = store.audit_events_for_deploy_token(token.id).await?;
    Ok((token, events))
}

/// A token the caller may change (the roles that create tokens on its owner): of `owner`,
/// or, from the command line (`owner` `None`), of whichever namespace owns it.
pub(super) async fn token_to_change(
    store: &dyn Store,
    caller: &Caller,
    owner: Option<&Namespace>,
    token_id: i64,
) -> Result<DeployToken, Error> {
    match owner {
        Some(owner) => {
            authorize(store, caller, TokenOperation::Create, owner).await?;
            owned_token(store, owner, token_id).await
        }
        None => {
            let token = store
                .find_deploy_token(token_id)
                .await?
                .ok_or_else(|| Error::not_found("Deploy token", token_id))?;
            authorize(store, caller, TokenOperation::Create, &token.owner).await?;
            Ok(token)
        }
    }
}

pub(super) async fn owned_token(
    store: &dyn Store,
    owner: &Namespace,
    token_id: i64,
) -> Result<DeployToken, Error> {
    match store.find_deploy_token(token_id).await? {
        Some(token) if token.owner.id == owner.id => Ok(token),
        _ => Err(Error::not_found("Deploy token", token_id)),
    }
}

/// Revokes a token wherever it lives (the command line names only its id): the caller's
/// role on its owner is checked first.
#[tracing::instrument(skip_all)]
pub async fn revoke_by_id(
    store: &dyn Store,
    caller: &Caller,
    token_id: i64,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    let token = store
        .find_deploy_token(token_id)
        .await?
        .ok_or_else(|| Error::not_found("Deploy token", token_id))?;
    let authorized = authorize(store, caller, TokenOperation::Revoke, &token.owner).await?;
    revoke(store, &authorized, token_id, now).await
}

/// Revokes a token of the authorized owner at once and for good; revoking a revoked token is
/// not an error.
#[tracing::instrument(skip_all)]
pub async fn revoke(
    store: &dyn Store,
    authorized: &Authorized<'_>,
    token_id: i64,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    let authorized = authorized.for_operation(TokenOperation::Revoke)?;
    let caller = authorized.caller();
    let token = owned_token(store, authorized.owner(), token_id).await?;
    let record = audit(
        caller,
        AuditAction::DeployTokenRevoke,
        &token,
        now,
        json!({}),
    );
    let token = store
        .revoke_deploy_token(token_id, now, &record)
        .await?
        .ok_or_else(|| Error::not_found("Deploy token", token_id))?;
    tracing::info!(
        token_id = token.id,
        actor = caller.actor_name(),
        "deploy token revoked"
    );
    Ok(token)
}

/// Revokes and deletes a token of `owner` (GitLab's DELETE); the row stays for the audit trail.
#[tracing::instrument(skip_all)]
pub async fn delete(
    store: &dyn Store,
    authorized: &Authorized<'_>,
    token_id: i64,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let authorized = authorized.for_operation(TokenOperation::Revoke)?;
    let caller = authorized.caller();
    let token = owned_token(store, authorized.owner(), token_id).await?;
    let details = json!({ "name": token.name, "scopes": token.scopes.names() });
    let record = audit(caller, AuditAction::DeployTokenDelete, &token, now, details);
    if !store.delete_deploy_token(token_id, now, &record).await? {
        return Err(Error::not_found("Deploy token", token_id));
    }
    tracing::info!(
        token_id,
        actor = caller.actor_name(),
        "deploy token deleted"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_checked_for_one_operation_is_no_proof_for_another() {
        let owner = Namespace {
            id: 1,
            kind: crate::domain::NamespaceKind::Project,
            parent_id: None,
            full_path: crate::domain::NamespacePath::parse("acme/web").unwrap(),
            name: "web".into(),
            visibility: Default::default(),
            created_at: Utc::now(),
        };
        let caller = Caller::operator();
        let read = Authorized {
            caller: &caller,
            owner: &owner,
            operation: TokenOperation::Read,
        };
        assert!(read.for_operation(TokenOperation::Read).is_ok());
        for writing in [TokenOperation::Create, TokenOperation::Revoke] {
            assert!(matches!(
                read.for_operation(writing),
                Err(Error::Internal { .. })
            ));
        }
    }
}
