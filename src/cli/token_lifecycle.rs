//! `regauth deploy-token rotate`, `regauth user token rotate` and `regauth group update`
//! (issue #27), through the same services as the API, acting as the operator.

use chrono::Utc;

use super::store::open_store;
use super::RotateArgs;
use crate::ci_secret::CiSecretKey;
use crate::config::Settings;
use crate::domain::expiry::parse_expires_at;
use crate::domain::text::printable;
use crate::service::caller::Caller;
use crate::service::namespaces::NamespaceRef;
use crate::service::token_lifecycle::{
    self, GroupLimitsChange, LifecycleSettings, PersonalAccessTokenRef, RotateRequest, Rotated,
};
use crate::store::Store;
use crate::views;

fn rotate_request(args: &RotateArgs) -> anyhow::Result<RotateRequest> {
    Ok(RotateRequest {
        expires_at: args
            .expires_at
            .as_deref()
            .map(parse_expires_at)
            .transpose()?,
        grace_period_seconds: args.grace_period,
    })
}

pub async fn rotate_deploy_token(
    settings: &Settings,
    store: &dyn Store,
    args: RotateArgs,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let (ci_key, _) = CiSecretKey::load_or_generate(&settings.signing.ci_secret_key_file())?;
    let rotated = token_lifecycle::rotate_deploy_token(
        store,
        &Caller::operator(),
        None,
        args.id,
        rotate_request(&args)?,
        LifecycleSettings::of(settings),
        &settings.tokens.formats(),
        &ci_key,
        now,
    )
    .await?;
    let json = args.json.then(|| {
        views::RotatedDeployTokenView::new(
            &rotated.token,
            rotated.secret.expose(),
            rotated.previous_secret_expires_at,
            now,
        )
    });
    let username = printable(&rotated.token.username);
    let expires_at = rotated.token.expires_at;
    print_rotated(
        json,
        rotated.token.id,
        Some(&username),
        &rotated,
        expires_at,
        now,
    )
}

pub async fn rotate_personal_access_token(
    settings: &Settings,
    store: &dyn Store,
    args: RotateArgs,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let rotated = token_lifecycle::rotate_personal_access_token(
        store,
        &Caller::operator(),
        PersonalAccessTokenRef::Id(args.id),
        rotate_request(&args)?,
        LifecycleSettings::of(settings),
        &settings.tokens.formats(),
        now,
    )
    .await?;
    let json = args.json.then(|| {
        views::RotatedPersonalAccessTokenView::new(
            &rotated.token,
            rotated.secret.expose(),
            rotated.previous_secret_expires_at,
            now,
        )
    });
    let expires_at = rotated.token.expires_at;
    print_rotated(json, rotated.token.id, None, &rotated, expires_at, now)
}

/// The rotated token: its JSON when asked for (`--json`), else a few lines.
fn print_rotated<T>(
    json: Option<impl serde::Serialize>,
    id: i64,
    username: Option<&str>,
    rotated: &Rotated<T>,
    expires_at: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    if let Some(value) = json {
        return super::print_json(&value);
    }
    let previous_secret_expires_at = rotated.previous_secret_expires_at;
    println!("id:       {id}");
    if let Some(username) = username {
        println!("username: {username}");
    }
    println!("token:    {}", rotated.secret.expose());
    println!(
        "expires:  {}",
        expires_at.map_or("never".to_owned(), views::timestamp)
    );
    if previous_secret_expires_at > now {
        println!(
            "previous: works until {}",
            views::timestamp(previous_secret_expires_at)
        );
    } else {
        println!("previous: refused from now on");
    }
    println!("This is the only time the new secret is shown; store it now.");
    Ok(())
}

pub async fn update_group(
    settings: &Settings,
    path: &str,
    max_token_lifetime_days: Option<u32>,
    require_token_expiry: Option<bool>,
) -> anyhow::Result<()> {
    if max_token_lifetime_days.is_none() && require_token_expiry.is_none() {
        anyhow::bail!(
            "nothing to change: give --max-token-lifetime-days and/or --require-token-expiry"
        );
    }
    let store = open_store(settings).await?;
    let (group, limits) = token_lifecycle::set_group_limits(
        store.as_ref(),
        &Caller::operator(),
        &NamespaceRef::Path(path.to_owned()),
        GroupLimitsChange {
            // 0 removes the group's own maximum, as in the API.
            max_token_lifetime_days: max_token_lifetime_days.map(|days| (days > 0).then_some(days)),
            require_token_expiry,
        },
        settings.tokens.lifetime,
        Utc::now(),
    )
    .await?;
    println!(
        "group {}: {}",
        group.full_path.as_str(),
        serde_json::to_string(&views::GroupLimitsView::new(limits))?
    );
    Ok(())
}
