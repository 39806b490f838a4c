//! Users, memberships and personal access tokens (operator commands).

use chrono::{DateTime, Utc};

use super::caller::{Caller, Identity};
use super::namespaces::{self, NamespaceRef};
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::{
    ApiScope, AuditAction, Email, NamespaceKind, PersonalAccessToken, Role, TokenSecret, User,
    Username, ValidationError,
};
use crate::error::Error;
use crate::store::Store;
use serde_json::json;

#[tracing::instrument(skip_all)]
pub async fn create(
    store: &dyn Store,
    caller: &Caller,
    username: &Username,
    email: &Email,
    admin: bool,
    now: DateTime<Utc>,
) -> Result<User, Error> {
    let audit = |created: &User| {
        caller.audit(
            AuditAction::UserCreate,
            None,
            json!({"user_id": created.id, "username": created.username, "admin": created.admin}),
            now,
        )
    };
    Ok(store
        .create_user(username, email, admin, now, &audit)
        .await?)
}

pub async fn find(store: &dyn Store, username: &str) -> Result<User, Error> {
    store
        .find_user_by_username(username.trim())
        .await?
        .ok_or_else(|| Error::not_found("User", username.trim()))
}

/// Every user, ordered by username (the operator's listing).
pub async fn list(store: &dyn Store) -> Result<Vec<User>, Error> {
    Ok(store.list_users().await?)
}

/// Blocking takes effect at once: every API request re-reads the user with its token, and
/// the user's web sessions end.
#[tracing::instrument(skip_all)]
pub async fn set_blocked(
    store: &dyn Store,
    caller: &Caller,
    username: &str,
    blocked: bool,
) -> Result<User, Error> {
    let user = find(store, username).await?;
    let action = if blocked {
        AuditAction::UserBlock
    } else {
        AuditAction::UserUnblock
    };
    let audit = caller.audit(
        action,
        None,
        json!({"user_id": user.id, "username": user.username}),
        Utc::now(),
    );
    store.set_user_blocked(user.id, blocked, &audit).await?;
    if blocked {
        store.delete_web_sessions_of_user(user.id).await?;
    }
    Ok(User { blocked, ..user })
}

/// Turns the new-address mail (`service::new_address_mail`) on or off for a user.
#[tracing::instrument(skip_all)]
pub async fn set_new_address_mail(
    store: &dyn Store,
    username: &str,
    on: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<User, Error> {
    let user = find(store, username).await?;
    store.set_new_address_mail(user.id, on, now).await?;
    Ok(user)
}

/// A user's own preferences (`/api/v4/user/preferences`, the page's preferences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// Mail me when a token I manage acts at the registry from a network it had not used
    /// lately (`service::new_address_mail`).
    pub new_address_mail: bool,
}

/// The caller's own preferences: a person's (the operator has none).
pub async fn preferences(store: &dyn Store, caller: &Caller) -> Result<Preferences, Error> {
    let user = person(caller)?;
    let subscribed = store.new_address_mail_users(&[user.id]).await?;
    Ok(Preferences {
        new_address_mail: subscribed.contains(&user.id),
    })
}

/// Changes the caller's own preferences (a personal access token that may write, or a page
/// session); the preferences as they are afterwards.
#[tracing::instrument(skip_all)]
pub async fn set_preferences(
    store: &dyn Store,
    caller: &Caller,
    new_address_mail: bool,
    now: DateTime<Utc>,
) -> Result<Preferences, Error> {
    let user = person(caller)?;
    if !crate::access::permissions::may_change_own_account(caller.principal()) {
        return Err(Error::Forbidden);
    }
    store
        .set_new_address_mail(user.id, new_address_mail, now)
        .await?;
    tracing::info!(
        user = %crate::domain::text::printable(&user.username),
        new_address_mail,
        "preferences changed"
    );
    preferences(store, caller).await
}

fn person(caller: &Caller) -> Result<&User, Error> {
    match &caller.identity {
        Identity::User { user, .. } => Ok(user),
        Identity::Operator { .. } => Err(Error::Unauthorized),
    }
}

#[tracing::instrument(skip_all)]
pub async fn add_member(
    store: &dyn Store,
    caller: &Caller,
    username: &str,
    kind: NamespaceKind,
    path: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let user = find(store, username).await?;
    let namespace = namespaces::find(store, kind, &NamespaceRef::Path(path.to_owned())).await?;
    let audit = caller.audit(
        AuditAction::MemberSet,
        Some(namespace.id),
        json!({"user_id": user.id, "username": user.username, "role": role.as_str()}),
        now,
    );
    store
        .set_membership(user.id, namespace.id, role, now, &audit)
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn remove_member(
    store: &dyn Store,
    caller: &Caller,
    username: &str,
    kind: NamespaceKind,
    path: &str,
) -> Result<(), Error> {
    let user = find(store, username).await?;
    let namespace = namespaces::find(store, kind, &NamespaceRef::Path(path.to_owned())).await?;
    let audit = caller.audit(
        AuditAction::MemberRemove,
        Some(namespace.id),
        json!({"user_id": user.id, "username": user.username}),
        Utc::now(),
    );
    if !store
        .remove_membership(user.id, namespace.id, &audit)
        .await?
    {
        return Err(Error::not_found(
            "Membership",
            format!("of {username} in {path}"),
        ));
    }
    Ok(())
}

pub fn parse_api_scopes(text: &str) -> Result<Vec<ApiScope>, Error> {
    let mut scopes = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let scope = ApiScope::parse(name).ok_or_else(|| {
            ValidationError::new(
                "scopes",
                format!("does not have a valid value: {name:?} (valid scopes: api, read_api)"),
            )
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ValidationError::new("scopes", "can't be blank").into());
    }
    Ok(scopes)
}

// The instance's lifetime limits joined the list (issue #27); they are settings, not request
// fields, so they stay a parameter of their own.
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn create_personal_access_token(
    store: &dyn Store,
    caller: &Caller,
    formats: &TokenFormats,
    username: &str,
    name: &str,
    scopes: Vec<ApiScope>,
    expires_at: Option<DateTime<Utc>>,
    lifetime: crate::domain::token_lifetime::LifetimeLimits,
    now: DateTime<Utc>,
) -> Result<(PersonalAccessToken, TokenSecret), Error> {
    let user = find(store, username).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ValidationError::new("name", "must be 1 to 255 characters").into());
    }
    crate::domain::text::refuse_control_characters("name", name)?;
    // The instance's lifetime policy (a personal access token belongs to no group); without
    // an expiry where one is required, the longest allowed, as GitLab does.
    let expires_at = crate::domain::token_lifetime::LifetimePolicy::new(lifetime, Vec::new())
        .expiry_for_new_token(
            expires_at,
            crate::domain::token_lifetime::MissingExpiry::LongestAllowed,
            now,
        )?;
    let secret = formats
        .generate(TokenKind::PersonalAccessToken)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    let audit = |created: &PersonalAccessToken| {
        caller.audit(
            AuditAction::PersonalAccessTokenCreate,
            None,
            json!({
                "personal_access_token_id": created.id,
                "user_id": user.id,
                "username": user.username,
                "name": created.name,
                "scopes": created.scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>(),
                "expires_at": created.expires_at,
            }),
            now,
        )
    };
    let token = store
        .create_personal_access_token(
            &user,
            name,
            &scopes,
            expires_at,
            &secret.digest(),
            now,
            &audit,
        )
        .await?;
    Ok((token, secret))
}

/// Revokes a personal access token at once.
#[tracing::instrument(skip_all)]
pub async fn revoke_personal_access_token(
    store: &dyn Store,
    caller: &Caller,
    id: i64,
) -> Result<(), Error> {
    let audit = caller.audit(
        AuditAction::PersonalAccessTokenRevoke,
        None,
        json!({"personal_access_token_id": id}),
        Utc::now(),
    );
    if !store.revoke_personal_access_token(id, Some(&audit)).await? {
        return Err(Error::not_found("Personal access token", id));
    }
    tracing::info!(
        personal_access_token_id = id,
        "personal access token revoked"
    );
    Ok(())
}
