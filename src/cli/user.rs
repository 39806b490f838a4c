//! `regauth user list|create|block|unblock|password|new-address-mail` and `regauth user token create|revoke`.

use chrono::Utc;

use super::store::open_store;
use super::{UserCommand, UserTokenCommand};
use crate::config::Settings;
use crate::domain::expiry::parse_expires_at;
use crate::domain::text::printable;
use crate::domain::{Email, Username};
use crate::service::caller::Caller;
use crate::service::users;
use crate::views;

pub async fn run(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let now = Utc::now();
    let operator = Caller::operator();
    match command {
        UserCommand::List { json } => {
            let found = users::list(store.as_ref()).await?;
            if json {
                let list: Vec<_> = found.iter().map(views::UserView::new).collect();
                super::print_json(&list)?;
            } else {
                println!(
                    "{:<6} {:<24} {:<8} {:<6} EMAIL",
                    "ID", "USERNAME", "STATE", "ROLE"
                );
                for user in &found {
                    println!(
                        "{:<6} {:<24} {:<8} {:<6} {}",
                        user.id,
                        printable(&user.username),
                        if user.blocked { "blocked" } else { "active" },
                        if user.admin { "admin" } else { "user" },
                        printable(&user.email)
                    );
                }
            }
        }
        UserCommand::Create {
            username,
            email,
            admin,
        } => {
            let username = Username::parse(&username)?;
            let email = Email::parse(&email)?;
            let user =
                users::create(store.as_ref(), &operator, &username, &email, admin, now).await?;
            println!(
                "created user {} (id {}{})",
                printable(&user.username),
                user.id,
                if user.admin { ", admin" } else { "" }
            );
        }
        UserCommand::Block { username } => {
            users::set_blocked(store.as_ref(), &operator, &username, true).await?;
            println!(
                "blocked {}: their tokens no longer work",
                printable(&username)
            );
        }
        UserCommand::Unblock { username } => {
            users::set_blocked(store.as_ref(), &operator, &username, false).await?;
            println!("unblocked {}", printable(&username));
        }
        UserCommand::Password { username } => {
            let password = tokio::task::spawn_blocking(read_password_line).await??;
            let user = crate::service::web_sessions::set_password(
                store.as_ref(),
                &operator,
                &username,
                crate::service::web_sessions::Password::new(password),
                now,
            )
            .await?;
            println!("password set for {}", user.username);
        }
        UserCommand::NewAddressMail { username, state } => {
            let on = state == "on";
            let user = users::set_new_address_mail(store.as_ref(), &username, on, now).await?;
            println!(
                "new-address mail {} for {} ({})",
                if on { "on" } else { "off" },
                printable(&user.username),
                printable(&user.email)
            );
            if on && settings.housekeeping.smtp.is_none() {
                eprintln!("warning: smtp_url is not set: no mail is sent until it is");
            }
        }
        UserCommand::Token(UserTokenCommand::Rotate(args)) => {
            super::token_lifecycle::rotate_personal_access_token(settings, store.as_ref(), args)
                .await?;
        }
        UserCommand::Token(UserTokenCommand::Revoke { id }) => {
            users::revoke_personal_access_token(store.as_ref(), &operator, id).await?;
            println!("revoked personal access token {id}");
        }
        UserCommand::Token(UserTokenCommand::Create {
            username,
            name,
            scopes,
            expires_at,
            allow_from,
            json,
        }) => {
            let scopes = users::parse_api_scopes(&scopes)?;
            let expires_at = expires_at.map(|text| parse_expires_at(&text)).transpose()?;
            // Checked before anything is created.
            let ranges = crate::domain::address_range::IpRanges::parse_list(&allow_from)?;
            let (token, secret) = users::create_personal_access_token(
                store.as_ref(),
                &operator,
                &settings.tokens.formats(),
                &username,
                &name,
                scopes,
                expires_at,
                settings.tokens.lifetime,
                now,
            )
            .await?;
            // Before the secret is shown: until then nobody can use the token.
            if !ranges.is_empty() {
                crate::service::restrictions::set_personal_access_token_ip_ranges(
                    store.as_ref(),
                    token.id,
                    &ranges,
                )
                .await?;
            }
            let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
            if json {
                super::print_json(&views::CreatedPersonalAccessTokenView {
                    id: token.id,
                    name: &token.name,
                    username: &username,
                    token: secret.expose(),
                    scopes: scopes.clone(),
                    expires_at: token.expires_at.map(views::Timestamp),
                    ip_restriction_ranges: ranges.to_text(),
                })?;
            } else {
                println!("id:     {}", token.id);
                println!("token:  {}", secret.expose());
                println!("scopes: {}", scopes.join(","));
                println!("This is the only time the token is shown; store it now.");
            }
        }
    }
    Ok(())
}

/// The new password: typed twice without echo on a terminal, else one line of standard
/// input (a pipe or a file), without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            anyhow::bail!("no password on standard input");
        }
        return Ok(password);
    }
    let first = read_hidden("new password: ")?;
    if first.is_empty() {
        anyhow::bail!("no password typed; nothing changed");
    }
    let second = read_hidden("the same password again: ")?;
    if first != second {
        anyhow::bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// One line typed on the terminal with echo off; echo comes back even when reading fails.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)?;
    let mut hidden = saved.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    hidden.local_modes.insert(LocalModes::ECHONL);
    // Echo off before the prompt shows: a person (or a script) answering the prompt at once
    // must not see the password echoed.
    tcsetattr(&stdin, OptionalActions::Now, &hidden)?;
    eprint!("{prompt}");
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    read?;
    restored?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
