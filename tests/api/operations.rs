//! Running it in production: metrics, health and readiness, logs without secrets, graceful
//! shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use regauth::domain::NamespaceKind::{Group, Project};
use serde_json::Value;

use crate::cli::Cli;
use crate::helpers::{spawn_app, test_settings};
use crate::server::ServerProcess;

/// Parses the (OpenMetrics) text exposition strictly enough to catch format mistakes: every sample line is
/// `name{labels} value` with a numeric value, and every metric has a TYPE line first.
fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            typed.insert(parts.next().unwrap().to_owned());
            assert!(
                matches!(
                    parts.next(),
                    Some("counter" | "histogram" | "gauge" | "info")
                ),
                "{line}"
            );
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (
                name,
                labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}")),
            ),
            None => (series, ""),
        };
        // OpenMetrics names a counter family without its `_total` suffix (an info family
        // without `_info`).
        let family = ["_bucket", "_sum", "_count", "_total", "_info"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| typed.contains(*base))
            })
            .unwrap_or(name);
        assert!(typed.contains(family), "no TYPE before {line:?}");
        samples.push((name.to_owned(), labels.to_owned(), value));
    }
    samples
}

fn sample(samples: &[(String, String, f64)], name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("{name}{{{labels}}} missing"))
}

#[tokio::test]
async fn metrics_count_tokens_per_scope_and_token_requests_by_outcome() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let rw = app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let ro = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let repo_only = app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    app.create_token(Group, "acme", &["read_virtual_registry"])
        .await;
    app.revoke(ro.token.id).await;
    let deleted = app
        .api(
            reqwest::Method::DELETE,
            &format!("/projects/acme%2Fweb/deploy_tokens/{}", repo_only.token.id),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let rw_auth = Some((rw.token.username.as_str(), rw.secret.as_str()));
    let pull_push = [
        ("service", "container_registry"),
        ("scope", "repository:acme/web:pull,push"),
    ];
    let pull_delete = [
        ("service", "container_registry"),
        ("scope", "repository:acme/web:pull,delete"),
    ];
    assert_eq!(app.get_token(rw_auth, &pull_push).await.status(), 200); // issued
    assert_eq!(app.get_token(rw_auth, &pull_delete).await.status(), 200); // partial
    assert_eq!(
        app.get_token(Some((&rw.token.username, "nope")), &pull_push)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_token(rw_auth, &[("service", "somewhere")])
            .await
            .status(),
        404
    ); // error
    let vr = app.create_token(Group, "acme", &["read_repository"]).await;
    let denied = app
        .get_token(
            Some((&vr.token.username, &vr.secret)),
            &[("service", "container_registry")],
        )
        .await;
    assert_eq!(denied.status(), 403);

    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text; version=1.0.0"));
    let samples = parse_metrics(&response.text().await.unwrap());

    let created = |scope: &str| {
        sample(
            &samples,
            "regauth_deploy_tokens_created_total",
            &format!("scope=\"{scope}\""),
        )
    };
    assert_eq!(created("read_registry"), 2.0);
    assert_eq!(created("write_registry"), 1.0);
    assert_eq!(created("read_repository"), 2.0);
    assert_eq!(created("read_virtual_registry"), 1.0);
    assert_eq!(created("write_package_registry"), 0.0);
    assert_eq!(
        sample(
            &samples,
            "regauth_deploy_tokens_revoked_total",
            "scope=\"read_registry\""
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            "regauth_deploy_tokens_deleted_total",
            "scope=\"read_repository\""
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            "regauth_deploy_tokens_deleted_total",
            "scope=\"read_registry\""
        ),
        0.0
    );

    let requests = |service: &str, outcome: &str| {
        sample(
            &samples,
            "regauth_registry_token_requests_total",
            &format!("service=\"{service}\",outcome=\"{outcome}\""),
        )
    };
    assert_eq!(requests("container_registry", "issued"), 1.0);
    assert_eq!(requests("container_registry", "partial"), 1.0);
    assert_eq!(requests("container_registry", "unauthorized"), 1.0);
    assert_eq!(requests("container_registry", "denied"), 1.0);
    assert_eq!(
        requests("unknown", "error"),
        1.0,
        "caller text never becomes a label"
    );
    let route = "method=\"GET\",route=\"/jwt/auth\"";
    assert_eq!(
        sample(
            &samples,
            "regauth_http_request_duration_seconds_count",
            route
        ),
        5.0
    );
    assert_eq!(
        sample(
            &samples,
            "regauth_http_request_duration_seconds_bucket",
            // prometheus-client writes `le` first.
            &format!("le=\"+Inf\",{route}")
        ),
        5.0
    );
    // Healthy traffic adds no database errors.
    let again = app.metrics_text().await;
    assert_eq!(
        sample(&parse_metrics(&again), "regauth_database_errors_total", ""),
        sample(&samples, "regauth_database_errors_total", "")
    );
}

#[tokio::test]
async fn invented_http_methods_do_not_become_metric_labels() {
    let app = spawn_app().await;
    let method = reqwest::Method::from_bytes(b"BREW").unwrap();
    app.client
        .request(method, format!("{}/-/health", app.address))
        .send()
        .await
        .unwrap();
    let text = app.metrics_text().await;
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn health_and_readiness_answer_ok_when_all_is_well() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/-/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .client
        .get(format!("{}/-/readiness", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["signing_key"], "ok");
}

#[tokio::test]
async fn readiness_is_503_naming_the_database_when_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path()).await;
    let application = regauth::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    let database = application.database();
    tokio::spawn(application.run_until_stopped());
    database.close().await.unwrap();

    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{address}/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    // Named, but without the database's error text: readiness answers anyone.
    assert_eq!(body["checks"]["database"], "failing", "{body}");
    assert_eq!(body["checks"]["signing_key"], "ok");
    let health = client
        .get(format!("{address}/-/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "alive, though not ready");
    let metrics = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors = sample(
        &parse_metrics(&metrics),
        "regauth_database_errors_total",
        "",
    );
    assert!(errors >= 1.0, "the failed queries are counted: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_never_a_secret() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let created: Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "ci",
        "--scopes",
        "read_registry,write_registry",
        "--json",
    ]))
    .unwrap();
    let (username, secret) = (
        created["username"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
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
    let pat = pat["token"].as_str().unwrap();

    let mut server = ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &cli.database_url),
            ("REGAUTH_LOG_FORMAT", "json"),
        ],
    );
    let client = reqwest::Client::new();
    let url = format!("{}/jwt/auth", server.address);
    // docker login (with a refresh token), a push scope, the refresh grant, a password grant, a
    // wrong secret, and the management API.
    let login: Value = client
        .get(&url)
        .basic_auth(username, Some(secret))
        .query(&[
            ("service", "container_registry"),
            ("offline_token", "true"),
            ("client_id", "docker"),
            ("account", username),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let jwt = login["token"].as_str().unwrap().to_owned();
    let refreshed = client
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", "container_registry"),
            ("scope", "repository:acme/web:pull,push"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let password = client
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", secret),
            ("service", "container_registry"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(password.status(), 200);
    let wrong = client
        .get(&url)
        .basic_auth(username, Some("gldt-wrong-secret"))
        .query(&[("service", "container_registry")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let api = client
        .get(format!(
            "{}/api/v4/projects/acme%2Fweb/deploy_tokens",
            server.address
        ))
        .header("PRIVATE-TOKEN", pat)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    server.terminate();
    assert!(server.wait(Duration::from_secs(30)).success());
    let log = server.stderr();
    for (what, secret_text) in [
        ("the deploy token secret", secret),
        ("the personal access token", pat),
        ("the refresh token", refresh.as_str()),
        ("the JWT", jwt.as_str()),
        ("a JWT header", "eyJ"),
        ("a Basic header", "Basic "),
        ("the wrong secret", "gldt-wrong-secret"),
    ] {
        assert!(
            !log.contains(secret_text),
            "{what} leaked into the log:\n{log}"
        );
    }
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "regauth::access")
        .collect();
    assert_eq!(access.len(), 5, "one line per request:\n{log}");
    let first = access[0];
    assert_eq!(first["route"], "/jwt/auth");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 200);
    assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(first["token_id"], created["id"]);
    assert_eq!(first["username"], username);
    assert_eq!(access[3]["status"], 401);
    assert_eq!(access[4]["route"], "/api/v4/{kind}/{id}/deploy_tokens");
    assert_eq!(access[4]["username"], "root");
    // The start-up banner and the registry config block are JSON events too, not plain text
    // on stdout that a collector reading the streams would choke on.
    let stdout = server.stdout();
    assert!(stdout.trim().is_empty(), "plain text on stdout:\n{stdout}");
    let listening = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("regauth listening on"))
        })
        .unwrap_or_else(|| panic!("no listening event:\n{log}"));
    assert_eq!(listening["address"], format!("127.0.0.1:{}", server.port));
    assert!(lines.iter().any(|l| l["registry_config"]
        .as_str()
        .is_some_and(|c| c.contains("rootcertbundle"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_closes_the_database() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let created: Value = serde_json::from_str(&cli.ok(&[
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
    let mut server = ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &cli.database_url),
            ("REGAUTH_SHUTDOWN_TIMEOUT", "20"),
        ],
    );
    let body = serde_urlencoded::to_string([
        ("grant_type", "password"),
        ("username", created["username"].as_str().unwrap()),
        ("password", created["token"].as_str().unwrap()),
        ("service", "container_registry"),
        ("scope", "repository:acme/web:pull"),
    ])
    .unwrap();
    let (head, tail) = body.split_at(body.len() / 2);
    // A request in flight: headers and half the body sent.
    let mut in_flight = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        in_flight,
        "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    in_flight.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    server.terminate();
    // New connections are refused once the stop began.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The in-flight request completes.
    in_flight.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    in_flight.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{response}\n{}",
        server.stderr()
    );
    assert!(response.contains("access_token"));

    assert!(
        server.wait(Duration::from_secs(30)).success(),
        "{}",
        server.stderr()
    );
    // SQLite only: a clean close leaves no write-ahead log behind. (PostgreSQL has nothing to
    // look at on disk; everything above ran there too.)
    if !cli.database_url.starts_with("sqlite:") {
        return;
    }
    let database = cli
        .database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let wal = std::path::PathBuf::from(format!("{database}-wal"));
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the database was not closed cleanly: {} remains",
        wal.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_secrets_and_forged_headers_never_reach_the_log_in_either_format() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let created: Value = serde_json::from_str(&cli.ok(&[
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
        created["username"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    );
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
    // Secrets as GitLab clients put them in query strings, on every route and method.
    let query = [
        ("private_token", pat.as_str()),
        ("access_token", "QUERY-ACCESS-TOKEN-SECRET"),
        ("password", secret.as_str()),
        ("service", "container_registry"),
    ];
    let routes = [
        (reqwest::Method::GET, "/jwt/auth"),
        (reqwest::Method::POST, "/jwt/auth"),
        (reqwest::Method::GET, "/.well-known/jwks.json"),
        (reqwest::Method::GET, "/-/health"),
        (reqwest::Method::GET, "/-/readiness"),
        (reqwest::Method::GET, "/metrics"),
        (reqwest::Method::GET, "/api/v4/user"),
        (reqwest::Method::GET, "/api/v4/deploy_tokens"),
        (reqwest::Method::GET, "/api/v4/projects/acme%2Fweb"),
        (
            reqwest::Method::GET,
            "/api/v4/projects/acme%2Fweb/deploy_tokens",
        ),
        (
            reqwest::Method::POST,
            "/api/v4/projects/acme%2Fweb/deploy_tokens",
        ),
        (
            reqwest::Method::GET,
            "/api/v4/projects/acme%2Fweb/deploy_tokens/1",
        ),
        (
            reqwest::Method::DELETE,
            "/api/v4/projects/acme%2Fweb/deploy_tokens/999",
        ),
        (reqwest::Method::GET, "/api/v4/no/such/route"),
        (reqwest::Method::GET, "/no-such-path"),
    ];
    let long_agent = format!("docker/27.0 {}", "A".repeat(10_000));
    for format in ["text", "json"] {
        let mut server = ServerProcess::start(
            cli.dir.path(),
            &[
                ("REGAUTH_DATABASE_URL", &cli.database_url),
                ("REGAUTH_LOG_FORMAT", format),
            ],
        );
        let client = reqwest::Client::new();
        for (method, path) in &routes {
            for authenticated in [false, true] {
                let mut request = client
                    .request(method.clone(), format!("{}{path}", server.address))
                    .query(&query)
                    .header("User-Agent", &long_agent)
                    .header("X-Forwarded-For", "6.6.6.6");
                if authenticated {
                    request = if path.starts_with("/api") {
                        request.header("PRIVATE-TOKEN", &pat)
                    } else {
                        request.basic_auth(&username, Some(&secret))
                    };
                }
                let response = request.send().await.unwrap();
                assert_ne!(response.status(), 500, "{method} {path}");
            }
        }
        server.terminate();
        assert!(server.wait(Duration::from_secs(30)).success());
        let log = server.stderr();
        for (what, text) in [
            ("the personal access token", pat.as_str()),
            ("the deploy token secret", secret.as_str()),
            ("an access_token parameter", "QUERY-ACCESS-TOKEN-SECRET"),
            ("a query parameter name", "private_token"),
            ("a query string", "&service="),
            ("a password parameter", "password="),
            ("a Basic header", "Basic "),
            ("a forged X-Forwarded-For", "6.6.6.6"),
            ("an unbounded User-Agent", &"A".repeat(300)),
            ("an ANSI colour code", "\u{1b}["),
        ] {
            assert!(!log.contains(text), "{format}: {what} in the log:\n{log}");
        }
        let access: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("regauth::access"))
            .collect();
        assert_eq!(access.len(), routes.len() * 2, "{format}:\n{log}");
        assert!(
            access
                .iter()
                .all(|line| line.contains("127.0.0.1") && line.contains("docker/27.0 AAA")),
            "{format}: the client address and the (cut) User-Agent are logged:\n{log}"
        );
        if format == "json" {
            for line in log.lines() {
                serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            }
        }
    }
}
