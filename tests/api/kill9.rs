//! kill -9 under load, many times: after every restart each create and revoke that was
//! acknowledged to its caller is there, no token exists without its audit record, and a
//! revoked token never authenticates again. Runs on the database of the pass (SQLite or
//! PostgreSQL).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::Cli;
use crate::server::ServerProcess;

/// Kills per database: the SQLite and PostgreSQL passes make 50 together.
const KILLS: usize = 25;

#[derive(Clone, Debug)]
struct Token {
    id: i64,
    username: String,
    secret: String,
}

#[derive(Default)]
struct Ledger {
    /// Creations answered with 201.
    created: Vec<Token>,
    /// Deletions (revoke + delete) answered with 204.
    revoked: HashSet<i64>,
    /// Token requests answered 200 for a token whose revocation had been acknowledged.
    violations: Vec<String>,
}

/// A small deterministic generator: no extra crate for a few random numbers.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

async fn pull(client: &reqwest::Client, address: &str, token: &Token) -> Option<u16> {
    client
        .get(format!("{address}/jwt/auth"))
        .basic_auth(&token.username, Some(&token.secret))
        .query(&[
            ("service", "container_registry"),
            ("scope", "repository:acme/web:pull"),
        ])
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

async fn scalar(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// What must hold after every restart.
async fn check(
    db: &sea_orm::DatabaseConnection,
    client: &reqwest::Client,
    address: &str,
    ledger: &Ledger,
    round: usize,
) {
    let missing_audit = scalar(
        db,
        "SELECT COUNT(*) FROM deploy_tokens t WHERE NOT EXISTS (SELECT 1 FROM audit_events a \
         WHERE a.deploy_token_id = t.id AND a.action = 'deploy_token.create')",
    )
    .await;
    assert_eq!(
        missing_audit, 0,
        "round {round}: tokens without their audit record"
    );
    let unrecorded_revocations = scalar(
        db,
        "SELECT COUNT(*) FROM deploy_tokens t WHERE t.revoked AND NOT EXISTS (SELECT 1 FROM \
         audit_events a WHERE a.deploy_token_id = t.id AND a.action IN \
         ('deploy_token.revoke', 'deploy_token.delete'))",
    )
    .await;
    assert_eq!(
        unrecorded_revocations, 0,
        "round {round}: revocations without their audit record"
    );
    let ids: HashSet<i64> = {
        use sea_orm::EntityTrait;
        entity::deploy_token::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| {
                !ledger.revoked.contains(&row.id) || (row.revoked && row.deleted_at.is_some())
            })
            .map(|row| row.id)
            .collect()
    };
    for token in &ledger.created {
        assert!(
            ids.contains(&token.id),
            "round {round}: acknowledged token {} is lost or its acknowledged deletion is",
            token.id
        );
    }
    for token in ledger
        .created
        .iter()
        .filter(|t| ledger.revoked.contains(&t.id))
    {
        assert_eq!(
            pull(client, address, token).await,
            Some(401),
            "round {round}: revoked token {} authenticates",
            token.id
        );
    }
    assert!(ledger.violations.is_empty(), "{:?}", ledger.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_under_load_loses_nothing_acknowledged_and_leaves_nothing_half_written() {
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
    let pat: Value = serde_json::from_str(&cli.ok(&[
        "user", "token", "create", "root", "--name", "load", "--json",
    ]))
    .unwrap();
    let pat = pat["token"].as_str().unwrap().to_owned();
    let db = sea_orm::Database::connect(&cli.database_url).await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut random = Lcg(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64);

    for round in 0..=KILLS {
        let mut server = ServerProcess::start(
            cli.dir.path(),
            &[
                ("REGAUTH_DATABASE_URL", &cli.database_url),
                // The load uses revoked tokens on purpose: their 401s must not lock the
                // address out (brute-force protection is tested in brute_force.rs).
                ("REGAUTH_LOGIN_MAX_FAILURES_PER_ADDRESS", "0"),
                ("REGAUTH_LOGIN_MAX_FAILURES_PER_USERNAME", "0"),
            ],
        );
        let address = server.address.clone();
        {
            let snapshot = {
                let ledger = ledger.lock().unwrap();
                Ledger {
                    created: ledger.created.clone(),
                    revoked: ledger.revoked.clone(),
                    violations: ledger.violations.clone(),
                }
            };
            check(&db, &client, &address, &snapshot, round).await;
        }
        if round == KILLS {
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for worker in 0..4u64 {
            let (client, address, pat, ledger, stop) = (
                client.clone(),
                address.clone(),
                pat.clone(),
                Arc::clone(&ledger),
                Arc::clone(&stop),
            );
            let mut random = Lcg(random.below(u64::MAX) ^ worker);
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match worker {
                        0 | 1 => {
                            let response = client
                                .post(format!(
                                    "{address}/api/v4/projects/acme%2Fweb/deploy_tokens"
                                ))
                                .header("PRIVATE-TOKEN", &pat)
                                .json(&json!({"name": "load", "scopes": ["read_registry"]}))
                                .send()
                                .await;
                            let Ok(response) = response else { continue };
                            if response.status() != 201 {
                                continue;
                            }
                            let Ok(body) = response.json::<Value>().await else {
                                continue;
                            };
                            ledger.lock().unwrap().created.push(Token {
                                id: body["id"].as_i64().unwrap(),
                                username: body["username"].as_str().unwrap().to_owned(),
                                secret: body["token"].as_str().unwrap().to_owned(),
                            });
                        }
                        2 => {
                            let target = {
                                let ledger = ledger.lock().unwrap();
                                let live: Vec<i64> = ledger
                                    .created
                                    .iter()
                                    .map(|t| t.id)
                                    .filter(|id| !ledger.revoked.contains(id))
                                    .collect();
                                (!live.is_empty())
                                    .then(|| live[random.below(live.len() as u64) as usize])
                            };
                            let Some(id) = target else {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                continue;
                            };
                            let response = client
                                .delete(format!(
                                    "{address}/api/v4/projects/acme%2Fweb/deploy_tokens/{id}"
                                ))
                                .header("PRIVATE-TOKEN", &pat)
                                .send()
                                .await;
                            if response.is_ok_and(|r| r.status() == 204) {
                                ledger.lock().unwrap().revoked.insert(id);
                            }
                        }
                        _ => {
                            let pick = {
                                let ledger = ledger.lock().unwrap();
                                (!ledger.created.is_empty()).then(|| {
                                    let token = ledger.created
                                        [random.below(ledger.created.len() as u64) as usize]
                                        .clone();
                                    let revoked = ledger.revoked.contains(&token.id);
                                    (token, revoked)
                                })
                            };
                            let Some((token, revoked_before)) = pick else {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                continue;
                            };
                            if pull(&client, &address, &token).await == Some(200) && revoked_before
                            {
                                ledger
                                    .lock()
                                    .unwrap()
                                    .violations
                                    .push(format!("revoked token {} got a token", token.id));
                            }
                        }
                    }
                }
            }));
        }
        // A random moment once the load runs: after this round's first acknowledged creates
        // and revocation (however slow a loaded machine is; a PostgreSQL revocation waits for
        // other replicas' caches, ~0.8 s), then 0 to 400 ms more.
        let (created_before, revoked_before) = {
            let ledger = ledger.lock().unwrap();
            (ledger.created.len(), ledger.revoked.len())
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline && {
            let ledger = ledger.lock().unwrap();
            ledger.created.len() < created_before + 2 || ledger.revoked.len() <= revoked_before
        } {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(random.below(400))).await;
        let pid = server.pid().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        server.wait(Duration::from_secs(10));
        stop.store(true, Ordering::SeqCst);
        for worker in workers {
            worker.await.unwrap();
        }
    }
    let ledger = ledger.lock().unwrap();
    println!(
        "{KILLS} kills: {} creates and {} revocations acknowledged, all there",
        ledger.created.len(),
        ledger.revoked.len()
    );
    assert!(
        ledger.created.len() >= 2 * KILLS && !ledger.revoked.is_empty(),
        "too little load to prove anything"
    );
}
