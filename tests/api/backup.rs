//! `regauth backup`: an online copy of a live SQLite database, restored into a new server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::helpers::eventually;
use crate::server::ServerProcess;

fn create_token(cli: &Cli, name: &str) -> Value {
    serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        name,
        "--scopes",
        "read_registry",
        "--json",
    ]))
    .unwrap()
}

async fn pull_status(client: &reqwest::Client, address: &str, token: &Value) -> u16 {
    client
        .get(format!("{address}/jwt/auth"))
        .basic_auth(token["username"].as_str().unwrap(), token["token"].as_str())
        .query(&[
            ("service", "container_registry"),
            ("scope", "repository:acme/web:pull"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_into_a_server_that_knows_its_tokens() {
    let cli = Cli::new().await;
    if !cli.database_url.starts_with("sqlite:") {
        let error = cli.fails(&["backup", "copy.db"]);
        assert!(error.contains("pg_dump"), "{error}");
        return;
    }
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let kept = create_token(&cli, "kept");
    let revoked = create_token(&cli, "revoked");
    cli.ok(&["deploy-token", "revoke", &revoked["id"].to_string()]);
    cli.ok(&[
        "user",
        "create",
        "root",
        "--email",
        "root@example.com",
        "--admin",
    ]);
    let pat: Value = serde_json::from_str(
        &cli.ok(&["user", "token", "create", "root", "--name", "t", "--json"]),
    )
    .unwrap();
    let pat = pat["token"].as_str().unwrap().to_owned();

    // The server keeps serving and writing while the backup runs.
    let app = Arc::new(cli.spawn_app().await);
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (app, stop, pat) = (Arc::clone(&app), Arc::clone(&stop), pat.clone());
        let created = Arc::clone(&created);
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let response = app
                    .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &pat)
                    .json(&json!({"name": "busy", "scopes": ["read_registry"]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                created.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // The backup starts once the server is writing.
    eventually(
        "the writer's first tokens",
        std::time::Duration::from_secs(30),
        async || (created.load(Ordering::SeqCst) > 0).then_some(()),
    )
    .await;
    let backup = cli.dir.path().join("backup.db");
    let backup_arg = backup.display().to_string();
    let out = cli.ok(&["backup", &backup_arg]);
    assert!(out.contains("written to"), "{out}");
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();

    // An existing file is kept unless --force.
    let before = std::fs::read(&backup).unwrap();
    let error = cli.fails(&["backup", &backup_arg]);
    assert!(error.contains("--force"), "{error}");
    assert_eq!(std::fs::read(&backup).unwrap(), before);
    cli.ok(&["backup", &backup_arg, "--force"]);

    // Restore: a new server on the copy alone.
    let restored = tempfile::tempdir().unwrap();
    let restored_db = restored.path().join("regauth.db");
    std::fs::copy(&backup, &restored_db).unwrap();
    let url = format!("sqlite://{}?mode=rwc", restored_db.display());
    let server = ServerProcess::start(restored.path(), &[("REGAUTH_DATABASE_URL", &url)]);
    let client = reqwest::Client::new();
    assert_eq!(pull_status(&client, &server.address, &kept).await, 200);
    assert_eq!(pull_status(&client, &server.address, &revoked).await, 401);
}
