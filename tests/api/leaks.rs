//! A leaked token is dead within seconds (issue "checksummed tokens, revoke-by-value,
//! secret-scanning reports"): the token format a scanner can check offline, GitLab's admin token
//! API, GitHub's signed partner reports, GitLab's Token Revocation API and the command line.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use regauth::domain::token_format::{Shape, TokenKind};
use regauth::domain::NamespaceKind::Project;
use reqwest::Method;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::helpers::{spawn_app_with, CreatedToken, TestApp};

const REGISTRY: &str = "container_registry";

async fn pull(app: &TestApp, token: &CreatedToken) -> u16 {
    app.get_token(
        Some((&token.token.username, &token.secret)),
        &[("service", REGISTRY), ("scope", "repository:acme/web:pull")],
    )
    .await
    .status()
    .as_u16()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).map(str::trim))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

async fn world(
    customise: impl FnOnce(&mut regauth::config::Settings),
) -> (TestApp, CreatedToken, String) {
    let app = spawn_app_with(customise).await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let admin = app.create_user("root", true, "api").await;
    (app, token, admin)
}

#[tokio::test]
async fn new_secrets_carry_prefix_and_checksum_and_a_wrong_checksum_costs_no_lookup() {
    let (app, token, admin) = world(|settings| {
        settings.tokens.instance_prefix = Some("acme-".into());
    })
    .await;
    let formats = app.settings.tokens.formats();
    assert!(token.secret.starts_with("acme-dt-"), "{}", token.secret);
    assert_eq!(
        formats.shape(&token.secret),
        Shape::Valid(TokenKind::DeployToken)
    );
    assert!(admin.starts_with("acme-pat-"), "{admin}");
    assert_eq!(pull(&app, &token).await, 200);
    // One character changed: refused as a failed login without a database or cache lookup.
    let before = app.metrics_text().await;
    let lookups = |text: &str| {
        ["hit", "miss", "bypassed"]
            .iter()
            .map(|result| {
                metric(
                    text,
                    &format!("regauth_token_cache_lookups_total{{result=\"{result}\"}}"),
                )
            })
            .sum::<u64>()
    };
    let mut altered = token.secret.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'a' { 'b' } else { 'a' });
    let refused = app
        .get_token(
            Some((&token.token.username, &altered)),
            &[("service", REGISTRY), ("scope", "repository:acme/web:pull")],
        )
        .await;
    assert_eq!(refused.status(), 401);
    let after = app.metrics_text().await;
    assert_eq!(
        lookups(&after),
        lookups(&before),
        "a lookup was made:\n{after}"
    );
    assert_eq!(
        metric(&after, "regauth_login_failures_total{route=\"registry\"}"),
        metric(&before, "regauth_login_failures_total{route=\"registry\"}") + 1
    );
}

#[tokio::test]
async fn the_admin_token_api_says_what_a_token_is_and_revokes_it_for_administrators_only() {
    let (app, token, admin) = world(|_| {}).await;
    let alice = app.create_user("alice", false, "api").await;
    let ask = |method: Method, who: &str, secret: &str| {
        app.api(method, "/admin/token", who)
            .json(&json!({ "token": secret }))
            .send()
    };
    let info = ask(Method::POST, &admin, &token.secret).await.unwrap();
    assert_eq!(info.status(), 200);
    let body: Value = info.json().await.unwrap();
    assert_eq!(body["kind"], "deploy_token");
    assert_eq!(body["id"], token.token.id);
    assert_eq!(body["owner"]["full_path"], "acme/web");
    assert_eq!(body["scopes"], json!(["read_registry"]));
    assert_eq!(body["revoked"], false);
    assert!(
        !body.to_string().contains(&token.secret),
        "the secret is echoed: {body}"
    );
    let pat: Value = ask(Method::POST, &admin, &alice)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pat["kind"], "personal_access_token");
    assert_eq!(pat["user"]["username"], "alice");
    // Not an administrator: 403; not a token: 404.
    assert_eq!(
        ask(Method::POST, &alice, &token.secret)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        ask(Method::POST, &admin, "gldt-notatokenatallnotatokenatall12")
            .await
            .unwrap()
            .status(),
        404
    );
    // Revoked by value: the next pull is refused; again is no error, counted once.
    assert_eq!(
        ask(Method::DELETE, &alice, &token.secret)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(pull(&app, &token).await, 200);
    assert_eq!(
        ask(Method::DELETE, &admin, &token.secret)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(pull(&app, &token).await, 401);
    assert_eq!(
        ask(Method::DELETE, &admin, &token.secret)
            .await
            .unwrap()
            .status(),
        204
    );
    let after: Value = ask(Method::POST, &admin, &token.secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["revoked"], true);
    let text = app.metrics_text().await;
    assert_eq!(
        metric(&text, "regauth_tokens_revoked_total{reason=\"leaked\"}"),
        1,
        "{text}"
    );
    // The audit trail says why, and the token's page shows it.
    let trail = regauth::service::deploy_tokens::audit_trail(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &token.token.owner,
        token.token.id,
    )
    .await
    .unwrap()
    .1;
    let leaked: Vec<_> = trail
        .iter()
        .filter(|event| event.details["reason"] == "leaked")
        .collect();
    assert_eq!(leaked.len(), 1, "{trail:?}");
    assert_eq!(leaked[0].actor, "root");
    assert_eq!(leaked[0].details["reporter"], "admin");
}

/// A P-256 key made for the test, and GitHub's key list naming it.
fn github_key(id: &str) -> (EcdsaKeyPair, Value) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo of an id-ecPublicKey prime256v1 point.
    let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(pair.public_key().as_ref());
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    let keys = json!({"public_keys": [{"key_identifier": id, "key": pem, "is_current": true}]});
    (pair, keys)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn sign(pair: &EcdsaKeyPair, body: &str) -> String {
    let signature = pair
        .sign(&ring::rand::SystemRandom::new(), body.as_bytes())
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(signature.as_ref())
}

#[tokio::test]
async fn a_signed_github_report_revokes_its_real_tokens_and_a_badly_signed_one_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("github-keys.json");
    let (pair, keys) = github_key("test-key-1");
    std::fs::write(&keys_file, keys.to_string()).unwrap();
    let (app, token, _) = world(|settings| {
        settings.leak_reports.github_secret_scanning_keys_file = Some(keys_file.clone());
    })
    .await;
    let other = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let report = json!([
        {"token": token.secret, "type": "regauth_deploy_token", "url": "https://github.com/acme/app/blob/abc/ci.yml", "source": "commit"},
        {"token": "gldt-looksalikebutisnotarealtoken12", "type": "regauth_deploy_token", "url": "", "source": "content"}
    ])
    .to_string();
    let post = |body: String, id: &str, signature: String| {
        app.client
            .post(format!("{}/-/secret-scanning/github", app.address))
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", id)
            .header("Github-Public-Key-Signature", signature)
            .body(body)
            .send()
    };
    // Signed by another key, by an unknown key, or a body changed after signing: refused,
    // nothing revoked.
    let (stranger, _) = github_key("test-key-1");
    assert_eq!(
        post(report.clone(), "test-key-1", sign(&stranger, &report))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(report.clone(), "unknown", sign(&pair, &report))
            .await
            .unwrap()
            .status(),
        401
    );
    let changed = report.replace("commit", "content");
    assert_eq!(
        post(changed, "test-key-1", sign(&pair, &report))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(pull(&app, &token).await, 200);
    // Signed: the real token is revoked, the look-alike is not one; feedback by digest.
    let answer = post(report.clone(), "test-key-1", sign(&pair, &report))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let feedback: Value = answer.json().await.unwrap();
    assert_eq!(feedback[0]["label"], "true_positive");
    assert_eq!(feedback[1]["label"], "false_positive");
    assert!(!feedback.to_string().contains(&token.secret));
    assert_eq!(pull(&app, &token).await, 401);
    assert_eq!(pull(&app, &other).await, 200);
    // The same report again: nothing new, no error.
    let again = post(report.clone(), "test-key-1", sign(&pair, &report))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let text = app.metrics_text().await;
    assert_eq!(
        metric(&text, "regauth_tokens_revoked_total{reason=\"leaked\"}"),
        1,
        "{text}"
    );
}

#[tokio::test]
async fn the_github_and_gitlab_endpoints_are_off_unless_configured() {
    let (app, _, _) = world(|_| {}).await;
    for (method, path) in [
        (Method::POST, "/-/secret-scanning/github"),
        (Method::GET, "/v1/revocable_token_types"),
        (Method::POST, "/v1/revoke_tokens"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .header("Authorization", "anything")
            .body("[]")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
}

#[tokio::test]
async fn gitlabs_token_revocation_api_revokes_with_its_pre_shared_token_and_answers_alike() {
    let (app, token, _) = world(|settings| {
        settings.leak_reports.gitlab_token_revocation_token =
            Some("shared-secret-of-the-gitlab".into());
    })
    .await;
    let types = app
        .client
        .get(format!("{}/v1/revocable_token_types", app.address))
        .header("Authorization", "shared-secret-of-the-gitlab")
        .send()
        .await
        .unwrap();
    assert_eq!(types.status(), 200);
    let types: Value = types.json().await.unwrap();
    let token_type = types["types"][0].as_str().unwrap().to_owned();
    let revoke = |authorization: &str, body: Value| {
        app.client
            .post(format!("{}/v1/revoke_tokens", app.address))
            .header("Authorization", authorization)
            .json(&body)
            .send()
    };
    let body = json!([
        {"type": token_type, "token": token.secret, "location": "https://gitlab.example.com/acme/app/-/blob/abc/.env"},
        {"type": token_type, "token": "not-a-token"}
    ]);
    assert_eq!(revoke("wrong", body.clone()).await.unwrap().status(), 401);
    assert_eq!(
        revoke(
            "shared-secret-of-the-gitlab",
            json!([{"type": "aws_key", "token": "x"}])
        )
        .await
        .unwrap()
        .status(),
        400
    );
    assert_eq!(pull(&app, &token).await, 200);
    assert_eq!(
        revoke("shared-secret-of-the-gitlab", body.clone())
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(pull(&app, &token).await, 401);
    // Known, unknown, again: the same answer.
    assert_eq!(
        revoke("shared-secret-of-the-gitlab", body)
            .await
            .unwrap()
            .status(),
        204
    );
}

#[tokio::test]
async fn the_command_line_revokes_every_token_a_scanner_found_in_its_input() {
    let cli = Cli::new().await;
    let app = cli.spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let leaked = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let kept = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    // As a scanner prints it: the token inside a line of JSON, and a look-alike.
    let input = format!(
        "{{\"File\": \"deploy/.env\", \"Secret\": \"{}\", \"RuleID\": \"regauth-deploy-token\"}}\n\
         gldt-looksalikebutisnotarealtoken12\n",
        leaked.secret
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args([
            "token",
            "revoke-leaked",
            "--location",
            "git history of acme/app",
        ])
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
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("revoked: deploy token {}", leaked.token.id)),
        "{stdout}"
    );
    assert!(!stdout.contains(&leaked.secret), "{stdout}");
    assert!(
        stderr.contains("1 revoked, 0 already revoked, 1 not regauth tokens"),
        "{stderr}"
    );
    assert_eq!(pull(&app, &leaked).await, 401);
    assert_eq!(pull(&app, &kept).await, 200);
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn the_people_who_manage_a_leaked_token_are_mailed_where_it_leaked_and_what_to_do() {
    let sink = crate::smtp_sink::SmtpSink::start();
    let smtp = regauth::config::SmtpSettings::parse(&sink.url(), "regauth@localhost").unwrap();
    let (app, token, admin) = world(move |settings| settings.housekeeping.smtp = Some(smtp)).await;
    app.create_user("maintainer", false, "api").await;
    app.add_member(
        "maintainer",
        Project,
        "acme/web",
        regauth::domain::Role::Maintainer,
    )
    .await;
    app.create_user("developer", false, "api").await;
    app.add_member(
        "developer",
        Project,
        "acme/web",
        regauth::domain::Role::Developer,
    )
    .await;
    let revoked = app
        .api(Method::DELETE, "/admin/token", &admin)
        .json(&json!({ "token": token.secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mails = loop {
        let mails = sink.mails();
        if !mails.is_empty() || std::time::Instant::now() > deadline {
            break mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, vec!["maintainer@example.com".to_owned()]);
    assert!(
        mail.subject.contains("was revoked: its secret leaked"),
        "{}",
        mail.subject
    );
    assert!(mail.body.contains("Reported by: admin"), "{}", mail.body);
    assert!(
        mail.body
            .contains("regauth deploy-token create --project acme/web"),
        "{}",
        mail.body
    );
    assert!(!mail.body.contains(&token.secret));
}

/// Serves `body` as JSON on a loopback port to any number of GETs; counts them.
fn key_server(body: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead as _, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/meta/public_keys/secret_scanning",
        listener.local_addr().unwrap().port()
    );
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, hits)
}

#[tokio::test]
async fn githubs_keys_are_fetched_from_their_url_once_and_not_again_for_every_unknown_key() {
    let (pair, keys) = github_key("published-key");
    let (url, hits) = key_server(keys.to_string());
    let (app, token, _) = world(|settings| {
        settings.leak_reports.github_secret_scanning_keys_url = Some(url.parse().unwrap());
    })
    .await;
    let post = |body: String, id: &str, signature: String| {
        app.client
            .post(format!("{}/-/secret-scanning/github", app.address))
            .header("Github-Public-Key-Identifier", id)
            .header("Github-Public-Key-Signature", signature)
            .body(body)
            .send()
    };
    let report = json!([{"token": token.secret, "type": "regauth", "url": "", "source": "commit"}])
        .to_string();
    assert_eq!(
        post(report.clone(), "published-key", sign(&pair, &report))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(pull(&app, &token).await, 401);
    assert_eq!(
        post(report.clone(), "published-key", sign(&pair, &report))
            .await
            .unwrap()
            .status(),
        200
    );
    // Unknown identifiers: refused, and the list is not fetched again within the minute.
    for _ in 0..3 {
        assert_eq!(
            post(report.clone(), "not-published", sign(&pair, &report))
                .await
                .unwrap()
                .status(),
            401
        );
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
