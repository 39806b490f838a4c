//! The text of an expiry notice. It names the token, its username, owner, expiry and
//! scopes and says what to do; never the secret (it is not stored anyway).

use chrono::{DateTime, Utc};

use crate::domain::text::printable;
use crate::domain::{DeployToken, NamespaceKind, NoticeWindow, User};
use crate::mail::Mail;

/// "in 12 days", "in 1 day", "today".
fn in_days(days_left: i64) -> String {
    match days_left {
        0 => "today".into(),
        1 => "in 1 day".into(),
        days => format!("in {days} days"),
    }
}

fn utc(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The notice about `token` for `recipient`, `days_left` calendar days before it expires.
pub fn expiry_notice(
    token: &DeployToken,
    window: NoticeWindow,
    days_left: i64,
    expires_at: DateTime<Utc>,
    recipient: &User,
) -> Mail {
    let path = token.owner.full_path.as_str();
    // Names are checked at creation, but rows made before that check (or by hand) may hold
    // control characters: a mail header or body must never carry them raw.
    let name = printable(&token.name);
    let kind = token.owner.kind;
    let when = in_days(days_left);
    let subject = format!("Deploy token {name} of {path} expires {when}");
    let (flag, api, role) = match kind {
        NamespaceKind::Project => (
            "--project",
            "projects",
            "a Maintainer or Owner of the project",
        ),
        NamespaceKind::Group => ("--group", "groups", "an Owner of the group"),
    };
    let encoded_path = path.replace('/', "%2F");
    let scopes = token.scopes.names().join(", ");
    let body = format!(
        "Hello {user},\n\
         \n\
         the deploy token \"{name}\" of {kind} {path} expires {when}, at {expiry}.\n\
         From then on it no longer authenticates: registry logins, pulls and pushes with it fail.\n\
         \n\
         Token:     {name} (id {id})\n\
         Username:  {username}\n\
         Owner:     {kind} {path}\n\
         Expires:   {expiry}\n\
         Scopes:    {scopes}\n\
         \n\
         What to do:\n\
         1. Create a new deploy token for {path} with the scopes it needs:\n\
         \x20  regauth deploy-token create {flag} {path} --name {name_arg} --scopes {scopes_arg}\n\
         \x20  or POST /api/v4/{api}/{encoded_path}/deploy_tokens\n\
         2. Put the new username and token wherever this one is used: CI/CD variables,\n\
         \x20  docker/podman logins, Kubernetes image pull secrets.\n\
         3. Revoke this token once nothing uses it any more.\n\
         \n\
         You receive this {window} notice because you are {role}. Each notice (60, 30 and\n\
         7 days before expiry) is sent once.\n",
        user = printable(&recipient.username),
        id = token.id,
        username = printable(&token.username),
        expiry = utc(expires_at),
        name_arg = shell_word(&name),
        scopes_arg = token.scopes.names().join(","),
    );
    Mail {
        to_name: printable(&recipient.username).into_owned(),
        to_email: recipient.email.clone(),
        subject,
        body,
    }
}

/// Quotes a token name for the example command when it needs it.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/'));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The mail to `recipient` about `token`, revoked because its secret leaked: where it was
/// found and by whom, and how to replace it. Never the secret.
pub fn leak_notice(
    token: &DeployToken,
    reporter: &str,
    location: Option<&str>,
    recipient: &User,
) -> Mail {
    let path = token.owner.full_path.as_str();
    let name = printable(&token.name);
    let kind = token.owner.kind;
    let location = location.map_or_else(|| "not given".to_owned(), |l| printable(l).into_owned());
    let (flag, api) = match kind {
        NamespaceKind::Project => ("--project", "projects"),
        NamespaceKind::Group => ("--group", "groups"),
    };
    let encoded_path = path.replace('/', "%2F");
    let scopes = token.scopes.names().join(", ");
    let subject = format!("Deploy token {name} of {path} was revoked: its secret leaked");
    let body = format!(
        "Hello {user},\n\
         \n\
         the secret of the deploy token \"{name}\" of {kind} {path} was found where others can\n\
         read it, and the token has been revoked: registry logins, pulls and pushes with it fail\n\
         from now on.\n\
         \n\
         Token:       {name} (id {id})\n\
         Username:    {username}\n\
         Scopes:      {scopes}\n\
         Reported by: {reporter}\n\
         Found at:    {location}\n\
         \n\
         What to do:\n\
         1. Create a replacement with the same scopes:\n\
         \x20  regauth deploy-token create {flag} {path} --name \"{name}\" --scopes {scopes_flag}\n\
         \x20  or POST /api/v4/{api}/{encoded_path}/deploy_tokens\n\
         2. Put the new secret where the old one was used (CI variables, image pull secrets),\n\
         \x20  and remove the old one from where it leaked (rewrite the history if it was\n\
         \x20  committed: the revoked secret is useless, but the place may hold others).\n\
         3. Check the token's audit trail for uses you do not recognise.\n",
        user = printable(&recipient.username),
        id = token.id,
        username = printable(&token.username),
        scopes_flag = token.scopes.names().join(","),
    );
    Mail {
        to_name: recipient.username.clone(),
        to_email: recipient.email.clone(),
        subject,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NamespacePath;
    use crate::domain::{DeployTokenScope, Namespace, ScopeSet};
    use chrono::TimeZone;

    fn token(kind: NamespaceKind, path: &str) -> DeployToken {
        let expires_at = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        DeployToken {
            id: 7,
            name: "ci pusher".into(),
            username: "gitlab+deploy-token-7".into(),
            owner: Namespace {
                id: 3,
                kind,
                parent_id: Some(1),
                full_path: NamespacePath::parse(path).unwrap(),
                name: "web".into(),
                visibility: Default::default(),
                created_at: expires_at,
            },
            scopes: [
                DeployTokenScope::ReadRegistry,
                DeployTokenScope::WriteRegistry,
            ]
            .into_iter()
            .collect::<ScopeSet>(),
            expires_at: Some(expires_at),
            revoked: false,
            created_at: expires_at,
            last_used_at: None,
            restrictions: Default::default(),
            rotation: Default::default(),
        }
    }

    fn alice() -> User {
        User {
            id: 1,
            username: "alice".into(),
            email: "alice@example.com".into(),
            admin: false,
            blocked: false,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_notice_names_token_username_owner_expiry_scopes_and_what_to_do() {
        let token = token(NamespaceKind::Project, "acme/web");
        let expires_at = token.expires_at.unwrap();
        let mail = expiry_notice(&token, NoticeWindow::Days7, 7, expires_at, &alice());
        assert_eq!(
            mail.subject,
            "Deploy token ci pusher of acme/web expires in 7 days"
        );
        assert_eq!(mail.to_email, "alice@example.com");
        for needle in [
            "ci pusher",
            "gitlab+deploy-token-7",
            "project acme/web",
            "2027-01-01 00:00 UTC",
            "read_registry, write_registry",
            "regauth deploy-token create --project acme/web --name 'ci pusher' --scopes read_registry,write_registry",
            "/api/v4/projects/acme%2Fweb/deploy_tokens",
            "CI/CD variables",
            "7-day notice",
        ] {
            assert!(mail.body.contains(needle), "{needle:?} missing from:\n{}", mail.body);
        }
    }

    #[test]
    fn group_notices_point_at_the_group_and_say_today_and_one_day() {
        let token = token(NamespaceKind::Group, "acme/platform");
        let expires_at = token.expires_at.unwrap();
        let mail = expiry_notice(&token, NoticeWindow::Days7, 0, expires_at, &alice());
        assert_eq!(
            mail.subject,
            "Deploy token ci pusher of acme/platform expires today"
        );
        assert!(mail.body.contains("--group acme/platform"));
        assert!(mail.body.contains("an Owner of the group"));
        let mail = expiry_notice(&token, NoticeWindow::Days7, 1, expires_at, &alice());
        assert!(mail.subject.ends_with("expires in 1 day"));
    }

    #[test]
    fn control_characters_in_a_stored_name_never_reach_the_mail() {
        let mut token = token(NamespaceKind::Project, "acme/web");
        token.name = "evil\r\nBcc: victim@example.com\u{1b}[31m".into();
        let expires_at = token.expires_at.unwrap();
        let mail = expiry_notice(&token, NoticeWindow::Days7, 7, expires_at, &alice());
        for text in [&mail.subject, &mail.body] {
            assert!(!text.contains('\u{1b}'), "{text}");
            assert!(!text.contains('\r'), "{text}");
        }
        assert!(!mail.subject.contains('\n'));
        assert!(
            mail.subject
                .contains("evil\\u{d}\\u{a}Bcc: victim@example.com\\u{1b}[31m"),
            "{}",
            mail.subject
        );
        assert!(!mail.body.contains("\nBcc:"), "{}", mail.body);
    }
}
