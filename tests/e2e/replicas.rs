//! Two `regauth serve` processes on one PostgreSQL behind one address (Debian's nginx,
//! round-robin, `proxy_next_upstream` to retry on the other replica), the real registry
//! pointing its realm at that address, and skopeo as the client.
//!
//! The database is a fresh one on the server of `REGAUTH_TEST_POSTGRES_URL` (which
//! `scripts/test.sh` provides), in both passes of the suite: replicas share PostgreSQL.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::helpers::fresh_postgres_url;
use crate::support::process::{require_binary, Daemon};
use crate::support::{
    blocking, free_loopback_port, run_command, write_oci_image, Registry, RegistryOptions, Skopeo,
    COMMAND_TIMEOUT,
};

const REGAUTH: &str = env!("CARGO_BIN_EXE_regauth");

/// The environment every replica and CLI call shares: one database, one keys directory.
struct Cluster {
    dir: tempfile::TempDir,
    database_url: String,
}

impl Cluster {
    fn env(&self, cmd: &mut Command) {
        cmd.env("REGAUTH_DATABASE_URL", &self.database_url)
            .env("REGAUTH_KEYS_DIR", self.dir.path().join("keys"))
            .env(
                "REGAUTH_CI_SECRET_KEY_FILE",
                self.dir.path().join("ci-secret.aes256"),
            )
            .env_remove("RUST_LOG");
    }

    /// `regauth ARGS` (the CLI, straight on the database); panics unless it succeeds.
    fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(REGAUTH);
        cmd.args(args);
        self.env(&mut cmd);
        let outcome = run_command(cmd, None, &[], COMMAND_TIMEOUT);
        assert!(outcome.success, "regauth CLI failed\n{outcome}");
        outcome.stdout
    }

    /// Starts one replica on a free port and waits until it answers `/-/health`.
    fn replica(&self, name: &'static str, public_url: &str) -> Replica {
        let port = free_loopback_port();
        let mut cmd = Command::new(REGAUTH);
        cmd.arg("serve")
            .env("REGAUTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("REGAUTH_PUBLIC_URL", public_url);
        self.env(&mut cmd);
        let log = self.dir.path().join(format!("{name}.log"));
        let mut daemon = Daemon::spawn(name, cmd, log, Duration::from_secs(10));
        let address = format!("http://127.0.0.1:{port}");
        let health = format!("{address}/-/health");
        daemon.wait_until(Duration::from_secs(60), "GET /-/health answers", || {
            http_status(&health, None) == Some(200)
        });
        Replica {
            daemon,
            address,
            port,
        }
    }
}

struct Replica {
    daemon: Daemon,
    address: String,
    port: u16,
}

/// Debian's nginx, in the foreground, as a round-robin proxy over `upstreams`.
struct Nginx {
    _daemon: Daemon,
    address: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(port: u16, upstreams: &[u16]) -> Nginx {
        require_binary("nginx", "nginx");
        let dir = tempfile::Builder::new()
            .prefix("regauth-nginx-")
            .tempdir()
            .unwrap();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        let root = dir.path().display();
        // The same proxy block docs/deployment.md shows: retry another replica when one refuses the
        // connection, resets it or answers 502/503/504.
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {root}/access.log;\n\
             client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
             fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
             upstream regauth {{\n{servers}    keepalive 16;\n  }}\n\
             server {{\n    listen 127.0.0.1:{port};\n\
             location / {{\n      proxy_pass http://regauth;\n      proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_set_header X-Forwarded-Proto $scheme;\n\
             proxy_connect_timeout 2s;\n\
             proxy_next_upstream error timeout http_502 http_503 http_504;\n\
             proxy_next_upstream_tries 3;\n    }}\n  }}\n}}\n"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-c").arg(&config_path).arg("-p").arg(dir.path());
        let mut daemon = Daemon::spawn(
            "nginx",
            cmd,
            dir.path().join("nginx.out"),
            Duration::from_secs(5),
        );
        let address = format!("http://127.0.0.1:{port}");
        let health = format!("{address}/-/health");
        daemon.wait_until(Duration::from_secs(20), "GET /-/health via nginx", || {
            http_status(&health, None) == Some(200)
        });
        Nginx {
            _daemon: daemon,
            address,
            _dir: dir,
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }
}

/// Status of a GET (with optional Basic credentials) by a blocking client; `None` when no
/// HTTP answer came.
fn http_status(url: &str, basic: Option<(&str, &str)>) -> Option<u16> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
    ]);
    let mut secrets = Vec::new();
    let header;
    if let Some((user, password)) = basic {
        header = format!(
            "Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        cmd.arg("-H").arg(&header);
        secrets.push(header.as_str());
    }
    cmd.arg(url);
    let outcome = run_command(cmd, None, &secrets, Duration::from_secs(10));
    outcome.stdout.trim().parse().ok().filter(|s| *s != 0)
}

fn token_url(base: &str, repo: &str, action: &str) -> String {
    format!(
        "{base}/jwt/auth?service=container_registry&scope=repository:{repo}:{action}&client_id=test"
    )
}

struct Setup {
    // Field order is drop order: the processes stop before their directory goes.
    a: Replica,
    b: Replica,
    nginx: Nginx,
    registry: Registry,
    pat: String,
    _cluster: Cluster,
}

impl Setup {
    /// Replica A first (it migrates and writes the signing key), then B on the same
    /// database and keys, nginx over both, a registry whose realm is nginx.
    async fn start() -> Option<Setup> {
        require_binary("curl", "curl");
        let dir = tempfile::tempdir().unwrap();
        let Some(database_url) = fresh_postgres_url(dir.path()).await else {
            eprintln!(
                "SKIPPED: two replicas share PostgreSQL; set REGAUTH_TEST_POSTGRES_URL \
                 (scripts/test.sh does)"
            );
            return None;
        };
        let cluster = Cluster { dir, database_url };
        // Both replicas announce the shared address as their public URL.
        let nginx_port = free_loopback_port();
        let public_url = format!("http://127.0.0.1:{nginx_port}");
        let a = blocking(|| cluster.replica("regauth-a", &public_url));
        let b = blocking(|| cluster.replica("regauth-b", &public_url));
        let nginx = blocking(|| Nginx::start(nginx_port, &[a.port, b.port]));
        let registry = Registry::start(RegistryOptions {
            realm: format!("{}/jwt/auth", nginx.address),
            service: "container_registry".into(),
            issuer: "regauth".into(),
            root_cert_bundle: cluster.dir.path().join("keys/bundle.crt"),
            ..RegistryOptions::default()
        });
        let pat = blocking(|| {
            cluster.cli(&["group", "create", "acme"]);
            cluster.cli(&["project", "create", "acme/web"]);
            cluster.cli(&[
                "user",
                "create",
                "root",
                "--email",
                "root@example.test",
                "--admin",
            ]);
            let out = cluster.cli(&[
                "user", "token", "create", "root", "--name", "ops", "--scopes", "api", "--json",
            ]);
            let value: Value = serde_json::from_str(out.trim()).expect("token JSON");
            value["token"].as_str().expect("token field").to_string()
        });
        Some(Setup {
            _cluster: cluster,
            a,
            b,
            nginx,
            registry,
            pat,
        })
    }

    fn logs(&self) -> String {
        format!(
            "--- regauth-a ---\n{}\n--- regauth-b ---\n{}\n--- nginx ---\n{}\n--- registry ---\n{}",
            self.a.daemon.log_tail(30),
            self.b.daemon.log_tail(30),
            self.nginx.error_log(),
            self.registry.log()
        )
    }

    /// Creates a read+write deploy token for acme/web through `replica`'s API.
    async fn create_token(&self, replica: &Replica) -> (i64, String, String) {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/api/v4/projects/acme%2Fweb/deploy_tokens",
                replica.address
            ))
            .header("PRIVATE-TOKEN", &self.pat)
            .json(&serde_json::json!({
                "name": "ci",
                "scopes": ["read_registry", "write_registry"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "create through {}", replica.address);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_i64().unwrap(),
            body["username"].as_str().unwrap().to_string(),
            body["token"].as_str().unwrap().to_string(),
        )
    }

    async fn revoke(&self, replica: &Replica, id: i64) {
        let response = reqwest::Client::new()
            .delete(format!(
                "{}/api/v4/projects/acme%2Fweb/deploy_tokens/{id}",
                replica.address
            ))
            .header("PRIVATE-TOKEN", &self.pat)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "revoke through {}", replica.address);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (REGAUTH_TEST_POSTGRES_URL), nginx, docker-registry, skopeo and curl: run by scripts/test.sh"]
async fn a_token_created_on_one_replica_works_on_the_other_and_a_revocation_reaches_it_within_a_second(
) {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let (id, username, secret) = setup.create_token(&setup.a).await;

    // At once on the other replica, and through the shared address with skopeo.
    let on_b = token_url(&setup.b.address, "acme/web", "pull,push");
    assert_eq!(
        blocking(|| http_status(&on_b, Some((&username, &secret)))),
        Some(200),
        "a token created on A is accepted by B at once\n{}",
        setup.logs()
    );
    let images = tempfile::tempdir().unwrap();
    let image = write_oci_image(images.path(), "regauth replicas", "v1");
    let skopeo = Skopeo::new();
    let host = setup.registry.host();
    let login = blocking(|| skopeo.login(&host, &username, &secret));
    assert!(login.success, "login via nginx\n{login}\n{}", setup.logs());
    let pushed = blocking(|| skopeo.push(&image, &host, "acme/web/app", "v1"));
    assert!(pushed.success, "push via nginx\n{pushed}\n{}", setup.logs());
    let pull_dir = tempfile::tempdir().unwrap();
    let pulled = blocking(|| skopeo.pull(&host, "acme/web/app", "v1", pull_dir.path()));
    assert!(pulled.success, "pull via nginx\n{pulled}\n{}", setup.logs());

    // Revoked through B: A refuses it within one second (today at once: no cache).
    setup.revoke(&setup.b, id).await;
    let revoked_at = Instant::now();
    let on_a = token_url(&setup.a.address, "acme/web", "pull");
    let refused_after = loop {
        let status = blocking(|| http_status(&on_a, Some((&username, &secret))));
        if status == Some(401) {
            break revoked_at.elapsed();
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "replica A still answers {status:?} for a token revoked on B 1 s ago\n{}",
            setup.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("revocation on B refused by A after {refused_after:?}");
    let pulled = blocking(|| skopeo.pull(&host, "acme/web/app", "v1", pull_dir.path()));
    assert!(
        !pulled.success,
        "a pull with the revoked token must fail\n{pulled}\n{}",
        setup.logs()
    );
}

/// Token requests through nginx while replica B stops: a client that retries a failed
/// request (up to 3 attempts, as docker and skopeo do on connection errors) loses none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (REGAUTH_TEST_POSTGRES_URL), nginx, docker-registry, skopeo and curl: run by scripts/test.sh"]
async fn stopping_one_replica_mid_load_loses_no_request_a_client_retries() {
    let Some(mut setup) = Setup::start().await else {
        return;
    };
    let (_, username, secret) = setup.create_token(&setup.a).await;
    let url = token_url(&setup.nginx.address, "acme/web", "pull,push");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    const WORKERS: usize = 4;
    const REQUESTS: usize = 150;
    let done = Arc::new(AtomicUsize::new(0));
    let first_try_failures = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (client, url, username, secret) = (
            client.clone(),
            url.clone(),
            username.clone(),
            secret.clone(),
        );
        let (done, first_try_failures) = (done.clone(), first_try_failures.clone());
        workers.push(tokio::spawn(async move {
            let mut lost = Vec::new();
            for _ in 0..REQUESTS {
                let mut last = String::new();
                let mut ok = false;
                for attempt in 0..3 {
                    let response = client
                        .get(&url)
                        .basic_auth(&username, Some(&secret))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 200 => {
                            ok = true;
                            break;
                        }
                        Ok(r) => last = format!("HTTP {}", r.status()),
                        Err(e) => last = format!("{e}"),
                    }
                    if attempt == 0 {
                        first_try_failures.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if !ok {
                    lost.push(last);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            lost
        }));
    }
    // Mid-load: stop B (SIGTERM, then SIGKILL after the grace period).
    while done.load(Ordering::Relaxed) < WORKERS * REQUESTS / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped_at = done.load(Ordering::Relaxed);
    blocking(|| setup.b.daemon.stop());
    let mut lost = Vec::new();
    for worker in workers {
        lost.extend(worker.await.unwrap());
    }
    eprintln!(
        "{} token requests through nginx, replica B stopped after {stopped_at}; \
         {} failed on the first try, {} lost after retries",
        WORKERS * REQUESTS,
        first_try_failures.load(Ordering::Relaxed),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "requests lost although retried: {lost:?}\n{}",
        setup.logs()
    );

    // The survivor serves the registry too: a push and a pull with skopeo via nginx.
    let images = tempfile::tempdir().unwrap();
    let image = write_oci_image(images.path(), "regauth replicas", "v2");
    let skopeo = Skopeo::new();
    let host = setup.registry.host();
    let login = blocking(|| skopeo.login(&host, &username, &secret));
    assert!(
        login.success,
        "login after B stopped\n{login}\n{}",
        setup.logs()
    );
    let pushed = blocking(|| skopeo.push(&image, &host, "acme/web", "v2"));
    assert!(
        pushed.success,
        "push after B stopped\n{pushed}\n{}",
        setup.logs()
    );
}
