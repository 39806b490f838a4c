//! Start-up faults, run as a user would meet them: `regauth serve` / `migrate` stop with one
//! line naming the cause and the setting, a non-zero exit, and nothing half-done.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use migration::MigratorTrait;
use regauth::domain::TokenSecret;
use regauth::store::{DeployTokenStore, SeaStore};
use sea_orm::{ConnectionTrait, Statement};

use crate::cli::Cli;
use crate::server::ServerProcess;

/// Runs `regauth <args>` expected to fail within `limit`; its one error line.
fn fails(dir: &Path, database_url: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let started = Instant::now();
    let stderr_path = dir.join("fails.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(args)
        .current_dir(dir)
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_DATABASE_URL", database_url)
        .env("REGAUTH_KEYS_DIR", dir.join("keys"))
        .env("REGAUTH_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "regauth {args:?} still running after 30 s: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!status.success(), "regauth {args:?} should fail: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "one clear error line, got: {stderr}");
    lines[0].to_owned()
}

const ED25519_KEY: &str = include_str!("../../src/jwt/testdata/ed25519.key");
const EC_KEY: &str = include_str!("../../src/jwt/testdata/ec_pkcs8.key");
const RSA_CRT: &str = include_str!("../../src/jwt/testdata/rsa.crt");

#[tokio::test]
async fn bad_signing_keys_stop_the_start_naming_the_file_and_keys_dir() {
    let cli = Cli::new().await;
    let dir = cli.dir.path();
    let keys = dir.join("keys");
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);
    let mut cases: Vec<Case> = vec![
        (
            "malformed",
            Box::new(|| std::fs::write(keys.join("a.key"), "not a key").unwrap()),
            "a.key",
        ),
        (
            "ed25519",
            Box::new(|| {
                std::fs::write(keys.join("a.key"), ED25519_KEY).unwrap();
                std::fs::write(keys.join("a.crt"), RSA_CRT).unwrap();
            }),
            "Ed25519",
        ),
        (
            "certificate of another key",
            Box::new(|| {
                std::fs::write(keys.join("a.key"), EC_KEY).unwrap();
                std::fs::write(keys.join("a.crt"), RSA_CRT).unwrap();
            }),
            "does not match",
        ),
    ];
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !root {
        // Root reads whatever the mode says: this case needs an ordinary user.
        cases.push((
            "unreadable",
            Box::new(|| {
                std::fs::write(keys.join("a.key"), EC_KEY).unwrap();
                Command::new("chmod")
                    .args(["000", keys.join("a.key").to_str().unwrap()])
                    .status()
                    .unwrap();
            }),
            "a.key",
        ));
    }
    for (what, prepare, cause) in cases {
        let _ = std::fs::remove_dir_all(&keys);
        std::fs::create_dir(&keys).unwrap();
        prepare();
        let error = fails(dir, &cli.database_url, &[], &["serve"]);
        assert!(
            error.contains("keys_dir") && error.contains(cause),
            "{what}: {error}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_within_the_acquire_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing listens there any more.
    let url = format!("postgres://regauth:hunter2@127.0.0.1:{closed_port}/regauth");
    let error = fails(
        dir.path(),
        &url,
        &[("REGAUTH_DATABASE_ACQUIRE_TIMEOUT", "2")],
        &["serve"],
    );
    assert!(error.contains("database_url"), "{error}");
    assert!(error.contains("database_acquire_timeout"), "{error}");
    assert!(!error.contains("hunter2"), "password in the error: {error}");
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// `$n` placeholders as the connection's database writes them (SQLite: `?`).
fn placeholders(db: &sea_orm::DatabaseConnection, sql: &str) -> String {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => sql.to_owned(),
        _ => (1..=9)
            .rev()
            .fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?")),
    }
}

async fn table_exists(db: &sea_orm::DatabaseConnection, table: &str) -> bool {
    db.execute_unprepared(&format!("SELECT 1 FROM {table} LIMIT 1"))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schema_with_data_is_migrated_whole_or_not_at_all() {
    let cli = Cli::unmigrated().await;
    // The schema as an older regauth left it: the first three migrations, and data.
    let db = sea_orm::Database::connect(&cli.database_url).await.unwrap();
    migration::Migrator::up(&db, Some(3)).await.unwrap();
    let store = SeaStore::new(db.clone());
    let now = Utc::now();
    // Namespaces as that schema has them (written by hand: today's store writes columns that
    // later migrations add, such as `visibility`).
    for (id, kind, parent, path, full_path) in [
        (1, "group", "NULL", "acme", "acme"),
        (2, "project", "1", "web", "acme/web"),
    ] {
        db.execute_unprepared(&format!(
            "INSERT INTO namespaces (id, kind, parent_id, path, full_path, name, created_at) \
             VALUES ({id}, '{kind}', {parent}, '{path}', '{full_path}', '{path}', '2026-11-01T00:00:00Z')"
        ))
        .await
        .unwrap();
    }
    // Rows written with SQL of that schema: today's store writes columns it did not have.
    let mut tokens = Vec::new();
    for (name, revoked) in [("kept", false), ("revoked", true)] {
        let secret = TokenSecret::generate("gldt-").unwrap();
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            placeholders(
                &db,
                "INSERT INTO deploy_tokens (namespace_id, name, token_digest, read_registry, \
                 revoked, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ),
            [
                2i64.into(),
                name.into(),
                secret.digest().as_hex().to_owned().into(),
                true.into(),
                revoked.into(),
                now.into(),
                "operator".into(),
            ],
        ))
        .await
        .unwrap();
        tokens.push((name, secret));
    }
    for action in [
        "deploy_token.create",
        "deploy_token.create",
        "deploy_token.revoke",
    ] {
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            placeholders(
                &db,
                "INSERT INTO audit_events (created_at, actor_kind, actor, action, details) \
                 VALUES ($1, $2, $3, $4, $5)",
            ),
            [
                now.into(),
                "operator".into(),
                "operator".into(),
                action.into(),
                "{}".into(),
            ],
        ))
        .await
        .unwrap();
    }
    let ids: Vec<(String, i64)> = {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT name, id FROM deploy_tokens ORDER BY id",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|row| {
                (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                )
            })
            .collect()
    };

    // Migration 4 creates a table, then an index: an index of that name already exists, so
    // it fails half-way. Nothing of it may remain.
    db.execute_unprepared("CREATE TABLE decoy (x INTEGER)")
        .await
        .unwrap();
    db.execute_unprepared("CREATE INDEX idx_expiry_notifications_token_window_user ON decoy (x)")
        .await
        .unwrap();
    let error = fails(cli.dir.path(), &cli.database_url, &[], &["migrate"]);
    assert!(error.contains("database_url"), "{error}");
    assert!(
        !table_exists(&db, "expiry_notifications").await,
        "half a migration was left behind"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM seaql_migrations").await, 3);

    // The obstacle gone, the new binary migrates and serves the old data.
    db.execute_unprepared("DROP TABLE decoy").await.unwrap();
    let server = ServerProcess::start(
        cli.dir.path(),
        &[("REGAUTH_DATABASE_URL", &cli.database_url)],
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM seaql_migrations").await,
        migration::Migrator::migrations().len() as i64
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM deploy_tokens").await, 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 3);
    let client = reqwest::Client::new();
    for ((name, secret), (row_name, id), expected) in
        [(&tokens[0], &ids[0], 200), (&tokens[1], &ids[1], 401)]
    {
        assert_eq!(name, row_name);
        let status = client
            .get(format!("{}/jwt/auth", server.address))
            .basic_auth(format!("gitlab+deploy-token-{id}"), Some(secret.expose()))
            .query(&[
                ("service", "container_registry"),
                ("scope", "repository:acme/web:pull"),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "{name}");
    }
    let found = store.find_deploy_token(ids[0].1).await.unwrap();
    assert_eq!(found.unwrap().name, "kept");
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_untouched() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]);
    let db = sea_orm::Database::connect(&cli.database_url).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000000_future', 0)",
    )
    .await
    .unwrap();
    let error = fails(cli.dir.path(), &cli.database_url, &[], &["serve"]);
    assert!(
        error.contains("newer than this regauth") && error.contains("m20991231_000000_future"),
        "{error}"
    );
    assert!(error.contains("database_url"), "{error}");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM seaql_migrations").await,
        migration::Migrator::migrations().len() as i64 + 1
    );
}
