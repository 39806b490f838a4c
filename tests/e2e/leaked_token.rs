//! A token committed to a git repository is found by a real scanner (Yelp's detect-secrets,
//! with the plugin for regauth's token format in `test-support/detect-secrets`), its findings
//! are piped into `regauth token revoke-leaked`, and the next pull with it is refused by the
//! real registry — while a token that did not leak goes on working.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use regauth::domain::NamespaceKind::Project;

use super::support::{Stack, CREDENTIALS_REFUSED};

fn git(repo: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(["-c", "user.name=dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The lines detect-secrets reports, as an operator's pipeline would print them for
/// `revoke-leaked`: `<file>:<line>: <text>`.
fn scan(repo: &Path) -> String {
    let detect_secrets = std::env::var("REGAUTH_TEST_DETECT_SECRETS")
        .expect("REGAUTH_TEST_DETECT_SECRETS (scripts/test.sh installs detect-secrets)");
    let plugin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("test-support/detect-secrets/regauth_tokens.py");
    let output = Command::new(detect_secrets)
        .args(["scan", "--plugin"])
        .arg(&plugin)
        .current_dir(repo)
        .output()
        .expect("detect-secrets");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let baseline: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut lines = String::new();
    for (file, findings) in baseline["results"].as_object().expect("results") {
        let text = std::fs::read_to_string(repo.join(file)).unwrap();
        for finding in findings.as_array().unwrap() {
            if finding["type"] != "regauth token" {
                continue;
            }
            let number = finding["line_number"].as_u64().unwrap() as usize;
            let line = text.lines().nth(number - 1).unwrap();
            lines.push_str(&format!("{file}:{number}: {line}\n"));
        }
    }
    lines
}

#[ignore = "needs docker-registry, skopeo, git and detect-secrets: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_committed_to_git_is_found_by_a_scanner_revoked_and_then_refused() {
    let stack = Stack::start().await;
    stack.app.create_project_with_groups("acme/web").await;
    let leaked = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let kept = stack
        .app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let client = stack.logged_in(&leaked);
    let pushed = stack.push(&client, "acme/web/app");
    stack.expect(&pushed, true, "push before the leak");

    // The leak: a CI file committed with the token in it.
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    std::fs::create_dir_all(repo.path().join("deploy")).unwrap();
    std::fs::write(
        repo.path().join("deploy/.env"),
        format!(
            "REGISTRY=registry.example.com\nREGISTRY_USER={}\nREGISTRY_PASSWORD={}\n",
            leaked.token.username, leaked.secret
        ),
    )
    .unwrap();
    git(repo.path(), &["add", "."]);
    git(
        repo.path(),
        &["commit", "-q", "-m", "ci: registry credentials"],
    );

    let findings = scan(repo.path());
    assert!(
        findings.contains(&leaked.secret),
        "detect-secrets found: {findings:?}"
    );

    let mut revoke = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args([
            "token",
            "revoke-leaked",
            "--location",
            "acme/app deploy/.env",
        ])
        .env("REGAUTH_DATABASE_URL", &stack.app.settings.database.url)
        .env("REGAUTH_KEYS_DIR", &stack.app.settings.signing.keys_dir)
        .env_remove("REGAUTH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    revoke
        .stdin
        .take()
        .unwrap()
        .write_all(findings.as_bytes())
        .unwrap();
    let output = revoke.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("revoked: deploy token {}", leaked.token.id)),
        "{stdout}"
    );

    // The next pull with the leaked token is refused at the login; the other token pulls.
    let refused = stack.login(&super::support::Skopeo::new(), &leaked);
    stack.expect_refused(
        &refused,
        CREDENTIALS_REFUSED,
        "login with the revoked token",
    );
    let other = stack.logged_in(&kept);
    let pulled = stack.pull(&other, "acme/web/app");
    stack.expect(&pulled, true, "pull with the token that did not leak");
}
