//! `regauth group list|create` and `regauth project list|create|update`.

use chrono::Utc;

use super::store::open_store;
use super::{GroupCommand, ProjectCommand};
use crate::config::Settings;
use crate::domain::text::printable;
use crate::domain::{NamespaceKind, Visibility};
use crate::service::caller::Caller;
use crate::service::namespaces::{self, NamespaceRef};
use crate::views;

pub async fn group(settings: &Settings, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { json } => list(settings, NamespaceKind::Group, json).await,
        GroupCommand::Create { path } => {
            create_namespace(settings, NamespaceKind::Group, &path, Visibility::default()).await
        }
        GroupCommand::Update {
            path,
            allow_from,
            max_token_lifetime_days,
            require_token_expiry,
        } => {
            if allow_from.is_empty()
                && max_token_lifetime_days.is_none()
                && require_token_expiry.is_none()
            {
                anyhow::bail!(
                    "nothing to change: give --allow-from, --max-token-lifetime-days or --require-token-expiry"
                );
            }
            if !allow_from.is_empty() {
                let store = open_store(settings).await?;
                let ranges = crate::domain::address_range::IpRanges::parse_list(&allow_from)?;
                let group = crate::service::restrictions::set_group_ip_ranges(
                    store.as_ref(),
                    &Caller::operator(),
                    &NamespaceRef::Path(path.clone()),
                    ranges.clone(),
                    Utc::now(),
                )
                .await?;
                println!(
                    "tokens below group {} are usable from {}",
                    group.full_path.as_str(),
                    super::deploy_token::allowed_from(&ranges)
                );
            }
            if max_token_lifetime_days.is_some() || require_token_expiry.is_some() {
                super::token_lifecycle::update_group(
                    settings,
                    &path,
                    max_token_lifetime_days,
                    require_token_expiry,
                )
                .await?;
            }
            Ok(())
        }
    }
}

pub async fn project(settings: &Settings, command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::List { json } => list(settings, NamespaceKind::Project, json).await,
        ProjectCommand::Create { path, visibility } => {
            create_namespace(settings, NamespaceKind::Project, &path, visibility).await
        }
        ProjectCommand::Update { path, visibility } => {
            let store = open_store(settings).await?;
            let project = namespaces::set_visibility(
                store.as_ref(),
                &Caller::operator(),
                &NamespaceRef::Path(path),
                visibility,
            )
            .await?;
            println!(
                "project {} is now {}",
                project.full_path.as_str(),
                project.visibility
            );
            Ok(())
        }
    }
}

async fn list(settings: &Settings, kind: NamespaceKind, json: bool) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let found = namespaces::list(store.as_ref(), kind).await?;
    if json {
        let public_url = settings.public_url(settings.server.listen.port());
        let list: Vec<_> = found
            .iter()
            .map(|namespace| views::NamespaceView::new(namespace, &public_url))
            .collect();
        super::print_json(&list)?;
        return Ok(());
    }
    match kind {
        NamespaceKind::Group => println!("{:<6} PATH", "ID"),
        NamespaceKind::Project => println!("{:<6} {:<10} PATH", "ID", "VISIBILITY"),
    }
    for namespace in &found {
        let path = printable(namespace.full_path.as_str());
        match kind {
            NamespaceKind::Group => println!("{:<6} {path}", namespace.id),
            NamespaceKind::Project => println!(
                "{:<6} {:<10} {path}",
                namespace.id,
                namespace.visibility.as_str()
            ),
        }
    }
    Ok(())
}

async fn create_namespace(
    settings: &Settings,
    kind: NamespaceKind,
    path: &str,
    visibility: Visibility,
) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let namespace = namespaces::create_with_visibility(
        store.as_ref(),
        &Caller::operator(),
        kind,
        path,
        visibility,
        Utc::now(),
    )
    .await?;
    match kind {
        NamespaceKind::Project => println!(
            "created {} {} (id {}, {})",
            kind,
            printable(namespace.full_path.as_str()),
            namespace.id,
            namespace.visibility
        ),
        NamespaceKind::Group => println!(
            "created {} {} (id {})",
            kind,
            printable(namespace.full_path.as_str()),
            namespace.id
        ),
    }
    Ok(())
}
