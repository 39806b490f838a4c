//! Token lifetime policy and secret rotation (issue #27, items 3 and 4), for the API, the
//! pages and the CLI alike: the pure rules are `domain::token_lifetime` and
//! `domain::rotation`; this module finds the limits that apply, checks who may act, and
//! has the store apply a rotation with its audit record.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::caller::Caller;
use super::namespaces::{find_visible, NamespaceRef};
use crate::access::permissions;
use crate::ci_secret::CiSecretKey;
use crate::domain::rotation::grace_period;
use crate::domain::token_format::{TokenFormats, TokenKind};
use crate::domain::token_lifetime::{LifetimeLimits, LifetimePolicy};
use crate::domain::{
    AuditAction, AuditEvent, Namespace, NamespaceKind, PersonalAccessToken, TokenSecret,
};
use crate::error::Error;
use crate::store::lifecycle::SecretChange;
use crate::store::Store;

/// The instance settings rotation and creation are judged by.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleSettings {
    pub lifetime: LifetimeLimits,
    /// `token_rotation_grace`: the longest grace period, and the default.
    pub max_grace: Duration,
}

impl LifecycleSettings {
    pub fn of(settings: &crate::config::Settings) -> LifecycleSettings {
        LifecycleSettings {
            lifetime: settings.tokens.lifetime,
            max_grace: Duration::from_std(settings.tokens.rotation_grace)
                .unwrap_or(Duration::zero()),
        }
    }
}

/// The limits for new tokens of `owner`: the instance's and those of every group from the
/// top down to `owner` (itself included when it is a group).
pub async fn policy_for_owner(
    store: &dyn Store,
    instance: LifetimeLimits,
    owner: &Namespace,
) -> Result<LifetimePolicy, Error> {
    policy_along(store, instance, owner, true).await
}

async fn policy_along(
    store: &dyn Store,
    instance: LifetimeLimits,
    namespace: &Namespace,
    include_itself: bool,
) -> Result<LifetimePolicy, Error> {
    let mut paths = namespace.full_path.self_and_ancestors();
    if !include_itself {
        paths.retain(|path| path != &namespace.full_path);
    }
    let mut groups = store.group_token_limits(&paths).await?;
    // Outermost first: of equal limits, the outer group is named.
    groups.sort_by_key(|(path, _)| path.len());
    Ok(LifetimePolicy::new(instance, groups))
}

/// A group's own limits (what `GET /groups/:id` shows), none set: the default.
pub async fn group_limits(store: &dyn Store, group: &Namespace) -> Result<LifetimeLimits, Error> {
    Ok(store
        .group_token_limits(std::slice::from_ref(&group.full_path))
        .await?
        .into_iter()
        .next()
        .map(|(_, limits)| limits)
        .unwrap_or_default())
}

/// A change of a group's limits: `None` leaves a field as it is; `Some(None)` for the
/// maximum removes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupLimitsChange {
    pub max_token_lifetime_days: Option<Option<u32>>,
    pub require_token_expiry: Option<bool>,
}

/// Changes a group's limits (its Owner or an admin; the operator always). The maximum can
/// only be stricter than the instance's and the enclosing groups'. Audited.
#[tracing::instrument(skip_all)]
pub async fn set_group_limits(
    store: &dyn Store,
    caller: &Caller,
    reference: &NamespaceRef,
    change: GroupLimitsChange,
    instance: LifetimeLimits,
    now: DateTime<Utc>,
) -> Result<(Namespace, LifetimeLimits), Error> {
    let (group, role) = find_visible(store, caller, NamespaceKind::Group, reference).await?;
    if !permissions::may_change_token_policy(caller.principal(), role) {
        return Err(Error::Forbidden);
    }
    let before = group_limits(store, &group).await?;
    let after = LifetimeLimits {
        max_days: change.max_token_lifetime_days.unwrap_or(before.max_days),
        require_expiry: change.require_token_expiry.unwrap_or(before.require_expiry),
    };
    policy_along(store, instance, &group, false)
        .await?
        .check_group_limit(after.max_days)?;
    if after != before {
        store.set_group_token_limits(group.id, after, now).await?;
        let record = AuditEvent {
            created_at: now,
            actor_kind: caller.actor_kind(),
            actor: caller.actor_name().to_owned(),
            action: AuditAction::GroupTokenPolicyChange,
            deploy_token_id: None,
            namespace_id: Some(group.id),
            ip_address: caller.ip_address.clone(),
            details: json!({
                "group": group.full_path.as_str(),
                "before": limits_json(before),
                "after": limits_json(after),
            }),
        };
        store.record_audit_events(&[record]).await?;
        tracing::info!(
            group = group.full_path.as_str(),
            max_token_lifetime_days = after.max_days,
            require_token_expiry = after.require_expiry,
            actor = caller.actor_name(),
            "group token lifetime limits changed"
        );
    }
    Ok((group, after))
}

/// The limits as the API names them.
fn limits_json(limits: LifetimeLimits) -> serde_json::Value {
    json!({
        "max_token_lifetime_days": limits.max_days,
        "require_token_expiry": limits.require_expiry,
    })
}

/// What a rotation request asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct RotateRequest {
    /// A new expiry (within the lifetime policy, counted from now); `None` keeps it.
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds the previous secret keeps working; `None`: the instance's grace period.
    pub grace_period_seconds: Option<i64>,
}

/// A rotated token's new secret (shown once) and until when the previous one works.
#[derive(Debug)]
pub struct Rotated<T> {
    pub token: T,
    pub secret: TokenSecret,
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// Rotates a deploy token: a new secret in the current format for the same id, username,
/// scopes and restrictions; the previous secret works for the grace period. Who may create
/// tokens on the owner may rotate them. `owner`: the API's owner in the path (a token of
/// another owner is absent); the CLI names the token alone.
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn rotate_deploy_token(
    store: &dyn Store,
    caller: &Caller,
    owner: Option<&Namespace>,
    token_id: i64,
    request: RotateRequest,
    settings: LifecycleSettings,
    formats: &TokenFormats,
    ci_key: &CiSecretKey,
    now: DateTime<Utc>,
) -> Result<Rotated<crate::domain::DeployToken>, Error> {
    let token = super::deploy_tokens::token_to_change(store, caller, owner, token_id).await?;
    if token.revoked {
        return Err(Error::InvalidRequest(
            "the deploy token is revoked: a revoked token cannot be rotated".into(),
        ));
    }
    let policy = policy_for_owner(store, settings.lifetime, &token.owner).await?;
    let expires_at = policy.expiry_after_rotation(token.expires_at, request.expires_at, now)?;
    let grace = grace_period(settings.max_grace, request.grace_period_seconds)?;
    let previous_secret_expires_at = now + grace;
    let secret = formats
        .generate(TokenKind::DeployToken)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    let digest = secret.digest();
    let ci_secret =
        super::ci_credentials::seal_for_ci(ci_key, &token.name, secret.expose(), digest.as_hex())?;
    let record = AuditEvent {
        created_at: now,
        actor_kind: caller.actor_kind(),
        actor: caller.actor_name().to_owned(),
        action: AuditAction::DeployTokenRotate,
        deploy_token_id: Some(token.id),
        namespace_id: Some(token.owner.id),
        ip_address: caller.ip_address.clone(),
        details: rotation_details(
            &token.name,
            grace,
            previous_secret_expires_at,
            token.expires_at,
            expires_at,
        ),
    };
    let change = SecretChange {
        new_digest: &digest,
        previous_secret_expires_at,
        expires_at,
        ci_secret: ci_secret.as_deref(),
        now,
    };
    let rotated = store
        .rotate_deploy_token(token.id, &change, &record)
        .await?
        .ok_or_else(|| {
            Error::Conflict("the deploy token was revoked or rotated meanwhile: try again".into())
        })?;
    tracing::info!(
        token_id = rotated.id,
        grace_period_seconds = grace.num_seconds(),
        actor = caller.actor_name(),
        "deploy token rotated"
    );
    Ok(Rotated {
        token: rotated,
        secret,
        previous_secret_expires_at,
    })
}

/// As the API writes instants (`views::timestamp`, which this layer may not name).
fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn rotation_details(
    name: &str,
    grace: Duration,
    previous_secret_expires_at: DateTime<Utc>,
    expires_at_before: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
) -> serde_json::Value {
    json!({
        "name": name,
        "grace_period_seconds": grace.num_seconds(),
        "previous_secret_expires_at": timestamp(previous_secret_expires_at),
        "expires_at_before": expires_at_before.map(timestamp),
        "expires_at": expires_at.map(timestamp),
    })
}

/// Which personal access token to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalAccessTokenRef {
    Id(i64),
    /// The token the request authenticated with (`/personal_access_tokens/self/rotate`).
    Presented(i64),
}

/// Rotates a personal access token. Unlike GitLab (which revokes the token and creates
/// another with a new id), the token keeps its id, as deploy tokens do, and the previous
/// secret works for the grace period: a script holding the id keeps working, and the grace
/// lets the tools holding the secret be updated. Its user (with a token that may write) or
/// an admin may; a token of someone else is reported as absent. The lifetime policy is the
/// instance's (a personal access token belongs to no group).
#[tracing::instrument(skip_all)]
pub async fn rotate_personal_access_token(
    store: &dyn Store,
    caller: &Caller,
    which: PersonalAccessTokenRef,
    request: RotateRequest,
    settings: LifecycleSettings,
    formats: &TokenFormats,
    now: DateTime<Utc>,
) -> Result<Rotated<PersonalAccessToken>, Error> {
    let (PersonalAccessTokenRef::Id(id) | PersonalAccessTokenRef::Presented(id)) = which;
    let not_found = || Error::not_found("Personal access token", id);
    let token = store
        .find_personal_access_token(id)
        .await?
        .ok_or_else(not_found)?;
    if !permissions::may_rotate_personal_access_token(
        caller.principal(),
        caller.user_id(),
        token.user_id,
    ) {
        // Someone else's token does not exist for this caller; their own read-only one is 403.
        return Err(if caller.user_id() == Some(token.user_id) {
            Error::Forbidden
        } else {
            not_found()
        });
    }
    if token.revoked {
        return Err(Error::InvalidRequest(
            "the personal access token is revoked: a revoked token cannot be rotated".into(),
        ));
    }
    let policy = LifetimePolicy::new(settings.lifetime, Vec::new());
    let expires_at = policy.expiry_after_rotation(token.expires_at, request.expires_at, now)?;
    let grace = grace_period(settings.max_grace, request.grace_period_seconds)?;
    let previous_secret_expires_at = now + grace;
    let secret = formats
        .generate(TokenKind::PersonalAccessToken)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    let digest = secret.digest();
    let mut details = rotation_details(
        &token.name,
        grace,
        previous_secret_expires_at,
        token.expires_at,
        expires_at,
    );
    details["personal_access_token_id"] = json!(token.id);
    details["user_id"] = json!(token.user_id);
    let record = AuditEvent {
        created_at: now,
        actor_kind: caller.actor_kind(),
        actor: caller.actor_name().to_owned(),
        action: AuditAction::PersonalAccessTokenRotate,
        deploy_token_id: None,
        namespace_id: None,
        ip_address: caller.ip_address.clone(),
        details,
    };
    let change = SecretChange {
        new_digest: &digest,
        previous_secret_expires_at,
        expires_at,
        ci_secret: None,
        now,
    };
    let rotated = store
        .rotate_personal_access_token(token.id, &change, &record)
        .await?
        .ok_or_else(|| {
            Error::Conflict(
                "the personal access token was revoked or rotated meanwhile: try again".into(),
            )
        })?;
    tracing::info!(
        personal_access_token_id = rotated.id,
        grace_period_seconds = grace.num_seconds(),
        actor = caller.actor_name(),
        "personal access token rotated"
    );
    Ok(Rotated {
        token: rotated,
        secret,
        previous_secret_expires_at,
    })
}
