//! `regauth deploy-token create|list|revoke|events`, through the same service as the API (audited as
//! `cli:<OS user>`).

use chrono::{SecondsFormat, Utc};

use super::print_json;
use super::store::open_store;
use super::DeployTokenCommand;
use crate::config::Settings;
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::text::printable;
use crate::service::caller::Caller;
use crate::service::deploy_tokens::{self, ListOptions};
use crate::views;

pub async fn run(settings: &Settings, command: DeployTokenCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let now = Utc::now();
    let caller = Caller::operator();
    match command {
        DeployTokenCommand::Create {
            owner,
            name,
            scopes,
            username,
            expires_at,
            allow_from,
            repositories,
            json,
        } => {
            let owner = owner.find(store.as_ref()).await?;
            let expires_at = expires_at.map(|text| parse_expires_at(&text)).transpose()?;
            let request = DeployTokenRequest {
                name,
                username,
                scopes: vec![scopes],
                expires_at,
                ip_restriction_ranges: allow_from,
                repository_patterns: repositories
                    .iter()
                    .flat_map(|entry| entry.split(','))
                    .map(str::trim)
                    .filter(|pattern| !pattern.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
            let (ci_key, _) = crate::ci_secret::CiSecretKey::load_or_generate(
                &settings.signing.ci_secret_key_file(),
            )?;
            let authorized = deploy_tokens::authorize(
                store.as_ref(),
                &caller,
                crate::access::permissions::TokenOperation::Create,
                &owner,
            )
            .await?;
            let created = deploy_tokens::create(
                store.as_ref(),
                &authorized,
                request,
                settings.tokens.lifetime,
                &settings.tokens.formats(),
                &ci_key,
                now,
            )
            .await?;
            for warning in &created.warnings {
                eprintln!("warning: {warning}");
            }
            if json {
                print_json(&views::CreatedDeployTokenView::new(
                    &created.token,
                    created.secret.expose(),
                    now,
                ))?;
            } else {
                println!("id:       {}", created.token.id);
                println!("username: {}", printable(&created.token.username));
                println!("token:    {}", created.secret.expose());
                println!("scopes:   {}", created.token.scopes.names().join(","));
                let restrictions = &created.token.restrictions;
                if !restrictions.ip_ranges.is_empty() {
                    println!("allowed from: {}", restrictions.ip_ranges);
                }
                if !restrictions.repository_patterns.is_empty() {
                    println!(
                        "repositories: {}",
                        restrictions.repository_patterns.texts().join(",")
                    );
                }
                println!("This is the only time the token is shown; store it now.");
            }
        }
        DeployTokenCommand::Update {
            id,
            allow_from,
            json,
        } => {
            let ranges = crate::domain::address_range::IpRanges::parse_list(&allow_from)?;
            let token = crate::service::restrictions::set_deploy_token_ip_ranges(
                store.as_ref(),
                &caller,
                None,
                id,
                ranges,
                now,
            )
            .await?;
            if json {
                print_json(&views::DeployTokenView::new(&token, now))?;
            } else {
                println!(
                    "deploy token {} is usable from {}",
                    token.id,
                    allowed_from(&token.restrictions.ip_ranges)
                );
            }
        }
        DeployTokenCommand::List { owner, json } => {
            let owner = owner.find(store.as_ref()).await?;
            let tokens =
                deploy_tokens::list(store.as_ref(), &caller, &owner, ListOptions::default(), now)
                    .await?
                    .items;
            if json {
                let list: Vec<_> = tokens
                    .iter()
                    .map(|token| views::DeployTokenView::new(token, now))
                    .collect();
                print_json(&list)?;
            } else {
                println!(
                    "{:<6} {:<24} {:<32} {:<10} {:<20} SCOPES",
                    "ID", "NAME", "USERNAME", "STATE", "EXPIRES"
                );
                for token in &tokens {
                    let state = if token.revoked {
                        "revoked"
                    } else if token.is_expired(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    let expires = token
                        .expires_at
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "never".into());
                    println!(
                        "{:<6} {:<24} {:<32} {:<10} {:<20} {}",
                        token.id,
                        printable(&token.name),
                        printable(&token.username),
                        state,
                        expires,
                        token.scopes.names().join(",")
                    );
                }
            }
        }
        DeployTokenCommand::Events {
            id,
            page,
            per_page,
            json,
        } => {
            let (token, events) = crate::service::registry_events::of_deploy_token(
                store.as_ref(),
                &caller,
                None,
                id,
                page,
                per_page,
            )
            .await?;
            if json {
                let issued = crate::service::registry_events::issued_tokens_behind(
                    store.as_ref(),
                    token.id,
                    &events.items,
                    settings.signing.token_ttl,
                )
                .await?;
                let list: Vec<_> = events
                    .items
                    .iter()
                    .zip(
                        issued
                            .iter()
                            .map(Option::as_ref)
                            .chain(std::iter::repeat(None)),
                    )
                    .map(|(event, issued)| views::RegistryEventView::new(event, issued))
                    .collect();
                print_json(&list)?;
            } else {
                println!(
                    "deploy token {} ({}): {} registry events",
                    token.id,
                    printable(&token.username),
                    events.total
                );
                println!(
                    "{:<20} {:<7} {:<10} {:<40} {:<20} {:<16} DIGEST",
                    "WHEN", "ACTION", "TARGET", "REPOSITORY", "TAG", "ADDRESS"
                );
                for event in &events.items {
                    let action = if event.count > 1 {
                        format!("{}×{}", event.action.as_str(), event.count)
                    } else {
                        event.action.as_str().to_owned()
                    };
                    println!(
                        "{:<20} {:<7} {:<10} {:<40} {:<20} {:<16} {}",
                        event.last_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                        action,
                        event.kind.as_str(),
                        printable(&event.repository),
                        printable(event.tag.as_deref().unwrap_or("")),
                        printable(event.address.as_deref().unwrap_or("")),
                        printable(event.digest.as_deref().unwrap_or("")),
                    );
                }
            }
        }
        DeployTokenCommand::Rotate(args) => {
            super::token_lifecycle::rotate_deploy_token(settings, store.as_ref(), args).await?;
        }
        DeployTokenCommand::Revoke { id } => {
            let token = deploy_tokens::revoke_by_id(store.as_ref(), &caller, id, now).await?;
            println!(
                "revoked deploy token {} ({})",
                token.id,
                printable(&token.username)
            );
        }
    }
    Ok(())
}

/// An allow-list for people: its blocks, or "anywhere".
pub(super) fn allowed_from(ranges: &crate::domain::address_range::IpRanges) -> String {
    if ranges.is_empty() {
        "anywhere".to_owned()
    } else {
        ranges.to_text()
    }
}
