//! The keys directory as a running server sees it: SIGHUP is always handled (never the
//! default action, which ends the process), re-reads the signing keys and logs what changed;
//! staged rotation publishes a key first and signs with it only once activated.

use std::time::{Duration, Instant};

use crate::cli::Cli;
use crate::helpers::jwt_header;
use crate::server::ServerProcess;

/// A token for `username`/`secret` from the server; the `kid` of its signing key.
async fn signing_kid(server: &ServerProcess, username: &str, secret: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!("{}/jwt/auth", server.address))
        .basic_auth(username, Some(secret))
        .query(&[
            ("service", "container_registry"),
            ("scope", "repository:acme/web:pull"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    jwt_header(body["token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// How many keys the server publishes at `/.well-known/jwks.json`.
async fn published_keys(server: &ServerProcess) -> usize {
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"].as_array().unwrap().len()
}

/// Sends SIGHUP and waits until the server logged the `n`th reload.
fn hang_up(server: &ServerProcess, n: usize) -> String {
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.stderr();
        if log.matches("SIGHUP: ").count() >= n {
            return log;
        }
        assert!(Instant::now() < deadline, "no reload logged:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_reloads_keys_and_a_staged_key_signs_only_once_activated() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let token: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "ci",
        "--scopes",
        "read_registry",
        "--json",
    ]))
    .unwrap();
    let (username, secret) = (
        token["username"].as_str().unwrap(),
        token["token"].as_str().unwrap(),
    );
    let server = ServerProcess::start(
        cli.dir.path(),
        &[("REGAUTH_DATABASE_URL", &cli.database_url)],
    );
    let first = signing_kid(&server, username, secret).await;
    assert_eq!(published_keys(&server).await, 1);

    // Nothing changed: the server lives on and says so.
    let log = hang_up(&server, 1);
    assert!(log.contains("signing keys unchanged"), "{log}");

    // Staged: published at once, not signing.
    let out = cli.ok(&["keys", "generate", "--staged"]);
    assert!(out.contains("staged"), "{out}");
    let staged_log = hang_up(&server, 2);
    assert_eq!(published_keys(&server).await, 2);
    assert!(
        staged_log.contains(&format!("still signing with {first}; published ")),
        "{staged_log}"
    );
    assert_eq!(signing_kid(&server, username, secret).await, first);
    let bundle = std::fs::read_to_string(cli.dir.path().join("keys/bundle.crt")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);

    // Activated: the next SIGHUP makes it sign; the old key stays published.
    cli.ok(&["keys", "activate"]);
    let log = hang_up(&server, 3);
    let second = signing_kid(&server, username, secret).await;
    assert_ne!(second, first);
    assert!(
        staged_log.contains(&format!("published {second}"))
            && log.contains(&format!("now signing with {second} (was {first})")),
        "{log}"
    );
    assert_eq!(published_keys(&server).await, 2);

    // A broken key is logged and the keys in use are kept.
    std::fs::write(cli.dir.path().join("keys/private/zzz.key"), "not a key").unwrap();
    let log = hang_up(&server, 4);
    assert!(log.contains("not reloaded, keeping the old ones"), "{log}");
    assert_eq!(signing_kid(&server, username, secret).await, second);
    assert!(server.stdout().contains("regauth listening on"));
}
