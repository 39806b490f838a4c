//! Expiry notifications (DOMAIN.md "Expiry notifications") end to end: real deploy tokens
//! and memberships in the test database, a real SMTP server (aiosmtpd) receiving the mail,
//! and the job run in-process or as `regauth notify-expiring --now ...` in a new process
//! (a restart, as far as the job can tell).

use std::process::{Command, Output};

use chrono::{DateTime, Duration, TimeZone, Utc};
use regauth::config::SmtpSettings;
use regauth::domain::{NamespaceKind, Role};
use regauth::mail::SmtpMailer;
use regauth::service::caller::Caller;
use regauth::service::namespaces::{self, NamespaceRef};
use regauth::service::notifications::{self, Summary};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{spawn_app, TestApp};
use crate::smtp_sink::{ReceivedMail, SmtpSink};

use NamespaceKind::{Group, Project};

/// Day `n` of a test, at the time of the daily run (01:00 UTC).
fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 1, 0, 0).unwrap() + Duration::days(n)
}

/// 00:00 UTC of day `n`: what an expiry date means.
fn midnight(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::days(n)
}

/// Runs the job in this process.
async fn run(app: &TestApp, smtp_url: &str, now: DateTime<Utc>) -> Summary {
    let settings = SmtpSettings::parse(smtp_url, "regauth@localhost").unwrap();
    let mailer = SmtpMailer::new(&settings).unwrap();
    notifications::run_once(app.store.as_ref(), &mailer, now)
        .await
        .unwrap()
}

/// Runs `regauth notify-expiring --now <now>` against the app's database.
fn run_cli(
    app: &TestApp,
    smtp_url: Option<&str>,
    now: DateTime<Utc>,
    env: &[(&str, &str)],
) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
    command
        .args(["notify-expiring", "--now", &now.to_rfc3339()])
        .current_dir(dir.path())
        .env("REGAUTH_DATABASE_URL", &app.settings.database.url)
        .env_remove("REGAUTH_CONFIG")
        .env_remove("REGAUTH_SMTP_URL")
        .env_remove("REGAUTH_NOTIFY_AT");
    if let Some(url) = smtp_url {
        command.env("REGAUTH_SMTP_URL", url);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

/// Runs the CLI expecting success; returns its stdout.
fn run_cli_ok(app: &TestApp, smtp_url: &str, now: DateTime<Utc>) -> String {
    let output = run_cli(app, Some(smtp_url), now, &[]);
    assert!(
        output.status.success(),
        "notify-expiring failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The addresses the mails went to, sorted.
fn recipients(mails: &[ReceivedMail]) -> Vec<String> {
    let mut to: Vec<String> = mails.iter().flat_map(|mail| mail.rcpt_to.clone()).collect();
    to.sort();
    to
}

fn addresses(usernames: &[&str]) -> Vec<String> {
    let mut to: Vec<String> = usernames
        .iter()
        .map(|name| format!("{name}@example.com"))
        .collect();
    to.sort();
    to
}

/// Creates a user with the role on the namespace.
async fn member(app: &TestApp, username: &str, kind: NamespaceKind, path: &str, role: Role) {
    if app
        .store
        .find_user_by_username(username)
        .await
        .unwrap()
        .is_none()
    {
        app.create_user(username, false, "api").await;
    }
    app.add_member(username, kind, path, role).await;
}

fn summary(sent: usize, failed: usize, skipped: usize, tokens: usize) -> Summary {
    Summary {
        tokens,
        sent,
        failed,
        skipped,
    }
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn project_maintainers_and_owners_including_inherited_get_one_notice_and_nobody_else() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    app.create_project_with_groups("acme/platform/web").await;
    app.create_project("acme/platform/api").await;
    app.create_group("acme-evil").await;
    member(&app, "top-owner", Group, "acme", Role::Owner).await;
    member(
        &app,
        "sub-maintainer",
        Group,
        "acme/platform",
        Role::Maintainer,
    )
    .await;
    member(
        &app,
        "maintainer",
        Project,
        "acme/platform/web",
        Role::Maintainer,
    )
    .await;
    member(&app, "owner", Project, "acme/platform/web", Role::Owner).await;
    // the highest role wins, wherever it comes from
    member(&app, "promoted", Group, "acme", Role::Developer).await;
    member(
        &app,
        "promoted",
        Project,
        "acme/platform/web",
        Role::Maintainer,
    )
    .await;
    member(
        &app,
        "owner-above",
        Project,
        "acme/platform/web",
        Role::Developer,
    )
    .await;
    member(&app, "owner-above", Group, "acme/platform", Role::Owner).await;
    // nobody else
    member(
        &app,
        "developer",
        Project,
        "acme/platform/web",
        Role::Developer,
    )
    .await;
    member(&app, "reporter", Group, "acme", Role::Reporter).await;
    member(
        &app,
        "blocked-maintainer",
        Project,
        "acme/platform/web",
        Role::Maintainer,
    )
    .await;
    app.block_user("blocked-maintainer").await;
    member(&app, "evil-owner", Group, "acme-evil", Role::Owner).await;
    member(
        &app,
        "sibling-maintainer",
        Project,
        "acme/platform/api",
        Role::Maintainer,
    )
    .await;
    let token = app
        .create_named_token(
            Project,
            "acme/platform/web",
            "ci-pusher",
            &["read_registry", "write_registry"],
        )
        .await;
    app.set_expiry(token.token.id, midnight(45)).await;

    let result = run(&app, &sink.url(), day(0)).await;

    assert_eq!(result, summary(6, 0, 0, 1));
    let mails = sink.mails();
    assert_eq!(
        recipients(&mails),
        addresses(&[
            "maintainer",
            "owner",
            "owner-above",
            "promoted",
            "sub-maintainer",
            "top-owner"
        ])
    );
    for mail in &mails {
        assert_eq!(mail.rcpt_to.len(), 1, "one mail per recipient");
        assert!(mail.to.contains(&mail.rcpt_to[0]), "{mail:?}");
        assert!(mail.from.contains("regauth@localhost"), "{mail:?}");
        assert_eq!(
            mail.subject,
            "Deploy token ci-pusher of acme/platform/web expires in 45 days"
        );
        for needle in [
            "ci-pusher",
            &token.token.username,
            "project acme/platform/web",
            "2030-02-15 00:00 UTC",
            "read_registry, write_registry",
            "Create a new deploy token",
            "CI/CD variables",
            "60-day notice",
        ] {
            assert!(
                mail.body.contains(needle),
                "{needle:?} missing from:\n{}",
                mail.body
            );
        }
        assert!(
            !mail.body.contains(&token.secret),
            "the secret never goes out"
        );
    }

    // The next day, and after a restart (a new process): nobody hears about it again.
    assert_eq!(run(&app, &sink.url(), day(1)).await, summary(0, 0, 6, 1));
    let stdout = run_cli_ok(&app, &sink.url(), day(2));
    assert!(stdout.contains("0 sent, 0 failed, 6 skipped"), "{stdout}");
    assert_eq!(sink.mails().len(), 6);
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn group_tokens_notify_only_the_group_owners_including_inherited_ones() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    app.create_project_with_groups("acme/platform/web").await;
    member(&app, "top-owner", Group, "acme", Role::Owner).await;
    member(&app, "group-owner", Group, "acme/platform", Role::Owner).await;
    member(
        &app,
        "group-maintainer",
        Group,
        "acme/platform",
        Role::Maintainer,
    )
    .await;
    // a role below the group does not make anyone responsible for the group's tokens
    member(
        &app,
        "project-owner",
        Project,
        "acme/platform/web",
        Role::Owner,
    )
    .await;
    member(&app, "blocked-owner", Group, "acme/platform", Role::Owner).await;
    app.block_user("blocked-owner").await;
    let token = app
        .create_named_token(
            Group,
            "acme/platform",
            "mirror",
            &["read_registry", "read_virtual_registry"],
        )
        .await;
    app.set_expiry(token.token.id, midnight(5)).await;

    let stdout = run_cli_ok(&app, &sink.url(), day(0));

    assert!(stdout.contains("2 sent, 0 failed, 0 skipped"), "{stdout}");
    let mails = sink.mails();
    assert_eq!(recipients(&mails), addresses(&["group-owner", "top-owner"]));
    assert_eq!(
        mails[0].subject,
        "Deploy token mirror of acme/platform expires in 5 days"
    );
    assert!(
        mails[0].body.contains("group acme/platform"),
        "{}",
        mails[0].body
    );
    assert!(
        mails[0].body.contains("--group acme/platform"),
        "{}",
        mails[0].body
    );
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn each_window_is_sent_once_as_the_days_pass_across_restarts() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    app.create_project_with_groups("acme/web").await;
    member(&app, "maintainer", Project, "acme/web", Role::Maintainer).await;
    let token = app
        .create_named_token(Project, "acme/web", "ci", &["read_registry"])
        .await;
    app.set_expiry(token.token.id, midnight(70)).await;

    // Every run is a new process, as after a restart. (day, days left)
    let mut subjects_by_day = Vec::new();
    for n in [0, 9, 10, 11, 39, 40, 41, 62, 63, 64, 69, 70, 71] {
        run_cli_ok(&app, &sink.url(), day(n));
        let mails = sink.mails();
        if mails.len() > subjects_by_day.len() {
            assert_eq!(
                mails.len(),
                subjects_by_day.len() + 1,
                "one mail on day {n}"
            );
            subjects_by_day.push((n, mails.last().unwrap().subject.clone()));
        }
    }
    assert_eq!(
        subjects_by_day,
        vec![
            (
                10,
                "Deploy token ci of acme/web expires in 60 days".to_owned()
            ),
            (
                40,
                "Deploy token ci of acme/web expires in 30 days".to_owned()
            ),
            (
                63,
                "Deploy token ci of acme/web expires in 7 days".to_owned()
            ),
        ]
    );
    let rows = entity::expiry_notification::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    let mut windows: Vec<i32> = rows.iter().map(|row| row.window_days).collect();
    windows.sort();
    assert_eq!(windows, vec![7, 30, 60]);
    assert!(rows
        .iter()
        .all(|row| row.sent_at.is_some() && row.email == "maintainer@example.com"));
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn a_token_first_seen_inside_a_later_window_gets_only_that_window_and_the_next() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    app.create_project_with_groups("acme/web").await;
    member(&app, "maintainer", Project, "acme/web", Role::Maintainer).await;
    let twenty = app
        .create_named_token(Project, "acme/web", "twenty", &["read_registry"])
        .await;
    app.set_expiry(twenty.token.id, midnight(20)).await;
    let three = app
        .create_named_token(Project, "acme/web", "three", &["read_registry"])
        .await;
    app.set_expiry(three.token.id, midnight(3)).await;

    assert_eq!(run(&app, &sink.url(), day(0)).await, summary(2, 0, 0, 2));
    let mut subjects: Vec<String> = sink.mails().into_iter().map(|mail| mail.subject).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        vec![
            "Deploy token three of acme/web expires in 3 days",
            "Deploy token twenty of acme/web expires in 20 days",
        ]
    );

    // Day 13: 7 days left for "twenty", its next window; "three" has expired.
    assert_eq!(run(&app, &sink.url(), day(13)).await, summary(1, 0, 0, 1));
    assert_eq!(
        sink.mails().last().unwrap().subject,
        "Deploy token twenty of acme/web expires in 7 days"
    );
    assert!(sink
        .mails()
        .iter()
        .all(|mail| mail.body.contains("30-day notice") || mail.body.contains("7-day notice")));
    assert!(
        !sink
            .mails()
            .iter()
            .any(|mail| mail.body.contains("60-day notice")),
        "no stale 60-day notice"
    );
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn revoked_deleted_expired_far_off_and_never_expiring_tokens_get_no_notice() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    app.create_project_with_groups("acme/web").await;
    member(&app, "maintainer", Project, "acme/web", Role::Maintainer).await;
    let revoked = app
        .create_named_token(Project, "acme/web", "revoked", &["read_registry"])
        .await;
    app.set_expiry(revoked.token.id, midnight(10)).await;
    app.revoke(revoked.token.id).await;
    let deleted = app
        .create_named_token(Project, "acme/web", "deleted", &["read_registry"])
        .await;
    app.set_expiry(deleted.token.id, midnight(10)).await;
    let owner = namespaces::find(
        app.store.as_ref(),
        Project,
        &NamespaceRef::Path("acme/web".into()),
    )
    .await
    .unwrap();
    let operator = Caller::operator();
    let authorized = regauth::service::deploy_tokens::authorize(
        app.store.as_ref(),
        &operator,
        regauth::access::permissions::TokenOperation::Revoke,
        &owner,
    )
    .await
    .unwrap();
    regauth::service::deploy_tokens::delete(
        app.store.as_ref(),
        &authorized,
        deleted.token.id,
        Utc::now(),
    )
    .await
    .unwrap();
    let expired = app
        .create_named_token(Project, "acme/web", "expired", &["read_registry"])
        .await;
    app.set_expiry(expired.token.id, midnight(0)).await;
    let far_off = app
        .create_named_token(Project, "acme/web", "far-off", &["read_registry"])
        .await;
    app.set_expiry(far_off.token.id, midnight(61)).await;
    app.create_named_token(Project, "acme/web", "forever", &["read_registry"])
        .await;
    let active = app
        .create_named_token(Project, "acme/web", "active", &["read_registry"])
        .await;
    app.set_expiry(active.token.id, midnight(10)).await;

    assert_eq!(run(&app, &sink.url(), day(0)).await, summary(1, 0, 0, 1));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject,
        "Deploy token active of acme/web expires in 10 days"
    );

    // Revoking after a notice stops the later ones; on day 5 only "far-off" (now 56 days
    // from expiry) is due.
    app.revoke(active.token.id).await;
    assert_eq!(run(&app, &sink.url(), day(5)).await, summary(1, 0, 0, 1));
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1].subject,
        "Deploy token far-off of acme/web expires in 56 days"
    );
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn a_failed_delivery_is_not_marked_sent_and_is_retried_on_the_next_run() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    member(&app, "maintainer", Project, "acme/web", Role::Maintainer).await;
    member(&app, "owner", Group, "acme", Role::Owner).await;
    let token = app
        .create_named_token(Project, "acme/web", "ci", &["read_registry"])
        .await;
    app.set_expiry(token.token.id, midnight(30)).await;

    // The SMTP server is down during the first run.
    let down = SmtpSink::start();
    let down_url = down.url();
    drop(down);
    let output = run_cli(&app, Some(&down_url), day(0), &[]);
    assert!(
        !output.status.success(),
        "failed deliveries make the command fail"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("0 sent, 2 failed, 0 skipped"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("the next run retries them"), "{stderr}");
    let recorded = entity::expiry_notification::Entity::find()
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "nothing is marked sent");

    // The next run, with the server back: both are delivered, once.
    let sink = SmtpSink::start();
    let stdout = run_cli_ok(&app, &sink.url(), day(1));
    assert!(stdout.contains("2 sent, 0 failed, 0 skipped"), "{stdout}");
    assert_eq!(
        recipients(&sink.mails()),
        addresses(&["maintainer", "owner"])
    );
    assert_eq!(
        sink.mails()[0].subject,
        "Deploy token ci of acme/web expires in 29 days"
    );
    let stdout = run_cli_ok(&app, &sink.url(), day(2));
    assert!(stdout.contains("0 sent, 0 failed, 2 skipped"), "{stdout}");
    assert_eq!(sink.mails().len(), 2);
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn a_refused_recipient_is_retried_without_resending_to_the_others() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    app.create_project_with_groups("acme/web").await;
    member(&app, "maintainer", Project, "acme/web", Role::Maintainer).await;
    member(&app, "owner", Group, "acme", Role::Owner).await;
    let token = app
        .create_named_token(Project, "acme/web", "ci", &["read_registry"])
        .await;
    app.set_expiry(token.token.id, midnight(7)).await;

    sink.reject(&["maintainer@example.com"]);
    assert_eq!(run(&app, &sink.url(), day(0)).await, summary(1, 1, 0, 1));
    assert_eq!(recipients(&sink.mails()), addresses(&["owner"]));
    let pending = entity::expiry_notification::Entity::find()
        .filter(entity::expiry_notification::Column::SentAt.is_not_null())
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(pending, 1, "only the delivered notice is recorded");

    sink.accept_all();
    assert_eq!(run(&app, &sink.url(), day(1)).await, summary(1, 0, 1, 1));
    assert_eq!(
        recipients(&sink.mails()),
        addresses(&["maintainer", "owner"])
    );
    assert!(sink.mails()[1].subject.ends_with("expires in 6 days"));
}

#[tokio::test]
async fn without_an_smtp_server_notify_expiring_says_notifications_are_off() {
    let app = spawn_app().await;
    let output = run_cli(&app, None, day(0), &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("expiry notifications are off"), "{stderr}");
    assert!(stderr.contains("REGAUTH_SMTP_URL"), "{stderr}");
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn the_smtp_password_never_appears_in_the_output() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    member(&app, "maintainer", Project, "acme/web", Role::Maintainer).await;
    let token = app
        .create_named_token(Project, "acme/web", "ci", &["read_registry"])
        .await;
    app.set_expiry(token.token.id, midnight(7)).await;
    let down = SmtpSink::start();
    let url = format!("smtp://regauth:hunter2-secret@127.0.0.1:{}", down.port());
    drop(down);

    let output = run_cli(&app, Some(&url), day(0), &[("RUST_LOG", "debug")]);

    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("1 failed"), "{all}");
    assert!(all.contains("regauth:***@127.0.0.1"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn bad_notification_settings_and_a_bad_now_are_named() {
    let app = spawn_app().await;
    let sink = SmtpSink::start();
    let output = run_cli(
        &app,
        Some(&sink.url()),
        day(0),
        &[("REGAUTH_NOTIFY_AT", "25:00")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("notify_at"), "{stderr}");

    let output = run_cli(&app, Some("mail.example.com:25"), day(0), &[]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        !output.status.success() && stderr.contains("smtp_url"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(["notify-expiring", "--now", "tomorrow"])
        .current_dir(tempfile::tempdir().unwrap().path())
        .env("REGAUTH_DATABASE_URL", &app.settings.database.url)
        .env("REGAUTH_SMTP_URL", sink.url())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        !output.status.success() && stderr.contains("--now"),
        "{stderr}"
    );
}
