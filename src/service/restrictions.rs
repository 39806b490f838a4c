//! Changing address allow-lists after creation (issue #27): a deploy token's
//! `ip_restriction_ranges` (`PUT .../deploy_tokens/:token_id`) and a group's (`PUT
//! /groups/:id`), for the API and the CLI alike. Both are audited with the old and new lists.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::caller::Caller;
use super::deploy_tokens::audit;
use super::namespaces::{find_visible, NamespaceRef};
use crate::access::permissions;
use crate::domain::address_range::IpRanges;
use crate::domain::{AuditAction, AuditEvent, DeployToken, Namespace, NamespaceKind};
use crate::error::Error;
use crate::store::Store;

/// Replaces (or, with an empty list, clears) a token's allow-list; Maintainers, as for
/// creating one. Takes effect at the token's next use on every replica.
/// `owner`: the project or group the API path named (the token must be its); the command
/// line names the token by id alone.
#[tracing::instrument(skip_all)]
pub async fn set_deploy_token_ip_ranges(
    store: &dyn Store,
    caller: &Caller,
    owner: Option<&Namespace>,
    token_id: i64,
    ranges: IpRanges,
    now: DateTime<Utc>,
) -> Result<DeployToken, Error> {
    let token = super::deploy_tokens::token_to_change(store, caller, owner, token_id).await?;
    let record = audit(
        caller,
        AuditAction::DeployTokenUpdate,
        &token,
        now,
        json!({
            "ip_restriction_ranges": ranges.to_text(),
            "previous_ip_restriction_ranges": token.restrictions.ip_ranges.to_text(),
        }),
    );
    let updated = store
        .set_deploy_token_ip_ranges(token.id, &ranges, &record)
        .await?
        .ok_or_else(|| Error::not_found("Deploy token", token_id))?;
    tracing::info!(
        token_id,
        ip_restriction_ranges = %ranges,
        actor = caller.actor_name(),
        "deploy token address allow-list changed"
    );
    Ok(updated)
}

/// A group with its allow-list, for `GET /groups/:id`.
pub async fn group_ip_ranges(store: &dyn Store, group: &Namespace) -> Result<IpRanges, Error> {
    Ok(store.namespace_ip_ranges(group.id).await?)
}

/// Replaces (or clears) a group's allow-list, which every token below the group must also
/// satisfy; Owners and admins, as GitLab's group setting.
#[tracing::instrument(skip_all)]
pub async fn set_group_ip_ranges(
    store: &dyn Store,
    caller: &Caller,
    reference: &NamespaceRef,
    ranges: IpRanges,
    now: DateTime<Utc>,
) -> Result<Namespace, Error> {
    let (group, role) = find_visible(store, caller, NamespaceKind::Group, reference).await?;
    if !permissions::may_change_visibility(caller.principal(), role) {
        return Err(Error::Forbidden);
    }
    let previous = store.namespace_ip_ranges(group.id).await?;
    let record = AuditEvent {
        created_at: now,
        actor_kind: caller.actor_kind(),
        actor: caller.actor_name().to_owned(),
        action: AuditAction::GroupUpdate,
        deploy_token_id: None,
        namespace_id: Some(group.id),
        ip_address: caller.ip_address.clone(),
        details: json!({
            "full_path": group.full_path.as_str(),
            "ip_restriction_ranges": ranges.to_text(),
            "previous_ip_restriction_ranges": previous.to_text(),
        }),
    };
    if !store
        .set_group_ip_ranges(group.id, &ranges, &record)
        .await?
    {
        return Err(Error::not_found("Group", reference));
    }
    tracing::info!(
        group = group.full_path.as_str(),
        ip_restriction_ranges = %ranges,
        actor = caller.actor_name(),
        "group address allow-list changed"
    );
    Ok(group)
}

/// The check at every credential use (`/jwt/auth` with a password or a refresh token,
/// `/-/forward-auth`, the token exchange): a token used from outside its own or a group's
/// allow-list is refused. The refusal is audited (`login.failure`, reason
/// `address_not_allowed`, with the address and the token) and counted in
/// `regauth_address_refusals_total`; the login guard then answers it as a wrong secret.
pub fn admit_address(
    token: &DeployToken,
    address: Option<std::net::IpAddr>,
    route: crate::metrics::LoginRoute,
    usage: &crate::service::usage::UsageRecorder,
    metrics: &crate::metrics::Metrics,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if token.restrictions.allows_address(address) {
        return Ok(());
    }
    refuse(
        Refused {
            username: &token.username,
            // A workload policy's credential has id 0: no deploy token row.
            deploy_token_id: (token.id > 0).then_some(token.id),
            namespace_id: Some(token.owner.id),
            personal_access_token_id: None,
        },
        address,
        route,
        usage,
        metrics,
        now,
    )
}

/// The same check for a personal access token (its own list: it lives in no group).
pub fn admit_personal_access_token_address(
    token: &crate::domain::PersonalAccessToken,
    user: &crate::domain::User,
    address: Option<std::net::IpAddr>,
    usage: &crate::service::usage::UsageRecorder,
    metrics: &crate::metrics::Metrics,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let allowed = match address {
        Some(address) => token.ip_ranges.allows(address),
        None => token.ip_ranges.is_empty(),
    };
    if allowed {
        return Ok(());
    }
    refuse(
        Refused {
            username: &user.username,
            deploy_token_id: None,
            namespace_id: None,
            personal_access_token_id: Some(token.id),
        },
        address,
        crate::metrics::LoginRoute::Api,
        usage,
        metrics,
        now,
    )
}

/// Whose valid credentials were used from outside their allow-list.
struct Refused<'a> {
    username: &'a str,
    deploy_token_id: Option<i64>,
    namespace_id: Option<i64>,
    personal_access_token_id: Option<i64>,
}

fn refuse(
    refused: Refused<'_>,
    address: Option<std::net::IpAddr>,
    route: crate::metrics::LoginRoute,
    usage: &crate::service::usage::UsageRecorder,
    metrics: &crate::metrics::Metrics,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let address_text = address.map(|address| address.to_string());
    metrics.record_address_refusal(route);
    tracing::warn!(
        token_id = refused.deploy_token_id,
        personal_access_token_id = refused.personal_access_token_id,
        username = %crate::domain::text::printable(refused.username),
        address = address_text.as_deref().unwrap_or("unknown"),
        route = route.as_str(),
        "valid credentials used from outside their address allow-list: refused"
    );
    let mut details = json!({
        "route": route.as_str(),
        "reason": "address_not_allowed",
        "address": address_text,
    });
    if let Some(id) = refused.personal_access_token_id {
        details["personal_access_token_id"] = json!(id);
    }
    usage.audit(AuditEvent {
        created_at: now,
        actor_kind: crate::domain::ActorKind::Anonymous,
        actor: refused.username.to_owned(),
        action: AuditAction::LoginFailure,
        deploy_token_id: refused.deploy_token_id,
        namespace_id: refused.namespace_id,
        ip_address: address_text,
        details,
    });
    Err(Error::AddressNotAllowed)
}

/// Sets a personal access token's allow-list (the command line, right after creating it,
/// before its secret is shown).
#[tracing::instrument(skip_all)]
pub async fn set_personal_access_token_ip_ranges(
    store: &dyn Store,
    id: i64,
    ranges: &IpRanges,
) -> Result<(), Error> {
    if !store
        .set_personal_access_token_ip_ranges(id, ranges)
        .await?
    {
        return Err(Error::not_found("Personal access token", id));
    }
    Ok(())
}
