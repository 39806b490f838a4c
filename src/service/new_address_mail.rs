//! The new-address mail: when the registry reports a deploy token acting from a network it had
//! not used lately (`registry_events`), the people who manage the token (a project's
//! Maintainers and Owners, a group's Owners, as for expiry notices) and asked for it
//! (`regauth user new-address-mail USER on`) get one mail per token and network, ever. Sent in
//! the background: the registry's answer never waits for SMTP.

use chrono::{DateTime, Utc};

use crate::domain::registry_event::NewAddress;
use crate::domain::text::printable;
use crate::domain::{DeployToken, User};
use crate::error::Report;
use crate::mail::{Mail, Mailer};
use crate::store::{Store, StoreError};

/// Mails whoever asked about each new address; how many mails went out. A failed delivery
/// gives its claim up (a later new address of the same network may try again).
pub async fn send(
    store: &dyn Store,
    mailer: &dyn Mailer,
    news: &[NewAddress],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut sent = 0;
    for new in news {
        let Some(token) = store.find_deploy_token(new.deploy_token_id).await? else {
            continue;
        };
        let managers = crate::service::notifications::token_managers(store, &token).await?;
        let ids: Vec<i64> = managers.iter().map(|user| user.id).collect();
        let asked = store.new_address_mail_users(&ids).await?;
        for user in managers.iter().filter(|user| asked.contains(&user.id)) {
            if !store
                .claim_new_address_notice(token.id, &new.network, user.id, now)
                .await?
            {
                continue;
            }
            match mailer.send(&message(&token, new, user)).await {
                Ok(()) => {
                    sent += 1;
                    tracing::info!(
                        token_id = token.id,
                        network = %new.network,
                        recipient = user.username.as_str(),
                        "new-address mail sent"
                    );
                }
                Err(error) => {
                    store
                        .release_new_address_notice(token.id, &new.network, user.id)
                        .await?;
                    tracing::warn!(
                        token_id = token.id,
                        recipient = user.username.as_str(),
                        error = %Report(&error),
                        "new-address mail not delivered"
                    );
                }
            }
        }
    }
    Ok(sent)
}

/// The mail about `new` for `recipient`: which token, from where, what it did; never a secret.
pub fn message(token: &DeployToken, new: &NewAddress, recipient: &User) -> Mail {
    let name = printable(&token.name);
    let path = token.owner.full_path.as_str();
    let kind = token.owner.kind;
    Mail {
        to_name: printable(&recipient.username).into_owned(),
        to_email: recipient.email.clone(),
        subject: format!(
            "Deploy token {name} of {path} used from a new address: {}",
            printable(&new.address)
        ),
        body: format!(
            "Hello {user},\n\
             \n\
             the registry reports the deploy token \"{name}\" of {kind} {path} acting from\n\
             {address} ({network}), a network it had not used lately:\n\
             \n\
             Token:       {name} (id {id}, username {username})\n\
             Action:      {action} {repository}\n\
             At:          {at}\n\
             \n\
             If you expected this (a new runner, a moved CI), nothing needs doing. If not, the\n\
             token may have leaked: revoke it (regauth deploy-token revoke {id}, or on its page)\n\
             and create a new one.\n\
             \n\
             You receive this because you asked for new-address mail; each token and network is\n\
             mailed once. Turn it off with: regauth user new-address-mail {user} off\n",
            user = printable(&recipient.username),
            address = printable(&new.address),
            network = printable(&new.network),
            id = token.id,
            username = printable(&token.username),
            action = new.action.as_str(),
            repository = printable(&new.repository),
            at = new.at.format("%Y-%m-%d %H:%M:%S UTC"),
        ),
    }
}
