//! The token cache never serves what the database no longer allows, whoever changed it:
//! real `regauth serve` processes, the CLI in another process, two replicas on one database.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::Cli;
use crate::helpers::eventually;
use crate::server::ServerProcess;

fn postgres() -> bool {
    std::env::var("REGAUTH_TEST_DATABASE").as_deref() == Ok("postgres")
}

pub(crate) struct Token {
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) secret: String,
}

pub(crate) fn create_token(cli: &Cli, project: &str, name: &str) -> Token {
    let created: Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--project",
        project,
        "--name",
        name,
        "--scopes",
        "read_registry",
        "--json",
    ]))
    .unwrap();
    Token {
        id: created["id"].as_i64().unwrap(),
        username: created["username"].as_str().unwrap().to_owned(),
        secret: created["token"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn token_status(server: &ServerProcess, token: &Token, scope: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/jwt/auth", server.address))
        .basic_auth(&token.username, Some(&token.secret))
        .query(&[("service", "container_registry"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub(crate) fn start_server(cli: &Cli) -> ServerProcess {
    ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", cli.database_url.as_str()),
            ("RUST_LOG", "warn"),
        ],
    )
}

#[tokio::test]
async fn a_token_revoked_by_the_cli_in_another_process_is_refused_on_the_next_request() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let revoked = create_token(&cli, "acme/web", "revoked");
    let kept = create_token(&cli, "acme/web", "kept");
    let server = start_server(&cli);
    let scope = "repository:acme/web:pull";
    // Used twice each: the second answer comes from the cache.
    for token in [&revoked, &kept, &revoked, &kept] {
        assert_eq!(token_status(&server, token, scope).await, 200);
    }
    cli.ok(&["deploy-token", "revoke", &revoked.id.to_string()]);
    assert_eq!(token_status(&server, &revoked, scope).await, 401);
    assert_eq!(token_status(&server, &kept, scope).await, 200);
    assert_eq!(token_status(&server, &revoked, scope).await, 401);
}

#[tokio::test]
async fn a_project_created_by_the_cli_is_resolved_by_a_server_that_had_looked_for_it() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let created: Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--group",
        "acme",
        "--name",
        "ci",
        "--scopes",
        "read_registry",
        "--json",
    ]))
    .unwrap();
    let token = Token {
        id: created["id"].as_i64().unwrap(),
        username: created["username"].as_str().unwrap().to_owned(),
        secret: created["token"].as_str().unwrap().to_owned(),
    };
    let server = start_server(&cli);
    let granted = |response: Value| response["access_token"].as_str().map(str::to_owned);
    let ask = || async {
        let response: Value = reqwest::Client::new()
            .get(format!("{}/jwt/auth", server.address))
            .basic_auth(&token.username, Some(&token.secret))
            .query(&[
                ("service", "container_registry"),
                ("scope", "repository:acme/new/app:pull"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        granted(response)
    };
    // No project acme/new yet: the repository resolves to nothing and nothing is granted.
    let claims = |jwt: String| -> Value {
        use base64::Engine as _;
        let payload = jwt.split('.').nth(1).unwrap().to_owned();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    for _ in 0..2 {
        let access = claims(ask().await.unwrap())["access"].clone();
        assert_eq!(access, serde_json::json!([]), "{access}");
    }
    cli.ok(&["project", "create", "acme/new"]);
    // Another process's new project is seen at the next request on SQLite, within 1 s on
    // PostgreSQL.
    let within = if postgres() {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    let access = eventually("the new project resolved", within, async || {
        let access = claims(ask().await.unwrap())["access"].clone();
        (access[0]["name"] == "acme/new/app").then_some(access)
    })
    .await;
    assert_eq!(access[0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(token.id, created["id"].as_i64().unwrap());
}

/// Two replicas on one database: a token deleted through the API of one is refused by the
/// other once the API has answered (SQLite: at its next request; PostgreSQL: the deletion
/// returns only after every replica's trust in its last counter reading has run out).
#[tokio::test]
async fn two_replicas_refuse_a_token_once_the_other_one_deleted_it_through_the_api() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    cli.ok(&[
        "user",
        "create",
        "root",
        "--email",
        "root@example.com",
        "--admin",
    ]);
    let pat: Value = serde_json::from_str(
        &cli.ok(&["user", "token", "create", "root", "--name", "ops", "--json"]),
    )
    .unwrap();
    let pat = pat["token"].as_str().unwrap().to_owned();
    let token = create_token(&cli, "acme/web", "ci");
    let first = start_server(&cli);
    let second = start_server(&cli);
    let scope = "repository:acme/web:pull";
    for server in [&first, &second, &first, &second] {
        assert_eq!(token_status(server, &token, scope).await, 200);
    }
    let started = Instant::now();
    let revoked = reqwest::Client::new()
        .delete(format!(
            "{}/api/v4/projects/acme%2Fweb/deploy_tokens/{}",
            first.address, token.id
        ))
        .header("PRIVATE-TOKEN", &pat)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        revoked.status().is_success(),
        "{}",
        revoked.text().await.unwrap()
    );
    assert_eq!(token_status(&second, &token, scope).await, 401);
    assert_eq!(token_status(&first, &token, scope).await, 401);
    eprintln!("deletion through the API answered in {took:?}");
}

/// `memory://PATH`: a copy of a SQLite database in memory. Changes made while serving are
/// seen at once (revocation included) and are gone after the process ends; the file is not
/// touched.
#[tokio::test]
async fn a_memory_database_starts_from_a_copy_of_a_sqlite_file_and_forgets_changes_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.db");
    let cli = Cli {
        database_url: format!("sqlite://{}?mode=rwc", seed.display()),
        dir,
    };
    cli.ok(&["migrate"]);
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    cli.ok(&[
        "user",
        "create",
        "root",
        "--email",
        "root@example.com",
        "--admin",
    ]);
    let pat: Value = serde_json::from_str(
        &cli.ok(&["user", "token", "create", "root", "--name", "ops", "--json"]),
    )
    .unwrap();
    let pat = pat["token"].as_str().unwrap().to_owned();
    let token = create_token(&cli, "acme/web", "ci");
    let memory_url = format!("memory://{}", seed.display());
    let scope = "repository:acme/web:pull";
    let env = [
        ("REGAUTH_DATABASE_URL", memory_url.as_str()),
        ("RUST_LOG", "warn"),
    ];
    let mut server = ServerProcess::start(cli.dir.path(), &env);
    let stdout = std::fs::read_to_string(cli.dir.path().join("serve.stdout")).unwrap();
    assert!(stdout.contains("lost at exit"), "{stdout}");
    assert_eq!(token_status(&server, &token, scope).await, 200);
    assert_eq!(token_status(&server, &token, scope).await, 200);
    let deleted = reqwest::Client::new()
        .delete(format!(
            "{}/api/v4/projects/acme%2Fweb/deploy_tokens/{}",
            server.address, token.id
        ))
        .header("PRIVATE-TOKEN", &pat)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(token_status(&server, &token, scope).await, 401);
    server.terminate();
    assert!(server.wait(Duration::from_secs(15)).success());
    // A new process starts from the file again, where the token was never deleted.
    let server = ServerProcess::start(cli.dir.path(), &env);
    assert_eq!(token_status(&server, &token, scope).await, 200);
    let listed = cli.ok(&["deploy-token", "list", "--project", "acme/web", "--json"]);
    assert!(listed.contains("\"revoked\":false"), "{listed}");
}

#[tokio::test]
async fn a_memory_database_refuses_a_seed_that_is_not_a_regauth_database() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.db");
    std::fs::write(&bogus, b"not a database at all").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_LISTEN", "127.0.0.1:0")
        .env("REGAUTH_KEYS_DIR", dir.path().join("keys"))
        .env(
            "REGAUTH_DATABASE_URL",
            format!("memory://{}", bogus.display()),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bogus.db"), "{stderr}");
    assert_eq!(std::fs::read(&bogus).unwrap(), b"not a database at all");
}

#[tokio::test]
async fn a_cached_token_is_refused_from_the_second_it_expires() {
    let app = crate::helpers::spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(
            regauth::domain::NamespaceKind::Project,
            "acme/web",
            &["read_registry"],
        )
        .await;
    // A whole second boundary a little ahead, so that the token is used (and cached) first.
    let now = chrono::Utc::now();
    let expires_at = chrono::DateTime::from_timestamp(now.timestamp() + 3, 0).unwrap();
    app.set_expiry(token.token.id, expires_at).await;
    let scope = [
        ("service", "container_registry"),
        ("scope", "repository:acme/web:pull"),
    ];
    let credentials = Some((token.token.username.as_str(), token.secret.as_str()));
    for _ in 0..3 {
        let status = app.get_token(credentials, &scope).await.status().as_u16();
        if chrono::Utc::now() < expires_at - chrono::Duration::milliseconds(200) {
            assert_eq!(status, 200, "a valid token was refused before its expiry");
        }
    }
    let until = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until + Duration::from_millis(20)).await;
    assert_eq!(
        app.get_token(credentials, &scope).await.status().as_u16(),
        401,
        "a cached token still worked after its expiry"
    );
}

/// `/metrics` shows how token lookups went through the cache, so an operator can see it work
/// (and see it bypassed when the database cannot be asked whether anything changed).
#[tokio::test]
async fn metrics_count_token_cache_hits_misses_and_bypasses() {
    use regauth::domain::NamespaceKind::Project;

    let lookups = |text: &str, result: &str| -> u64 {
        let prefix = format!("regauth_token_cache_lookups_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
            .parse()
            .unwrap()
    };
    let app = crate::helpers::spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    for _ in 0..3 {
        let response = app
            .get_token(
                Some((&token.token.username, &token.secret)),
                &[("service", "container_registry")],
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let text = app.metrics_text().await;
    let (hits, misses, bypassed) = (
        lookups(&text, "hit"),
        lookups(&text, "miss"),
        lookups(&text, "bypassed"),
    );
    assert_eq!(hits + misses + bypassed, 3, "one lookup per token request");
    if postgres() {
        // A counter reading older than its trust window (a slow poll on a loaded machine)
        // makes a lookup a bypass instead of a hit.
        assert!(misses >= 1 && hits + bypassed >= 1, "{text}");
    } else {
        assert_eq!((hits, misses, bypassed), (2, 1, 0), "{text}");
    }

    let uncached =
        crate::helpers::spawn_app_with(|settings| settings.database.token_cache_capacity = 0).await;
    assert!(!uncached
        .metrics_text()
        .await
        .contains("regauth_token_cache_lookups"));
}
