//! A leaked secret, found anywhere, is dead at once (WIRE-FORMATS.md §2(b)): whoever holds the
//! string — an administrator (`/api/v4/admin/token`, `regauth token revoke-leaked`), GitHub's
//! secret scanning, a self-managed GitLab's secret detection — can have it identified and
//! revoked without knowing its id or owner.
//!
//! Every intake ends here. A secret is first judged by its text (`token_format`): a malformed
//! one, or one with a wrong checksum, is no regauth token and costs no lookup. Then, by kind:
//! - a deploy token is revoked in one transaction with its audit record
//!   (`deploy_token.revoke`, `{"reason": "leaked", "reporter", "location", "source"}`); its
//!   refresh tokens go with it;
//! - a personal access token is revoked and audited;
//! - a refresh token is deleted (its deploy token stays: the refresh token is what leaked);
//! - a credential minted by the token exchange (workload identity) is deleted with its audit
//!   record (`workload_credential.revoke`); its policy stays, as does every other credential.
//!
//! Revoking is idempotent, and an unknown secret is answered like a known one wherever the
//! answer reaches a reporter (no oracle); only administrators learn what a token was.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::token_format::{Shape, TokenFormats, TokenKind};
use crate::domain::{
    ActorKind, AuditAction, AuditEvent, DeployToken, PersonalAccessToken, TokenSecret, User,
};
use crate::error::Error;
use crate::store::workload::WorkloadCredential;
use crate::store::Store;

/// Who reported a leak, for the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Reporter {
    /// An administrator through the API or the operator at the command line.
    #[strum(serialize = "admin")]
    Administrator,
    /// GitHub's secret-scanning partner program.
    #[strum(serialize = "github")]
    GitHub,
    /// A GitLab instance's secret detection (Token Revocation API).
    #[strum(serialize = "gitlab")]
    GitLab,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One leaked secret as reported: where it was found, if the reporter said.
#[derive(Debug)]
pub struct LeakReport {
    pub secret: TokenSecret,
    /// A URL or a file and line; bounded and escaped before it is stored.
    pub location: Option<String>,
    /// What kind of place (`commit`, `issue_comment`, ...), as the reporter names it.
    pub source: Option<String>,
}

/// What a secret turned out to be.
#[derive(Debug, Clone)]
pub enum Identified {
    DeployToken(DeployToken),
    PersonalAccessToken(PersonalAccessToken, User),
    /// A refresh token of this deploy token.
    RefreshToken(DeployToken),
    /// A credential the token exchange minted, with its policy.
    WorkloadCredential(WorkloadCredential),
}

impl Identified {
    pub fn kind(&self) -> TokenKind {
        match self {
            Identified::DeployToken(_) => TokenKind::DeployToken,
            Identified::PersonalAccessToken(..) => TokenKind::PersonalAccessToken,
            Identified::RefreshToken(_) => TokenKind::RefreshToken,
            Identified::WorkloadCredential(_) => TokenKind::WorkloadCredential,
        }
    }
}

/// The longest location or source kept in the audit trail, in characters.
const LOCATION_CHARS: usize = 512;

fn bounded(text: Option<&str>) -> Option<String> {
    text.map(|text| {
        crate::domain::text::printable(text)
            .chars()
            .take(LOCATION_CHARS)
            .collect()
    })
}

/// What `secret` is, looked up only if its text can be one of regauth's secrets.
#[tracing::instrument(skip_all)]
pub async fn identify(
    store: &dyn Store,
    formats: &TokenFormats,
    secret: &TokenSecret,
) -> Result<Option<Identified>, Error> {
    let shape = formats.shape(secret.expose());
    let kinds: &[TokenKind] = match &shape {
        Shape::Malformed => return Ok(None),
        Shape::Valid(kind) | Shape::Legacy(kind) => std::slice::from_ref(kind),
        // Made under an older prefix: any kind.
        Shape::Unknown => &TokenKind::ALL,
    };
    let digest = secret.digest();
    for kind in kinds {
        let found = match kind {
            TokenKind::DeployToken => store
                .find_deploy_token_by_digest(&digest)
                .await?
                .map(Identified::DeployToken),
            TokenKind::PersonalAccessToken => store
                .find_personal_access_token_by_digest(&digest)
                .await?
                .map(|(token, user)| Identified::PersonalAccessToken(token, user)),
            TokenKind::RefreshToken => store
                .find_refresh_token(&digest)
                .await?
                .map(|grant| Identified::RefreshToken(grant.deploy_token)),
            TokenKind::WorkloadCredential => store
                .find_workload_credential(&digest)
                .await?
                .map(Identified::WorkloadCredential),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Revokes a leaked secret (idempotent): what it was and whether this call revoked it (false
/// when it was revoked already), or `None` when it is none of regauth's. `actor` names the
/// administrator, or the reporting service.
#[tracing::instrument(skip_all)]
pub async fn revoke(
    store: &dyn Store,
    formats: &TokenFormats,
    report: &LeakReport,
    reporter: Reporter,
    actor: &str,
    ip_address: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<(Identified, bool)>, Error> {
    let Some(found) = identify(store, formats, &report.secret).await? else {
        return Ok(None);
    };
    let details = json!({
        "reason": "leaked",
        "reporter": reporter.as_str(),
        "location": bounded(report.location.as_deref()),
        "source": bounded(report.source.as_deref()),
        "kind": found.kind().as_str(),
    });
    let actor_kind = match reporter {
        Reporter::Administrator => ActorKind::User,
        Reporter::GitHub | Reporter::GitLab => ActorKind::Reporter,
    };
    let record = |token: &DeployToken| AuditEvent {
        created_at: now,
        actor_kind,
        actor: actor.to_owned(),
        action: AuditAction::DeployTokenRevoke,
        deploy_token_id: Some(token.id),
        namespace_id: Some(token.owner.id),
        ip_address: ip_address.clone(),
        details: details.clone(),
    };
    // Already revoked: nothing to do and nothing to record again (reports repeat). A secret
    // replaced by a rotation whose grace period is over is dead already: revoking the token
    // for it would break the pipelines that moved to the new secret (#27).
    let revoked = match &found {
        Identified::DeployToken(token) if token.revoked => None,
        Identified::PersonalAccessToken(token, _) if token.revoked => None,
        Identified::DeployToken(token) if !token.rotation.presented_secret_works(now) => None,
        Identified::PersonalAccessToken(token, _)
            if !token.rotation.presented_secret_works(now) =>
        {
            None
        }
        Identified::DeployToken(token) => store
            .revoke_deploy_token(token.id, now, &record(token))
            .await?
            .map(|_| ()),
        Identified::PersonalAccessToken(token, _) => {
            let mut details = details.clone();
            details["personal_access_token_id"] = json!(token.id);
            let event = AuditEvent {
                created_at: now,
                actor_kind,
                actor: actor.to_owned(),
                action: AuditAction::PersonalAccessTokenRevoke,
                deploy_token_id: None,
                namespace_id: None,
                ip_address: ip_address.clone(),
                details,
            };
            store
                .revoke_personal_access_token(token.id, Some(&event))
                .await?
                .then_some(())
        }
        Identified::RefreshToken(token) => {
            let mut event = record(token);
            event.action = AuditAction::RefreshTokenRevoke;
            store
                .delete_refresh_token(&report.secret.digest(), Some(&event))
                .await?
                .map(|_| ())
        }
        Identified::WorkloadCredential(credential) => {
            let mut details = details.clone();
            details["policy_id"] = json!(credential.policy.id);
            details["credential_id"] = json!(credential.id);
            let event = AuditEvent {
                created_at: now,
                actor_kind,
                actor: actor.to_owned(),
                action: AuditAction::WorkloadCredentialRevoke,
                deploy_token_id: None,
                namespace_id: Some(credential.policy.owner.id),
                ip_address: ip_address.clone(),
                details,
            };
            // Two reports of one credential at once: the second deletes nothing.
            store
                .delete_workload_credential(credential.id, &event)
                .await?
                .then_some(())
        }
    };
    tracing::warn!(
        kind = found.kind().as_str(),
        reporter = reporter.as_str(),
        newly_revoked = revoked.is_some(),
        "a leaked token was revoked"
    );
    Ok(Some((found, revoked.is_some())))
}

/// Mails the people who manage `token` (the expiry notices' recipients: a project's
/// Maintainers and Owners, a group's Owners) that it was revoked as leaked. Failures are
/// logged: the revocation stands whatever the mail does.
pub async fn notify_owners(
    store: &dyn Store,
    mailer: &dyn crate::mail::Mailer,
    token: &DeployToken,
    reporter: Reporter,
    location: Option<&str>,
) {
    let members = match store.namespace_members(&token.owner).await {
        Ok(members) => members,
        Err(error) => {
            tracing::error!(%error, token_id = token.id, "cannot find whom to tell about a leaked token");
            return;
        }
    };
    for member in members.into_iter().filter(|member| {
        crate::domain::notice::is_notice_recipient(
            token.owner.kind,
            Some(member.role),
            member.user.blocked,
        )
    }) {
        let mail = crate::service::notifications::message::leak_notice(
            token,
            reporter.as_str(),
            location,
            &member.user,
        );
        match mailer.send(&mail).await {
            Ok(()) => {
                tracing::info!(token_id = token.id, recipient = %member.user.username, "leak notice sent")
            }
            Err(error) => {
                tracing::warn!(%error, token_id = token.id, recipient = %member.user.username, "a leak notice was not sent")
            }
        }
    }
}

/// [`notify_owners`] in the background, through the configured SMTP server (none: nothing).
pub fn notify_owners_later(
    store: std::sync::Arc<dyn Store>,
    smtp: Option<&crate::config::SmtpSettings>,
    token: DeployToken,
    reporter: Reporter,
    location: Option<String>,
) {
    let Some(smtp) = smtp else {
        return;
    };
    let mailer = match crate::mail::SmtpMailer::new(smtp) {
        Ok(mailer) => mailer,
        Err(error) => {
            tracing::warn!(%error, "no leak notice: the SMTP settings do not make a mailer");
            return;
        }
    };
    tokio::spawn(async move {
        notify_owners(
            store.as_ref(),
            &mailer,
            &token,
            reporter,
            location.as_deref(),
        )
        .await;
    });
}

/// At most `per_minute` authenticated reports per process and minute (GitHub's and GitLab's
/// together; each may carry thousands of tokens): a reporter whose credentials leaked, or one
/// that loops, cannot make regauth look up and write without bound. Unauthenticated reports
/// never reach it (the signature or the pre-shared token is checked first), so nobody else can
/// use up the allowance.
pub struct ReportLimiter {
    per_minute: u32,
    window: std::sync::Mutex<(std::time::Instant, u32)>,
}

/// Reports per minute and process by default.
pub const REPORTS_PER_MINUTE: u32 = 60;

impl ReportLimiter {
    pub fn new(per_minute: u32) -> ReportLimiter {
        ReportLimiter {
            per_minute,
            window: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }

    /// Admits one report, or says how many seconds until the next window.
    pub fn admit(&self) -> Result<(), u64> {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = window.0.elapsed();
        if elapsed >= std::time::Duration::from_secs(60) {
            *window = (std::time::Instant::now(), 0);
        }
        if window.1 >= self.per_minute {
            return Err(60u64.saturating_sub(window.0.elapsed().as_secs()).max(1));
        }
        window.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_beyond_the_allowance_wait_for_the_next_minute() {
        let limiter = ReportLimiter::new(3);
        for _ in 0..3 {
            assert!(limiter.admit().is_ok());
        }
        let retry = limiter.admit().unwrap_err();
        assert!((1..=60).contains(&retry), "{retry}");
    }
}
