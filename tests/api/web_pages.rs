//! The web pages over plain HTTP (the browser tests in tests/browser drive them in chromium):
//! sign-in answers, cookies, session expiry, PAT sign-in, the password command, and that the
//! pages' routes leave the registry and API routes alone.

use std::io::Write as _;
use std::process::Stdio;

use chrono::Utc;
use regauth::domain::NamespaceKind::Project;
use regauth::domain::Role;
use regauth::service::web_sessions::{self, Password};
use reqwest::redirect::Policy;
use sea_orm::ConnectionTrait;

use crate::cli::Cli;
use crate::helpers::{spawn_app, spawn_app_with, TestApp};

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

pub(crate) fn hidden_csrf(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Signs in over HTTP; returns the response to the sign-in POST.
pub(crate) async fn post_sign_in(
    app: &TestApp,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let client = client();
    let page = client
        .get(format!("{}/users/sign_in", app.address))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookie_pair(&set_cookies(&page)[0]);
    let csrf = hidden_csrf(&page.text().await.unwrap());
    client
        .post(format!("{}/users/sign_in", app.address))
        .header("cookie", csrf_cookie)
        .form(&[
            ("authenticity_token", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn user_with_password(app: &TestApp, username: &str) -> String {
    let pat = app.create_user(username, false, "api").await;
    web_sessions::set_password(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        username,
        Password::new(PASSWORD.into()),
        Utc::now(),
    )
    .await
    .unwrap();
    pat
}

#[tokio::test]
async fn a_failed_sign_in_never_says_which_part_was_wrong() {
    let app = spawn_app().await;
    user_with_password(&app, "alice").await;
    app.create_user("nopassword", false, "api").await;
    let mut bodies = Vec::new();
    for (username, password) in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("nopassword", PASSWORD),
        ("alice", ""),
    ] {
        let response = post_sign_in(&app, username, password).await;
        assert_eq!(response.status(), 401, "{username}");
        assert!(set_cookies(&response)
            .iter()
            .all(|cookie| !cookie.starts_with("_regauth_session=")));
        let body = response.text().await.unwrap();
        assert!(body.contains("Invalid username or password."));
        // The page differs only in the username echoed back and its fresh CSRF token.
        bodies.push(
            body.replace(&hidden_csrf(&body), "")
                .replace(&format!("value=\"{username}\""), ""),
        );
    }
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
    let ok = post_sign_in(&app, "alice", PASSWORD).await;
    assert_eq!(ok.status(), 303);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_secure_behind_https() {
    let app = spawn_app().await;
    user_with_password(&app, "alice").await;
    let response = post_sign_in(&app, "alice", PASSWORD).await;
    let session = set_cookies(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("_regauth_session="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(!session.contains("Secure"), "plain http: {session}");

    let https = spawn_app_with(|settings| {
        settings.server.public_url = Some("https://auth.example.com".into());
    })
    .await;
    user_with_password(&https, "bob").await;
    let response = post_sign_in(&https, "bob", PASSWORD).await;
    // Under HTTPS both cookies carry the __Host- prefix (Secure, Path=/, no Domain), so that a
    // sibling subdomain or a plain-HTTP page cannot plant them.
    let cookies = set_cookies(&response);
    let session = cookies
        .iter()
        .find(|cookie| cookie.starts_with("__Host-_regauth_session="))
        .unwrap()
        .clone();
    assert!(
        session.contains("; Secure") && session.contains("Path=/;"),
        "{session}"
    );
    assert!(!session.contains("Domain"), "{session}");
    let csrf = cookies
        .iter()
        .find(|cookie| cookie.starts_with("__Host-_regauth_sign_in_csrf="))
        .unwrap();
    assert!(
        csrf.contains("; Secure") && csrf.contains("Path=/;"),
        "{csrf}"
    );
    // The plain name is not read under HTTPS: a planted `_regauth_session` is no session.
    let planted = https
        .client
        .get(format!("{}/", https.address))
        .header("cookie", cookie_pair(&session).replacen("__Host-", "", 1))
        .send()
        .await
        .unwrap();
    assert!(
        planted.url().path().starts_with("/users/sign_in"),
        "{}",
        planted.url()
    );
    // Only its digest is stored.
    let value = cookie_pair(&session).split_once('=').unwrap().1.to_owned();
    let stored = https
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            https.db.get_database_backend(),
            "SELECT session_digest FROM web_sessions",
        ))
        .await
        .unwrap()
        .unwrap();
    let digest: String = stored.try_get("", "session_digest").unwrap();
    assert_ne!(digest, value);
    assert_eq!(digest.len(), 64);
}

/// A `Set-Cookie` header as its `name=value` and its attributes, in any order.
fn cookie_parts(set_cookie: &str) -> (String, std::collections::BTreeSet<String>) {
    let mut parts = set_cookie.split(';').map(|part| part.trim().to_owned());
    let pair = parts.next().unwrap();
    (pair, parts.collect())
}

fn attributes(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter()
        .map(|attribute| (*attribute).to_owned())
        .collect()
}

#[tokio::test]
async fn every_cookie_of_the_pages_carries_exactly_its_attributes_and_sign_out_removes_the_session()
{
    let app = spawn_app().await;
    user_with_password(&app, "alice").await;
    // The sign-in form's CSRF cookie lives for the browser session, under /users.
    let page = client()
        .get(format!("{}/users/sign_in", app.address))
        .send()
        .await
        .unwrap();
    let (pair, attrs) = cookie_parts(&set_cookies(&page)[0]);
    assert!(pair.starts_with("_regauth_sign_in_csrf="), "{pair}");
    assert_eq!(
        attrs,
        attributes(&["Path=/users", "HttpOnly", "SameSite=Lax"])
    );

    // Signing in sets the session for session_ttl (8 h) and removes the CSRF cookie.
    let response = post_sign_in(&app, "alice", PASSWORD).await;
    let cookies: Vec<_> = set_cookies(&response)
        .iter()
        .map(|cookie| cookie_parts(cookie))
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let (session, attrs) = &cookies[0];
    assert!(session.starts_with("_regauth_session=") && session.len() > 20);
    assert_eq!(
        attrs,
        &attributes(&["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=28800"])
    );
    assert_eq!(
        cookies[1],
        (
            "_regauth_sign_in_csrf=".to_owned(),
            attributes(&["Path=/users", "HttpOnly", "SameSite=Lax", "Max-Age=0"])
        )
    );

    // Signing out ends the session and removes its cookie.
    let home = client()
        .get(format!("{}/", app.address))
        .header("cookie", session.as_str())
        .send()
        .await
        .unwrap();
    let csrf = hidden_csrf(&home.text().await.unwrap());
    let out = client()
        .post(format!("{}/users/sign_out", app.address))
        .header("cookie", session.as_str())
        .form(&[("authenticity_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(
        set_cookies(&out)
            .iter()
            .map(|cookie| cookie_parts(cookie))
            .collect::<Vec<_>>(),
        [(
            "_regauth_session=".to_owned(),
            attributes(&["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=0"])
        )]
    );
    let after = client()
        .get(format!("{}/", app.address))
        .header("cookie", session.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303);

    // Under HTTPS every cookie is `Secure`, `__Host-` and for the whole site.
    let https = spawn_app_with(|settings| {
        settings.server.public_url = Some("https://auth.example.com".into());
    })
    .await;
    let page = client()
        .get(format!("{}/users/sign_in", https.address))
        .send()
        .await
        .unwrap();
    let (pair, attrs) = cookie_parts(&set_cookies(&page)[0]);
    assert!(pair.starts_with("__Host-_regauth_sign_in_csrf="), "{pair}");
    assert_eq!(
        attrs,
        attributes(&["Path=/", "HttpOnly", "SameSite=Lax", "Secure"])
    );
}

pub(crate) async fn signed_in(app: &TestApp, username: &str, password: &str) -> String {
    let response = post_sign_in(app, username, password).await;
    assert_eq!(response.status(), 303, "sign-in of {username}");
    set_cookies(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("_regauth_session="))
        .map(|cookie| cookie_pair(&cookie))
        .unwrap()
}

#[tokio::test]
async fn a_session_ends_when_it_expires_and_a_page_then_asks_to_sign_in_again() {
    let app = spawn_app().await;
    user_with_password(&app, "alice").await;
    let cookie = signed_in(&app, "alice", PASSWORD).await;
    let home = client()
        .get(format!("{}/", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    app.db
        .execute_unprepared("UPDATE web_sessions SET expires_at = '2000-01-01 00:00:00+00:00'")
        .await
        .unwrap();
    let page = client()
        .get(format!("{}/acme/web/-/settings/repository", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()["location"],
        "/users/sign_in?redirect_to=%2Facme%2Fweb%2F-%2Fsettings%2Frepository"
    );
}

#[tokio::test]
async fn a_personal_access_token_signs_in_and_a_read_api_one_may_only_look() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let pat = app.create_user("alice", false, "read_api").await;
    app.add_member("alice", Project, "acme/web", Role::Maintainer)
        .await;
    let cookie = signed_in(&app, "alice", &pat).await;
    let page = client()
        .get(format!("{}/acme/web/-/settings/repository", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("id=\"new-deploy-token\""), "no add form");
    // Another user's token does not sign in as alice.
    let other = app.create_user("bob", false, "api").await;
    assert_eq!(post_sign_in(&app, "alice", &other).await.status(), 401);
    // The server refuses a create regardless of the page.
    let csrf = hidden_csrf(&html);
    let forged = client()
        .post(format!(
            "{}/acme/web/-/settings/repository/deploy_token/create",
            app.address
        ))
        .header("cookie", &cookie)
        .form(&[
            ("authenticity_token", csrf.as_str()),
            ("form_nonce", "n"),
            ("name", "x"),
            ("scopes", "read_registry"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

/// The token was the credential: a session signed in with it ends when it is revoked, while
/// the same user's password session goes on.
#[tokio::test]
async fn a_session_signed_in_with_a_personal_access_token_ends_when_the_token_is_revoked() {
    let app = spawn_app().await;
    user_with_password(&app, "alice").await;
    let (token, secret) = regauth::service::users::create_personal_access_token(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &app.settings.tokens.formats(),
        "alice",
        "browser",
        vec![regauth::domain::ApiScope::Api],
        None,
        app.settings.tokens.lifetime,
        Utc::now(),
    )
    .await
    .unwrap();
    let with_token = signed_in(&app, "alice", secret.expose()).await;
    let with_password = signed_in(&app, "alice", PASSWORD).await;
    let home = |cookie: String| {
        let address = app.address.clone();
        async move {
            client()
                .get(format!("{address}/"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(home(with_token.clone()).await.status(), 200);

    regauth::service::users::revoke_personal_access_token(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        token.id,
    )
    .await
    .unwrap();
    let after = home(with_token).await;
    assert_eq!(
        after.status(),
        303,
        "the token's session asks to sign in again"
    );
    assert!(after.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/users/sign_in"));
    assert_eq!(home(with_password).await.status(), 200);
}

/// A session signed in with a token that expires before the session lifetime ends with it.
#[tokio::test]
async fn a_session_signed_in_with_an_expiring_token_ends_when_the_token_expires() {
    let app = spawn_app().await;
    app.create_user("alice", false, "api").await;
    // Whole seconds: PostgreSQL keeps microseconds.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let token_expiry = now + chrono::Duration::hours(1);
    let (_, secret) = regauth::service::users::create_personal_access_token(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &app.settings.tokens.formats(),
        "alice",
        "short",
        vec![regauth::domain::ApiScope::ReadApi],
        Some(token_expiry),
        app.settings.tokens.lifetime,
        now,
    )
    .await
    .unwrap();
    let session = web_sessions::sign_in(
        app.store.as_ref(),
        &app.settings.tokens.formats(),
        "alice",
        Password::new(secret.expose().to_owned()),
        None,
        std::time::Duration::from_secs(8 * 3600),
        now,
    )
    .await
    .unwrap();
    assert_eq!(session.session.expires_at, token_expiry);
    assert!(!session.session.may_write, "read_api looks only");
    let cookie = session.id.expose().to_owned();
    let before = token_expiry - chrono::Duration::seconds(1);
    assert!(web_sessions::resume(app.store.as_ref(), &cookie, before)
        .await
        .unwrap()
        .is_some());
    assert!(
        web_sessions::resume(app.store.as_ref(), &cookie, token_expiry)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_pages_leave_the_registry_api_and_health_routes_alone() {
    let app = spawn_app().await;
    let client = client();
    for (path, status) in [
        ("/-/health", 200),
        ("/.well-known/jwks.json", 200),
        ("/metrics", 200),
        ("/jwt/auth?service=container_registry", 401),
        ("/api/v4/user", 401),
        ("/", 303),
        ("/groups/acme/-/settings/repository", 303),
    ] {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
}

#[tokio::test]
async fn the_password_command_reads_standard_input_and_ends_the_users_sessions() {
    let cli = Cli::new().await;
    let app = cli.spawn_app().await;
    cli.ok(&["user", "create", "alice", "--email", "alice@example.com"]);
    let set_password = |password: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_regauth"))
            .args(["user", "password", "alice"])
            .current_dir(cli.dir.path())
            .env("REGAUTH_DATABASE_URL", &cli.database_url)
            .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"))
            .env_remove("REGAUTH_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = set_password("short");
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("password is too short"), "{stderr}");

    let ok = set_password(PASSWORD);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let output = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(!output.contains(PASSWORD));
    let cookie = signed_in(&app, "alice", PASSWORD).await;

    // A new password ends the sessions opened with the old one.
    assert!(set_password("another good password").status.success());
    let home = client()
        .get(format!("{}/", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 303);
    assert_eq!(post_sign_in(&app, "alice", PASSWORD).await.status(), 401);
}

pub(crate) async fn get_page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = client()
        .get(format!("{}{path}", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_group_maintainer_sees_group_tokens_but_may_not_add_and_search_filters_by_path() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/api").await;
    app.create_project_with_groups("other/site").await;
    user_with_password(&app, "gm").await;
    app.add_member(
        "gm",
        regauth::domain::NamespaceKind::Group,
        "acme",
        Role::Maintainer,
    )
    .await;
    let cookie = signed_in(&app, "gm", PASSWORD).await;

    let (status, home) = get_page(&app, &cookie, "/").await;
    assert_eq!(status, 200);
    for path in [
        "/groups/acme/-/settings/repository",
        "/acme/web/-/settings/repository",
    ] {
        assert!(home.contains(path), "{path} listed");
    }
    assert!(!home.contains("other/site"), "not a member there");
    let (_, found) = get_page(&app, &cookie, "/?search=web").await;
    assert!(found.contains("acme/web") && !found.contains("acme/api"));

    let (status, group) = get_page(&app, &cookie, "/groups/acme/-/settings/repository").await;
    assert_eq!(status, 200);
    assert!(
        !group.contains("id=\"new-deploy-token\""),
        "group Maintainers only look"
    );
    let (status, project) = get_page(&app, &cookie, "/acme/web/-/settings/repository").await;
    assert_eq!(status, 200);
    assert!(
        project.contains("id=\"new-deploy-token\""),
        "project Maintainer by inheritance"
    );
    assert!(
        !project.contains("read_virtual_registry"),
        "group-only scopes not offered"
    );
    let (status, _) = get_page(&app, &cookie, "/other/site/-/settings/repository").await;
    assert_eq!(
        status, 404,
        "a namespace the user may not see does not exist for them"
    );
}

#[tokio::test]
async fn signing_in_returns_to_the_page_that_asked_for_it_and_never_to_another_site() {
    let app = spawn_app().await;
    user_with_password(&app, "alice").await;
    for (asked, expected) in [
        (
            "/acme/web/-/settings/repository",
            "/acme/web/-/settings/repository",
        ),
        ("//evil.example.com/", "/"),
        ("https://evil.example.com/", "/"),
        // The usual open-redirect payloads, as the query parser decodes them.
        ("/\t/evil.example.com", "/"),
        ("/\\evil.example.com", "/"),
        ("\\/evil.example.com", "/"),
        ("/%2F/evil.example.com", "/"),
        ("/%09/evil.example.com", "/"),
        ("javascript:alert(1)", "/"),
        // CR/LF: once a 500 (a broken Location header).
        ("/\r\nSet-Cookie: stolen=1", "/"),
    ] {
        let client = client();
        let page = client
            .get(format!("{}/users/sign_in", app.address))
            .query(&[("redirect_to", asked)])
            .send()
            .await
            .unwrap();
        let csrf_cookie = cookie_pair(&set_cookies(&page)[0]);
        let html = page.text().await.unwrap();
        let response = client
            .post(format!("{}/users/sign_in", app.address))
            .header("cookie", csrf_cookie)
            .form(&[
                ("authenticity_token", hidden_csrf(&html).as_str()),
                ("redirect_to", asked),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], expected, "{asked}");
    }
}

/// The process's peak resident memory so far, in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_sign_ins_hash_a_few_passwords_at_a_time_in_bounded_memory() {
    // The brute-force limits off: only the hashing bound is under test.
    let app = spawn_app_with(|settings| {
        settings.login.throttle.max_failures_per_address = 0;
        settings.login.throttle.max_failures_per_username = 0;
    })
    .await;
    user_with_password(&app, "alice").await;
    // One sign-in first, so the peak below is the burst's, not the first hash's set-up.
    assert_eq!(post_sign_in(&app, "alice", PASSWORD).await.status(), 303);
    // One sign-in form (its CSRF cookie and field may be posted any number of times).
    let client = client();
    let page = client
        .get(format!("{}/users/sign_in", app.address))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookie_pair(&set_cookies(&page)[0]);
    let csrf = hidden_csrf(&page.text().await.unwrap());
    let before = peak_rss_kib();
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let request = client
                .post(format!("{}/users/sign_in", app.address))
                .header("cookie", csrf_cookie.clone())
                .form(&[
                    ("authenticity_token", csrf.clone()),
                    ("username", "alice".to_owned()),
                    ("password", format!("wrong password {n}")),
                ]);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    // argon2id takes 19 MiB per hash: 200 at once would be 3.8 GiB; a few at a time stay
    // within a few dozen MiB (plus the test's own 200 clients).
    assert!(grown_mib < 160, "peak memory grew by {grown_mib} MiB");
    assert!(
        statuses
            .iter()
            .all(|&status| status == 401 || status == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&401), "{statuses:?}");
    // Beyond the queue the answer is 503 with Retry-After, at once, and the right password
    // still signs in afterwards.
    assert!(statuses.contains(&503), "{statuses:?}");
    assert_eq!(post_sign_in(&app, "alice", PASSWORD).await.status(), 303);
}

/// The value of the hidden field `name` in `html`.
pub(crate) fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `<input …>` tag with `id` in `html`.
pub(crate) fn input_tag<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("id=\"{id}\"")).expect("the input");
    let open = html[..start].rfind('<').unwrap();
    let close = start + html[start..].find('>').unwrap();
    &html[open..=close]
}

#[tokio::test]
async fn the_add_form_shows_every_field_error_at_once_focuses_the_first_and_ties_hints_to_inputs() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "alice").await;
    app.add_member(
        "alice",
        regauth::domain::NamespaceKind::Project,
        "acme/web",
        Role::Maintainer,
    )
    .await;
    let cookie = signed_in(&app, "alice", PASSWORD).await;
    let path = "/acme/web/-/settings/repository";
    let (_, page) = get_page(&app, &cookie, path).await;
    // Hints are tied to their inputs before any error.
    assert!(
        input_tag(&page, "deploy_token_expires_at").contains("aria-describedby=\"expires-hint\"")
    );
    assert!(
        input_tag(&page, "deploy_token_username").contains("aria-describedby=\"username-hint\"")
    );
    assert!(input_tag(&page, "deploy_token_read_registry")
        .contains("aria-describedby=\"deploy_token_read_registry_hint\""));
    assert!(page.contains("id=\"deploy_token_read_registry_hint\""));

    let post = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let response = client()
                .post(format!("{}{path}/deploy_token/create", app.address))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, answer) = post(vec![
        ("authenticity_token", hidden_csrf(&page)),
        ("form_nonce", hidden_field(&page, "form_nonce")),
        ("name", "   ".into()),
        ("expires_at", "2001-01-01".into()),
        ("username", "gitlab+deploy-token-9".into()),
    ])
    .await;
    assert_eq!(status, 422);
    for id in [
        "name-error",
        "expires-error",
        "username-error",
        "scopes-error",
    ] {
        assert!(
            answer.contains(&format!("id=\"{id}\"")),
            "{id} missing:\n{answer}"
        );
    }
    assert!(answer.contains("4 fields need fixing"), "{answer}");
    let name = input_tag(&answer, "deploy_token_name");
    assert!(
        name.contains("autofocus") && name.contains("aria-invalid=\"true\""),
        "{name}"
    );
    assert_eq!(
        answer.matches("autofocus").count(),
        1,
        "one field has the focus"
    );
    assert!(input_tag(&answer, "deploy_token_expires_at")
        .contains("aria-describedby=\"expires-error expires-hint\""));
    // What was typed is kept.
    assert!(input_tag(&answer, "deploy_token_username").contains("value=\"gitlab+deploy-token-9\""));

    // Only the scopes wrong: the first scope's checkbox has the focus.
    let (status, answer) = post(vec![
        ("authenticity_token", hidden_csrf(&page)),
        ("form_nonce", hidden_field(&page, "form_nonce")),
        ("name", "ci".into()),
    ])
    .await;
    assert_eq!(status, 422);
    assert!(!answer.contains("fields need fixing"));
    let first_scope = answer
        .split("type=\"checkbox\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap();
    assert!(first_scope.contains("autofocus"), "{first_scope}");
    // Nothing was created.
    let (_, after) = get_page(&app, &cookie, path).await;
    assert!(!after.contains("id=\"active-tokens\""), "{after}");
}
