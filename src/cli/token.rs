//! `regauth token revoke-leaked`: every regauth token in standard input is revoked, as an
//! administrator would through `DELETE /api/v4/admin/token`. The tokens are found by their
//! format (`token_format`), so a scanner's report can be piped in as it is.

use std::io::BufRead as _;

use chrono::Utc;

use crate::config::Settings;
use crate::domain::TokenSecret;
use crate::service::caller::Caller;
use crate::service::leaks::{self, Identified, LeakReport, Reporter};

pub async fn revoke_leaked(settings: &Settings, location: Option<String>) -> anyhow::Result<()> {
    let formats = settings.tokens.formats();
    // Standard input is read first, whole (a pipe from a scanner), off the executor.
    let lines = tokio::task::spawn_blocking(|| -> std::io::Result<Vec<String>> {
        std::io::stdin().lock().lines().collect()
    })
    .await??;
    let mut found = Vec::new();
    for line in &lines {
        let in_line = formats.find_in(line);
        if in_line.is_empty() {
            // A line that is one token alone, of a format regauth no longer makes.
            let alone = line.trim();
            if !alone.is_empty() && !alone.contains(char::is_whitespace) && alone.len() <= 256 {
                found.push(alone.to_owned());
            }
        } else {
            found.extend(in_line.into_iter().map(|(_, token)| token));
        }
    }
    // Each token once, in the order found (a scanner reports a token at every place it is).
    let mut seen = std::collections::HashSet::new();
    found.retain(|token| seen.insert(token.clone()));
    let store = super::store::open_store(settings).await?;
    let caller = Caller::operator();
    let (mut revoked, mut already, mut unknown) = (0, 0, 0);
    for token in found {
        let report = LeakReport {
            secret: TokenSecret::from_presented(token),
            location: location.clone(),
            source: Some("cli".to_owned()),
        };
        match leaks::revoke(
            store.as_ref(),
            &formats,
            &report,
            Reporter::Administrator,
            caller.actor_name(),
            None,
            Utc::now(),
        )
        .await?
        {
            Some((found, newly)) => {
                if newly {
                    revoked += 1;
                    if let (Identified::DeployToken(token), Some(smtp)) =
                        (&found, &settings.housekeeping.smtp)
                    {
                        let mailer = crate::mail::SmtpMailer::new(smtp)?;
                        leaks::notify_owners(
                            store.as_ref(),
                            &mailer,
                            token,
                            Reporter::Administrator,
                            location.as_deref(),
                        )
                        .await;
                    }
                } else {
                    already += 1;
                }
                println!("{}", describe(&found, newly));
            }
            None => unknown += 1,
        }
    }
    eprintln!("{revoked} revoked, {already} already revoked, {unknown} not regauth tokens");
    Ok(())
}

fn describe(found: &Identified, newly: bool) -> String {
    let state = if newly { "revoked" } else { "already revoked" };
    match found {
        Identified::DeployToken(token) => format!(
            "{state}: deploy token {} ({}) of {} {}",
            token.id,
            crate::domain::text::printable(&token.username),
            token.owner.kind,
            token.owner.full_path.as_str()
        ),
        Identified::PersonalAccessToken(token, user) => format!(
            "{state}: personal access token {} of user {}",
            token.id,
            crate::domain::text::printable(&user.username)
        ),
        Identified::RefreshToken(token) => format!(
            "{state}: a refresh token of deploy token {} ({})",
            token.id,
            crate::domain::text::printable(&token.username)
        ),
        Identified::WorkloadCredential(credential) => format!(
            "{state}: exchanged credential {} of workload identity {} ({}) of {} {}",
            credential.id,
            credential.policy.id,
            crate::domain::text::printable(&credential.policy.name),
            credential.policy.owner.kind,
            credential.policy.owner.full_path.as_str()
        ),
    }
}
