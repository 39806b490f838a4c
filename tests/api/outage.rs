//! Database outages under load: PostgreSQL stopped and started again while token requests
//! and API calls run; SQLite on a file system that turns read-only or fills up.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regauth::domain::NamespaceKind::Project;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};
use crate::own_postgres::OwnPostgres;

const UP: u8 = 0;
const DOWN: u8 = 1;
const BETWEEN: u8 = 2;

#[derive(Debug)]
struct Outcome {
    started: u8,
    ended: u8,
    what: &'static str,
    status: u16,
    elapsed: Duration,
    body: Value,
    retry_after: Option<String>,
}

async fn readiness(app: &TestApp) -> (u16, Duration) {
    let started = Instant::now();
    let response = app
        .client
        .get(format!("{}/-/readiness", app.address))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL's initdb and pg_ctl (as root: the postgres user): run by scripts/test.sh"]
async fn a_postgres_outage_gives_fast_503s_no_stale_tokens_and_recovers_without_restart() {
    if std::env::var("REGAUTH_TEST_DATABASE").as_deref() == Ok("postgres") {
        // This test brings its own PostgreSQL; it runs once, in the first pass.
        return;
    }
    let postgres = OwnPostgres::start();
    let url = postgres.url();
    let app = spawn_app_with(|settings| {
        settings.database.url = url;
        settings.database.acquire_timeout = Duration::from_secs(1);
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let admin = Arc::new(app.create_user("root", true, "api").await);
    let live = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let revoked = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    app.revoke(revoked.token.id).await;
    let app = Arc::new(app);

    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..6 {
        let (app, phase, stop, admin) = (
            Arc::clone(&app),
            Arc::clone(&phase),
            Arc::clone(&stop),
            Arc::clone(&admin),
        );
        let (username, secret) = if worker % 3 == 2 {
            (revoked.token.username.clone(), revoked.secret.clone())
        } else {
            (live.token.username.clone(), live.secret.clone())
        };
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = phase.load(Ordering::SeqCst);
                let clock = Instant::now();
                let (what, response) = if worker % 2 == 0 {
                    let what = if worker % 3 == 2 { "revoked" } else { "token" };
                    let response = app
                        .get_token(
                            Some((&username, &secret)),
                            &[
                                ("service", "container_registry"),
                                ("scope", "repository:acme/web:pull"),
                            ],
                        )
                        .await;
                    (what, response)
                } else {
                    let response = app
                        .api(Method::GET, "/projects/acme%2Fweb/deploy_tokens", &admin)
                        .send()
                        .await
                        .unwrap();
                    ("api", response)
                };
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|value| value.to_str().unwrap().to_owned());
                let body: Value = response.json().await.unwrap_or(Value::Null);
                outcomes.push(Outcome {
                    started,
                    ended: phase.load(Ordering::SeqCst),
                    what,
                    status,
                    elapsed: clock.elapsed(),
                    body,
                    retry_after,
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outcomes
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(BETWEEN, Ordering::SeqCst);
    let postgres = tokio::task::spawn_blocking(move || {
        let mut postgres = postgres;
        postgres.stop();
        postgres
    })
    .await
    .unwrap();
    // The token cache trusts its last reading of the change counter for 750 ms (a revocation
    // is seen within 1 s, outage or not): until then a valid token may still be served from
    // memory. Valid secrets are no longer delayed by the failures of the revoked token sent
    // from the same address, which used to push every lookup past that window.
    tokio::time::sleep(Duration::from_millis(800)).await;
    phase.store(DOWN, Ordering::SeqCst);

    let (status, elapsed) = readiness(&app).await;
    assert_eq!(status, 503, "readiness during the outage");
    assert!(
        elapsed < Duration::from_secs(1),
        "readiness took {elapsed:?} to say 503"
    );
    // Long enough for several whole requests even when each waits out the pool's bound.
    tokio::time::sleep(Duration::from_secs(7)).await;

    phase.store(BETWEEN, Ordering::SeqCst);
    let mut postgres = tokio::task::spawn_blocking(move || {
        let mut postgres = postgres;
        postgres.resume();
        postgres
    })
    .await
    .unwrap();
    phase.store(UP, Ordering::SeqCst);
    // Recovery without a restart: the pool reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if readiness(&app).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 15 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await.unwrap());
    }

    let down: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started == DOWN && o.ended == DOWN)
        .collect();
    assert!(
        down.iter().filter(|o| o.what == "token").count() >= 3
            && down.iter().filter(|o| o.what == "api").count() >= 3,
        "too little load during the outage: {down:?}"
    );
    for outcome in &down {
        assert_eq!(outcome.status, 503, "during the outage: {outcome:?}");
        assert_eq!(outcome.retry_after.as_deref(), Some("5"), "{outcome:?}");
        // Bounded by the 1 s acquire timeout, not piled up behind each other.
        assert!(
            outcome.elapsed < Duration::from_secs(4),
            "a request waited {:?} during the outage",
            outcome.elapsed
        );
        if outcome.what == "api" {
            assert_eq!(
                outcome.body["message"], "503 Service Unavailable",
                "{outcome:?}"
            );
        } else {
            assert_eq!(
                outcome.body["errors"][0]["code"], "UNAVAILABLE",
                "{outcome:?}"
            );
        }
    }
    // Never a token from stale rights, at any time.
    assert!(
        outcomes
            .iter()
            .filter(|o| o.what == "revoked")
            .all(|o| o.status != 200),
        "a revoked token got a token"
    );
    let after: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started == UP && o.ended == UP)
        .collect();
    assert!(after.iter().any(|o| o.what == "token" && o.status == 200));
    assert!(after.iter().any(|o| o.what == "api" && o.status == 200));
    assert!(after.iter().any(|o| o.what == "revoked" && o.status == 401));

    // Writes work again too.
    let response = app
        .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
        .json(&json!({"name": "after", "scopes": ["read_registry"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    postgres.stop();
}

/// A tmpfs of its own for the SQLite file, which the test can fill. (Remounting it read-only
/// under a live database is refused by the kernel while files are open for writing.)
struct SmallFileSystem {
    dir: tempfile::TempDir,
}

impl SmallFileSystem {
    fn mount() -> Option<SmallFileSystem> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "regauth-test"])
            .arg(dir.path())
            .output()
            .ok()?;
        mounted.status.success().then_some(SmallFileSystem { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn create_via_api(app: &TestApp, admin: &str) -> reqwest::Response {
    app.api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", admin)
        .json(&json!({"name": "ci", "scopes": ["read_registry"]}))
        .send()
        .await
        .unwrap()
}

async fn pull_token(app: &TestApp, token: &crate::helpers::CreatedToken) -> u16 {
    app.get_token(
        Some((&token.token.username, &token.secret)),
        &[
            ("service", "container_registry"),
            ("scope", "repository:acme/web:pull"),
        ],
    )
    .await
    .status()
    .as_u16()
}

async fn assert_writes_refused(app: &TestApp, admin: &str, token: &crate::helpers::CreatedToken) {
    let response = create_via_api(app, admin).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "503 Service Unavailable");
    assert!(
        body["error"].as_str().unwrap().contains("refuses writes"),
        "{body}"
    );
    // Token requests need no write: they keep working.
    for _ in 0..5 {
        assert_eq!(pull_token(app, token).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: run by scripts/test.sh"]
async fn sqlite_on_a_full_disk_refuses_writes_clearly_and_keeps_issuing_tokens() {
    if std::env::var("REGAUTH_TEST_DATABASE").as_deref() == Ok("postgres") {
        return;
    }
    let Some(disk) = SmallFileSystem::mount() else {
        // Mounting needs root (CI runs as root); nothing else can make a live file read-only.
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let url = format!(
        "sqlite://{}?mode=rwc",
        disk.path().join("regauth.db").display()
    );
    let app = spawn_app_with(|settings| settings.database.url = url).await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    assert_eq!(pull_token(&app, &token).await, 200);

    // Full disk: fill the tmpfs to the last byte.
    let filler = disk.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    // The database's own free pages may still take a small write or two: use them up.
    for _ in 0..50 {
        if create_via_api(&app, &admin).await.status() == 503 {
            break;
        }
    }
    assert_writes_refused(&app, &admin, &token).await;
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(create_via_api(&app, &admin).await.status(), 201);
}
