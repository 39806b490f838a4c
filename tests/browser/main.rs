//! The deploy-token pages driven in Debian's headless chromium through chromedriver (a
//! tiny WebDriver client, `webdriver.rs`): sign in, add a token, see it once, use it against
//! `/jwt/auth`, revoke it, see it refused; the Developer's view and forged posts; CSRF; a
//! blocked user. Every test saves screenshots of the pages it visits in target/screenshots/.

mod accessibility;
mod webdriver;

use chrono::Utc;
use regauth::domain::NamespaceKind::{Group, Project};
use regauth::domain::Role;
use regauth::service::web_sessions::{self, Password};
use regauth_test_support::helpers::{spawn_app, TestApp};
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery";

async fn user_with_password(app: &TestApp, username: &str) {
    app.create_user(username, false, "api").await;
    web_sessions::set_password(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        username,
        Password::new(PASSWORD.into()),
        Utc::now(),
    )
    .await
    .unwrap();
}

async fn sign_in(browser: &mut Browser, app: &TestApp, username: &str) {
    browser
        .goto(&format!("{}/users/sign_in", app.address))
        .await;
    browser.type_into("#user_login", username).await;
    browser.type_into("#user_password", PASSWORD).await;
    browser.screenshot("sign-in").await;
    browser.click_and_wait("#sign_in").await;
    assert!(
        !browser.url().await.contains("/users/sign_in"),
        "still on the sign-in page: {}",
        browser.text().await
    );
}

async fn registry_token_status(app: &TestApp, username: &str, secret: &str) -> u16 {
    app.get_token(
        Some((username, secret)),
        &[
            ("service", "container_registry"),
            ("scope", "repository:acme/web:pull"),
        ],
    )
    .await
    .status()
    .as_u16()
}

#[ignore = "needs chromium: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintainer_adds_a_token_sees_it_once_uses_it_and_revokes_it() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "alice").await;
    app.add_member("alice", Project, "acme/web", Role::Maintainer)
        .await;
    let mut browser = Browser::start("maintainer", 1280, 900).await;
    sign_in(&mut browser, &app, "alice").await;

    // The start page lists the project; its link leads to the settings page.
    assert!(browser.text().await.contains("acme/web"));
    browser.screenshot("projects").await;
    browser.click_and_wait("ul.namespaces a").await;
    assert_eq!(
        browser.url().await,
        format!("{}/acme/web/-/settings/repository", app.address)
    );
    // Only the scopes valid for a project are offered.
    assert!(browser.find_all("#deploy_token_read_registry").await.len() == 1);
    assert!(browser
        .find_all("#deploy_token_read_virtual_registry")
        .await
        .is_empty());

    // An error appears next to its field, and nothing typed is lost.
    browser.type_into("#deploy_token_name", "ci pull").await;
    browser.click_and_wait("#create-deploy-token").await;
    let scopes_error = browser.find("#scopes-error").await;
    assert!(browser
        .element_text(&scopes_error)
        .await
        .contains("can't be blank"));
    assert_eq!(browser.value("#deploy_token_name").await, "ci pull");
    browser.screenshot("field-error").await;

    browser.type_into("#deploy_token_username", "ci-bot").await;
    browser.click("#deploy_token_read_registry").await;
    browser.click_and_wait("#create-deploy-token").await;
    let username = browser.value("#deploy-token-user").await;
    let secret = browser.value("#deploy-token-secret").await;
    assert_eq!(username, "ci-bot");
    assert!(secret.starts_with("gldt-"), "a deploy token secret");
    assert!(browser.text().await.contains("can not be recovered"));
    browser.screenshot("created").await;

    // The credentials work against /jwt/auth.
    assert_eq!(registry_token_status(&app, &username, &secret).await, 200);

    // Reloading (which re-posts the form) and going back never show the secret again,
    // nor create a second token.
    browser.refresh().await;
    assert!(
        !browser.source().await.contains(&secret),
        "shown again on reload"
    );
    browser.back().await;
    assert!(
        !browser.source().await.contains(&secret),
        "shown again on back"
    );
    browser
        .goto(&format!("{}/acme/web/-/settings/repository", app.address))
        .await;
    assert!(!browser.source().await.contains(&secret));
    let rows = browser.find_all("#active-tokens tbody tr").await;
    assert_eq!(rows.len(), 1, "exactly one token, not one per reload");
    let row_text = browser.element_text(&rows[0]).await;
    assert!(row_text.contains("ci pull") && row_text.contains("read_registry"));
    assert!(row_text.contains("ci-bot"));
    browser.screenshot("list").await;

    // Revoke is behind a confirmation: the detail view with its audit trail.
    browser.click_and_wait("#active-tokens a.revoke").await;
    let detail = browser.url().await;
    assert!(detail.contains("/acme/web/-/deploy_tokens/"));
    // Token use reaches the audit trail through a writer that flushes every second.
    let mut trail = browser.text().await;
    for _ in 0..20 {
        if trail.contains("used for a registry token") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // A reload: the detail URL ends in `#revoke`, and going to the URL the page already
        // has only scrolls to the fragment without asking the server again.
        browser.refresh().await;
        trail = browser.text().await;
    }
    assert!(
        trail.contains("created") && trail.contains("alice"),
        "{trail}"
    );
    assert!(trail.contains("used for a registry token"), "{trail}");
    browser.screenshot("confirm-revoke").await;
    browser.click_and_wait("#confirm-revoke").await;
    assert!(browser
        .text()
        .await
        .contains("The deploy token was revoked."));
    assert!(browser.find_all("#active-tokens").await.is_empty());
    browser.screenshot("revoked").await;

    assert_eq!(registry_token_status(&app, &username, &secret).await, 401);
    browser.quit().await;
}

#[ignore = "needs chromium: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_sees_no_add_form_and_a_forged_post_is_refused() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "dev").await;
    app.add_member("dev", Project, "acme/web", Role::Developer)
        .await;
    let mut browser = Browser::start("developer", 1280, 900).await;
    sign_in(&mut browser, &app, "dev").await;
    assert!(browser.text().await.contains("You manage no deploy tokens"));
    browser.screenshot("nothing-to-manage").await;

    let csrf = browser.value("input[name=authenticity_token]").await;

    browser
        .goto(&format!("{}/acme/web/-/settings/repository", app.address))
        .await;
    assert!(browser.find_all("#new-deploy-token").await.is_empty());
    assert!(browser
        .text()
        .await
        .contains("Your role does not allow this"));
    browser.screenshot("settings").await;

    // A forged POST with the session's valid CSRF token is still refused. (Sent from a
    // page without the pages' Content-Security-Policy, which forbids scripts to fetch.)
    browser
        .goto(&format!("{}/-/static/regauth.css", app.address))
        .await;
    let status = browser
        .run_async(&format!(
            "const done = arguments[arguments.length - 1];
             const body = new URLSearchParams({{authenticity_token: '{csrf}', form_nonce: 'x',
               name: 'forged', scopes: 'write_registry'}});
             fetch('/acme/web/-/settings/repository/deploy_token/create', {{method: 'POST', body}})
               .then(r => done(r.status), e => done(String(e)));",
        ))
        .await;
    assert_eq!(status, 403);
    let tokens = regauth::service::deploy_tokens::list_all(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        Default::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(tokens.total, 0, "no token was created");
    browser.quit().await;
}

#[ignore = "needs chromium: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.create_group("acme").await;
    user_with_password(&app, "owner").await;
    app.add_member("owner", Group, "acme", Role::Owner).await;
    let mut browser = Browser::start("csrf", 1280, 900).await;
    sign_in(&mut browser, &app, "owner").await;
    browser
        .goto(&format!(
            "{}/groups/acme/-/settings/repository",
            app.address
        ))
        .await;
    // A group offers the virtual-registry scopes.
    assert_eq!(
        browser
            .find_all("#deploy_token_read_virtual_registry")
            .await
            .len(),
        1
    );
    browser.screenshot("group-settings").await;
    // (Sent from a page without the pages' Content-Security-Policy, which forbids fetch.)
    browser
        .goto(&format!("{}/-/static/regauth.css", app.address))
        .await;
    let status = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             const body = new URLSearchParams({form_nonce: 'x', name: 'no csrf',
               scopes: 'read_registry'});
             fetch('/groups/acme/-/settings/repository/deploy_token/create', {method: 'POST', body})
               .then(r => done(r.status), e => done(String(e)));",
        )
        .await;
    assert_eq!(status, 403);
    browser
        .goto(&format!(
            "{}/groups/acme/-/settings/repository",
            app.address
        ))
        .await;
    assert!(
        browser.find_all("#active-tokens").await.is_empty(),
        "nothing created"
    );
    // The session's token from the page itself is accepted: the refusal was the CSRF check.
    browser.type_into("#deploy_token_name", "group pull").await;
    browser.click("#deploy_token_read_registry").await;
    browser.click_and_wait("#create-deploy-token").await;
    assert!(browser
        .value("#deploy-token-secret")
        .await
        .starts_with("gldt-"));
    browser.quit().await;
}

#[ignore = "needs chromium: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_user_is_signed_out() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "mallory").await;
    app.add_member("mallory", Project, "acme/web", Role::Maintainer)
        .await;
    // Phone width: the pages must stay usable there.
    let mut browser = Browser::start("blocked", 390, 844).await;
    sign_in(&mut browser, &app, "mallory").await;
    browser
        .goto(&format!("{}/acme/web/-/settings/repository", app.address))
        .await;
    browser.find("#new-deploy-token").await;
    browser.screenshot("phone-settings").await;

    app.block_user("mallory").await;
    browser.refresh().await;
    assert!(
        browser.url().await.contains("/users/sign_in"),
        "a blocked user's session ends"
    );
    browser.screenshot("signed-out").await;
    // And cannot sign in again; the message does not say why.
    browser.type_into("#user_login", "mallory").await;
    browser.type_into("#user_password", PASSWORD).await;
    browser.click_and_wait("#sign_in").await;
    assert!(browser
        .text()
        .await
        .contains("Invalid username or password."));
    browser.screenshot("refused").await;
    browser.quit().await;
}
