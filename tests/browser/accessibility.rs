//! Every page checked with axe-core (from npm; `scripts/test.sh` installs it into
//! `target/axe-core`): no violation of any rule axe runs by default (WCAG 2.x A and AA and its
//! best practices), signed out and in, with field errors, after a create, on a token's page,
//! on an error page and at a phone's width.

use std::path::Path;

use regauth::domain::NamespaceKind::Project;
use regauth::domain::Role;
use regauth_test_support::helpers::spawn_app;

use super::webdriver::Browser;
use super::{sign_in, user_with_password};

fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/axe-core/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "axe-core is not installed at {}: run scripts/test.sh, or `npm install --prefix target/axe-core axe-core@4`",
            path.display()
        )
    })
}

/// Runs axe on the page shown; one line per violation and element.
async fn violations(browser: &Browser, axe: &str) -> Vec<String> {
    browser.run_sync(&format!("{axe}\nreturn true;")).await;
    let result = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             window.axe.run(document)
               .then(r => done(r.violations.flatMap(v => v.nodes.map(n =>
                 `${v.id} (${v.impact}): ${v.help} at ${n.target.join(' ')}`))))
               .catch(e => done(['axe failed: ' + e]));",
        )
        .await;
    result
        .as_array()
        .unwrap_or_else(|| panic!("axe answered {result}"))
        .iter()
        .map(|line| line.as_str().unwrap_or_default().to_owned())
        .collect()
}

struct Audit {
    axe: String,
    found: Vec<String>,
}

impl Audit {
    async fn check(&mut self, browser: &mut Browser, page: &str) {
        browser.screenshot(page).await;
        for line in violations(browser, &self.axe).await {
            self.found.push(format!("{page}: {line}"));
        }
    }
}

#[ignore = "needs chromium and axe-core (npm): run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_no_accessibility_violation() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "alice").await;
    app.add_member("alice", Project, "acme/web", Role::Maintainer)
        .await;
    let mut audit = Audit {
        axe: axe_source(),
        found: Vec::new(),
    };
    for (width, height, label) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        let mut browser = Browser::start(&format!("axe-{label}"), width, height).await;
        browser
            .goto(&format!("{}/users/sign_in", app.address))
            .await;
        audit.check(&mut browser, &format!("{label} sign-in")).await;
        browser.type_into("#user_login", "alice").await;
        browser
            .type_into("#user_password", "not the password")
            .await;
        browser.click_and_wait("#sign_in").await;
        audit
            .check(&mut browser, &format!("{label} sign-in failed"))
            .await;

        sign_in(&mut browser, &app, "alice").await;
        audit.check(&mut browser, &format!("{label} home")).await;
        browser.click_and_wait("a.who").await;
        audit
            .check(&mut browser, &format!("{label} preferences"))
            .await;
        browser.click("#new_address_mail").await;
        browser.click_and_wait("#save-preferences").await;
        audit
            .check(&mut browser, &format!("{label} preferences saved"))
            .await;
        let settings = format!("{}/acme/web/-/settings/repository", app.address);
        browser.goto(&settings).await;
        audit
            .check(&mut browser, &format!("{label} settings"))
            .await;

        // Every field wrong at once.
        browser
            .type_into("#deploy_token_username", "gitlab+deploy-token-1")
            .await;
        browser.click_and_wait("#create-deploy-token").await;
        audit
            .check(&mut browser, &format!("{label} settings with errors"))
            .await;
        let errors = browser.find_all(".field-error").await.len();
        assert_eq!(errors, 3, "name, username and scopes at once");
        let focused = browser.run_sync("return document.activeElement.id;").await;
        assert_eq!(
            focused, "deploy_token_name",
            "the first invalid field has the focus"
        );

        browser.goto(&settings).await;
        browser
            .type_into("#deploy_token_name", &format!("ci {label}"))
            .await;
        browser.click("#deploy_token_read_registry").await;
        browser.click_and_wait("#create-deploy-token").await;
        audit.check(&mut browser, &format!("{label} created")).await;

        browser.goto(&settings).await;
        browser.click_and_wait("#active-tokens a.revoke").await;
        audit.check(&mut browser, &format!("{label} token")).await;
        browser.click_and_wait("#confirm-revoke").await;
        audit.check(&mut browser, &format!("{label} revoked")).await;

        browser
            .goto(&format!("{}/nowhere/-/settings/repository", app.address))
            .await;
        audit
            .check(&mut browser, &format!("{label} not found"))
            .await;
        browser.quit().await;
    }
    assert!(
        audit.found.is_empty(),
        "axe-core found:\n{}",
        audit.found.join("\n")
    );
}
