//! Expiry notifications (DOMAIN.md "Expiry notifications"): once a day, every active deploy
//! token that expires within 60 days gets one notice per window — 60 days (31–60 days
//! left), 30 days (8–30), 7 days (0–7) — sent to the Maintainers and Owners of its project
//! (the Owners of its group for group tokens), never twice for the same window.
//!
//! [`run_once`] is the whole job; `regauth serve` runs it daily ([`schedule`]) and
//! `regauth notify-expiring` once. Each notice is claimed in the database before it is
//! sent and marked sent after, so a restart (or a second replica) never sends it again; a
//! failed delivery gives the claim back and the next run retries it.

pub mod message;
pub mod schedule;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::notice::{days_left, is_notice_recipient, notice_horizon, notice_window};
use crate::error::Report;
use crate::mail::Mailer;
use crate::store::{NoticeKey, NotificationStore, StoreError};

/// A claim older than this belongs to a run that died while sending; another run takes it
/// over. Far longer than one SMTP exchange may take.
const STALE_CLAIM: TimeDelta = TimeDelta::hours(1);

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Active tokens in a notice window.
    pub tokens: usize,
    /// Notices delivered by this run.
    pub sent: usize,
    /// Notices whose delivery failed; the next run tries them again.
    pub failed: usize,
    /// Notices sent before (or being sent by another run at this moment).
    pub skipped: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent, {} failed, {} skipped ({} token(s) in a notice window)",
            self.sent, self.failed, self.skipped, self.tokens
        )
    }
}

/// Who is told about a token: those who may manage it (a project's Maintainers and Owners, a
/// group's Owners, inherited roles included), not blocked.
pub async fn token_managers<S>(
    store: &S,
    token: &crate::domain::DeployToken,
) -> Result<Vec<crate::domain::User>, StoreError>
where
    S: NotificationStore + ?Sized,
{
    Ok(store
        .namespace_members(&token.owner)
        .await?
        .into_iter()
        .filter(|member| {
            is_notice_recipient(token.owner.kind, Some(member.role), member.user.blocked)
        })
        .map(|member| member.user)
        .collect())
}

/// Sends every notice due at `now` that has not been sent. `now` decides the windows (tests
/// and `notify-expiring --now` simulate a day with it); the claims record the wall clock.
/// A database error stops the run (the notices not reached are sent by the next one).
pub async fn run_once<S>(
    store: &S,
    mailer: &dyn Mailer,
    now: DateTime<Utc>,
) -> Result<Summary, StoreError>
where
    S: NotificationStore + ?Sized,
{
    let mut summary = Summary::default();
    let tokens = store
        .deploy_tokens_expiring(now, notice_horizon(now))
        .await?;
    for token in tokens {
        let (Some(expires_at), Some(window), Some(days)) = (
            token.expires_at,
            notice_window(token.expires_at, now),
            days_left(token.expires_at, now),
        ) else {
            continue;
        };
        summary.tokens += 1;
        let recipients = token_managers(store, &token).await?;
        if recipients.is_empty() {
            tracing::warn!(
                token_id = token.id,
                owner = token.owner.full_path.as_str(),
                window = window.days(),
                "deploy token expires {days} day(s) from now but nobody may be told"
            );
        }
        for user in recipients {
            let key = NoticeKey {
                deploy_token_id: token.id,
                window,
                user_id: user.id,
            };
            let clock = Utc::now();
            if !store
                .claim_notice(&key, &user.email, clock, clock - STALE_CLAIM)
                .await?
            {
                summary.skipped += 1;
                continue;
            }
            let mail = message::expiry_notice(&token, window, days, expires_at, &user);
            match mailer.send(&mail).await {
                Ok(()) => {
                    store.mark_notice_sent(&key, Utc::now()).await?;
                    summary.sent += 1;
                    tracing::info!(
                        token_id = token.id,
                        owner = token.owner.full_path.as_str(),
                        window = window.days(),
                        recipient = user.username.as_str(),
                        "expiry notice sent"
                    );
                }
                Err(error) => {
                    store.release_notice(&key).await?;
                    summary.failed += 1;
                    tracing::warn!(
                        token_id = token.id,
                        window = window.days(),
                        recipient = user.username.as_str(),
                        error = %Report(&error),
                        "expiry notice not delivered; the next run tries again"
                    );
                }
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;

    use super::*;
    use crate::domain::NamespacePath;
    use crate::domain::{
        DeployToken, DeployTokenScope, Namespace, NamespaceKind, NoticeWindow, Role, User,
    };
    use crate::mail::{Mail, MailError};
    use crate::store::Member;

    /// Tokens, members and notice rows in memory; each token's owner has the same members.
    #[derive(Default)]
    struct FakeStore {
        tokens: Vec<DeployToken>,
        members: Vec<Member>,
        /// key → sent?
        notices: Mutex<HashMap<NoticeKey, bool>>,
    }

    #[async_trait]
    impl NotificationStore for FakeStore {
        async fn deploy_tokens_expiring(
            &self,
            after: DateTime<Utc>,
            before: DateTime<Utc>,
        ) -> Result<Vec<DeployToken>, StoreError> {
            Ok(self
                .tokens
                .iter()
                .filter(|t| !t.revoked && t.expires_at.is_some_and(|e| e > after && e < before))
                .cloned()
                .collect())
        }
        async fn namespace_members(&self, _: &Namespace) -> Result<Vec<Member>, StoreError> {
            Ok(self.members.clone())
        }
        async fn claim_notice(
            &self,
            key: &NoticeKey,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut notices = self.notices.lock().unwrap();
            if notices.contains_key(key) {
                return Ok(false);
            }
            notices.insert(*key, false);
            Ok(true)
        }
        async fn mark_notice_sent(
            &self,
            key: &NoticeKey,
            _: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            self.notices.lock().unwrap().insert(*key, true);
            Ok(())
        }
        async fn release_notice(&self, key: &NoticeKey) -> Result<(), StoreError> {
            let mut notices = self.notices.lock().unwrap();
            if notices.get(key) == Some(&false) {
                notices.remove(key);
            }
            Ok(())
        }
    }

    /// Records what it sends; fails for the addresses in `failing`.
    #[derive(Default)]
    struct FakeMailer {
        sent: Mutex<Vec<Mail>>,
        failing: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Mailer for FakeMailer {
        async fn send(&self, mail: &Mail) -> Result<(), MailError> {
            if self.failing.lock().unwrap().contains(&mail.to_email) {
                return Err(MailError::Smtp("connection refused".into()));
            }
            self.sent.lock().unwrap().push(mail.clone());
            Ok(())
        }
    }

    impl FakeMailer {
        fn take(&self) -> Vec<(String, String)> {
            std::mem::take(&mut *self.sent.lock().unwrap())
                .into_iter()
                .map(|mail| (mail.to_email, mail.subject))
                .collect()
        }
    }

    fn day(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 1, 0, 0).unwrap() + TimeDelta::days(n)
    }

    fn midnight(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(n)
    }

    fn token(id: i64, kind: NamespaceKind, expires_at: DateTime<Utc>) -> DeployToken {
        DeployToken {
            id,
            name: format!("token{id}"),
            username: format!("gitlab+deploy-token-{id}"),
            owner: Namespace {
                id: 1,
                kind,
                parent_id: None,
                full_path: NamespacePath::parse("acme/web").unwrap(),
                name: "web".into(),
                visibility: Default::default(),
                created_at: day(0),
            },
            scopes: [DeployTokenScope::ReadRegistry].into_iter().collect(),
            expires_at: Some(expires_at),
            revoked: false,
            created_at: day(0),
            last_used_at: None,
            restrictions: Default::default(),
            rotation: Default::default(),
        }
    }

    fn member(id: i64, name: &str, role: Role, blocked: bool) -> Member {
        Member {
            user: User {
                id,
                username: name.into(),
                email: format!("{name}@example.com"),
                admin: false,
                blocked,
                created_at: day(0),
            },
            role,
        }
    }

    fn members() -> Vec<Member> {
        vec![
            member(1, "owner", Role::Owner, false),
            member(2, "maintainer", Role::Maintainer, false),
            member(3, "developer", Role::Developer, false),
            member(4, "blocked", Role::Owner, true),
        ]
    }

    #[tokio::test]
    async fn each_window_is_sent_once_to_each_recipient_as_the_days_pass() {
        let store = FakeStore {
            tokens: vec![token(1, NamespaceKind::Project, midnight(70))],
            members: members(),
            ..Default::default()
        };
        let mailer = FakeMailer::default();
        let mut sent_windows = Vec::new();
        for n in 0..=75 {
            let summary = run_once(&store, &mailer, day(n)).await.unwrap();
            assert_eq!(summary.failed, 0);
            for (to, subject) in mailer.take() {
                sent_windows.push((n, to, subject));
            }
        }
        let days: Vec<i64> = sent_windows.iter().map(|(n, _, _)| *n).collect();
        // 60 days left on day 10, 30 on day 40, 7 on day 63; two recipients each time.
        assert_eq!(days, vec![10, 10, 40, 40, 63, 63]);
        assert_eq!(sent_windows[0].1, "owner@example.com");
        assert_eq!(sent_windows[1].1, "maintainer@example.com");
        assert!(sent_windows[0].2.ends_with("expires in 60 days"));
        assert!(sent_windows[2].2.ends_with("expires in 30 days"));
        assert!(sent_windows[4].2.ends_with("expires in 7 days"));
    }

    #[tokio::test]
    async fn a_token_first_seen_inside_a_later_window_gets_only_that_window() {
        let store = FakeStore {
            tokens: vec![token(1, NamespaceKind::Project, midnight(20))],
            members: members(),
            ..Default::default()
        };
        let mailer = FakeMailer::default();
        run_once(&store, &mailer, day(0)).await.unwrap();
        let sent = mailer.take();
        assert_eq!(sent.len(), 2);
        assert!(sent
            .iter()
            .all(|(_, subject)| subject.ends_with("expires in 20 days")));
        let notices = store.notices.lock().unwrap();
        assert!(
            notices.keys().all(|key| key.window == NoticeWindow::Days30),
            "{notices:?}"
        );
    }

    #[tokio::test]
    async fn group_tokens_go_to_owners_only() {
        let store = FakeStore {
            tokens: vec![token(1, NamespaceKind::Group, midnight(5))],
            members: members(),
            ..Default::default()
        };
        let mailer = FakeMailer::default();
        let summary = run_once(&store, &mailer, day(0)).await.unwrap();
        assert_eq!(
            mailer
                .take()
                .into_iter()
                .map(|(to, _)| to)
                .collect::<Vec<_>>(),
            vec!["owner@example.com"]
        );
        assert_eq!(
            summary,
            Summary {
                tokens: 1,
                sent: 1,
                failed: 0,
                skipped: 0
            }
        );
    }

    #[tokio::test]
    async fn a_failed_delivery_is_not_recorded_and_is_retried_next_run() {
        let store = FakeStore {
            tokens: vec![token(1, NamespaceKind::Project, midnight(30))],
            members: members(),
            ..Default::default()
        };
        let mailer = FakeMailer::default();
        mailer
            .failing
            .lock()
            .unwrap()
            .push("maintainer@example.com".into());
        let summary = run_once(&store, &mailer, day(0)).await.unwrap();
        assert_eq!(
            summary,
            Summary {
                tokens: 1,
                sent: 1,
                failed: 1,
                skipped: 0
            }
        );
        assert_eq!(mailer.take().len(), 1);

        mailer.failing.lock().unwrap().clear();
        let summary = run_once(&store, &mailer, day(1)).await.unwrap();
        assert_eq!(
            summary,
            Summary {
                tokens: 1,
                sent: 1,
                failed: 0,
                skipped: 1
            }
        );
        assert_eq!(
            mailer.take(),
            vec![(
                "maintainer@example.com".to_owned(),
                "Deploy token token1 of acme/web expires in 29 days".to_owned()
            )]
        );
        let summary = run_once(&store, &mailer, day(2)).await.unwrap();
        assert_eq!(
            summary,
            Summary {
                tokens: 1,
                sent: 0,
                failed: 0,
                skipped: 2
            }
        );
    }

    #[tokio::test]
    async fn tokens_beyond_60_days_or_expired_are_left_alone() {
        let store = FakeStore {
            tokens: vec![
                token(1, NamespaceKind::Project, midnight(61)),
                token(2, NamespaceKind::Project, day(0)),
            ],
            members: members(),
            ..Default::default()
        };
        let mailer = FakeMailer::default();
        let summary = run_once(&store, &mailer, day(0)).await.unwrap();
        assert_eq!(summary, Summary::default());
        assert!(mailer.take().is_empty());
    }
}
