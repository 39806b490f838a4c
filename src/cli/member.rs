//! `regauth member add|remove`: a user's role in a group or project.

use chrono::Utc;

use super::store::open_store;
use super::MemberCommand;
use crate::config::Settings;
use crate::domain::text::printable;
use crate::service::caller::Caller;
use crate::service::users;

pub async fn run(settings: &Settings, command: MemberCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        MemberCommand::Add {
            username,
            namespace,
            role,
        } => {
            let (kind, path) = namespace.kind_and_path();
            users::add_member(
                store.as_ref(),
                &Caller::operator(),
                &username,
                kind,
                path,
                role,
                Utc::now(),
            )
            .await?;
            println!(
                "{} is now {role} of {kind} {}",
                printable(&username),
                printable(path)
            );
        }
        MemberCommand::Remove {
            username,
            namespace,
        } => {
            let (kind, path) = namespace.kind_and_path();
            users::remove_member(store.as_ref(), &Caller::operator(), &username, kind, path)
                .await?;
            println!(
                "removed {} from {kind} {}",
                printable(&username),
                printable(path)
            );
        }
    }
    Ok(())
}
