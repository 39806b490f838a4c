//! Hostile connections: stalled heads and bodies are cut off at their deadlines, bodies are
//! bounded per route and read only after what can be checked without them, the client address
//! is the TCP peer unless a trusted proxy forwards it, and `/metrics` can live on its own
//! listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use regauth::config::TrustedProxies;
use regauth::domain::NamespaceKind::Project;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::cli::Cli;
use crate::helpers::spawn_app_with;
use crate::server::ServerProcess;

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Everything the server sends until it closes the connection; panics if it is still open
/// after `limit` (far beyond any deadline under test).
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!(
                "still open after {limit:?} ({error}); received: {}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `text` and then nothing more.
fn stall(port: u16, text: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    stream.flush().unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_heads_and_bodies_are_cut_off_and_bodies_are_bounded_per_route() {
    let app = spawn_app_with(|settings| {
        settings.limits.request_head_timeout = Duration::from_secs(1);
        settings.limits.request_body_timeout = Duration::from_secs(2);
        settings.limits.keep_alive = Duration::from_secs(1);
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let pat = app.create_user("root", true, "api").await;
    let port = port_of(&app.address);
    let limit = Duration::from_secs(30);

    // Half a request head: closed (408) at the head deadline.
    let mut slow_head = stall(port, "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let answer = read_until_closed(&mut slow_head, limit);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // An idle keep-alive connection is closed after `keep_alive`.
    let mut idle = stall(port, "GET /-/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let answer = read_until_closed(&mut idle, limit);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A connection that sends nothing at all.
    let mut silent = stall(port, "");
    read_until_closed(&mut silent, limit);

    // The whole head, then a body that never completes: 408 at the body deadline, closed.
    let mut slow_body = stall(
        port,
        "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\ngrant_type=password&",
    );
    let answer = read_until_closed(&mut slow_body, limit);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2 s"), "{answer}");

    // A token form larger than the route needs: refused before it is read.
    let mut large = stall(
        port,
        "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 261120\r\n\r\n",
    );
    let answer = read_until_closed(&mut large, limit);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // The same, sent without Content-Length (chunked): cut at the limit.
    let chunk = format!("2000\r\n{}\r\n", "a".repeat(0x2000));
    let mut chunked = stall(
        port,
        &format!(
            "POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            chunk.repeat(4)
        ),
    );
    let answer = read_until_closed(&mut chunked, limit);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A chunked body to a route that reads none, then a stall: closed after the answer.
    let mut unread = stall(
        port,
        "GET /-/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
    );
    let answer = read_until_closed(&mut unread, limit);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The management API authenticates by header before it reads a body: without
    // credentials the answer is 401 at once, not a wait for the body.
    let mut unauthenticated = stall(
        port,
        "POST /api/v4/projects/acme%2Fweb/deploy_tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"name\":",
    );
    let answer = read_until_closed(&mut unauthenticated, limit);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // With credentials, an oversized body is 413 and a stalled one 408.
    let oversized = app
        .api(
            reqwest::Method::POST,
            "/projects/acme%2Fweb/deploy_tokens",
            &pat,
        )
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"name\":\"{}\",\"scopes\":[\"read_registry\"]}}",
            "x".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    assert_eq!(
        oversized.json::<serde_json::Value>().await.unwrap()["message"],
        "413 Request Entity Too Large"
    );
    let mut stalled_api = stall(
        port,
        &format!("POST /api/v4/projects/acme%2Fweb/deploy_tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nPRIVATE-TOKEN: {pat}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\":"),
    );
    let answer = read_until_closed(&mut stalled_api, limit);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Honest requests still work.
    let created = app
        .api(
            reqwest::Method::POST,
            "/projects/acme%2Fweb/deploy_tokens",
            &pat,
        )
        .header("Content-Type", "application/json")
        .body(r#"{"name":"ci","scopes":["read_registry"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let login = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", &token.token.username),
            ("password", &token.secret),
            ("service", "container_registry"),
        ])
        .await;
    assert_eq!(login.status(), 200);
}

/// The audit address of the one registry-token issue of `token_id`, once written.
async fn audited_address(app: &crate::helpers::TestApp, token_id: i64) -> String {
    for _ in 0..100 {
        let events = entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::DeployTokenId.eq(token_id))
            .filter(entity::audit_event::Column::ActorKind.ne("operator"))
            .all(&app.db)
            .await
            .unwrap();
        if let Some(address) = events.iter().find_map(|event| event.ip_address.clone()) {
            return address;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no audit record with an address for token {token_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    for (trusted, expected) in [
        (vec![], "127.0.0.1"),
        (vec!["127.0.0.0/8".to_owned()], "203.0.113.7"),
    ] {
        let app = spawn_app_with(|settings| {
            settings.server.trusted_proxies = TrustedProxies::parse(&trusted).unwrap();
        })
        .await;
        app.create_project_with_groups("acme/web").await;
        let token = app
            .create_token(Project, "acme/web", &["read_registry"])
            .await;
        let response = app
            .client
            .get(format!("{}/jwt/auth", app.address))
            .basic_auth(&token.token.username, Some(&token.secret))
            .query(&[("service", "container_registry")])
            // The client forged 6.6.6.6; a proxy appended the address it saw.
            .header("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            audited_address(&app, token.token.id).await,
            expected,
            "trusted proxies {trusted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_on_metrics_listen_when_it_is_set() {
    let cli = Cli::new().await;
    let server = ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &cli.database_url),
            ("REGAUTH_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    );
    let stdout = server.stdout();
    let metrics_port: u16 = stdout
        .split("metrics on 127.0.0.1:")
        .nth(1)
        .unwrap_or_else(|| panic!("no metrics address printed:\n{stdout}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(metrics_port, server.port);
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let main = get(format!("{}/metrics", server.address)).await;
    assert_eq!(main.status(), 404, "not on the public listener");
    let health = get(format!("{}/-/health", server.address)).await;
    assert_eq!(health.status(), 200);
    let metrics = get(format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("regauth_http_request_duration_seconds"));
    let other = get(format!("http://127.0.0.1:{metrics_port}/-/health")).await;
    assert_eq!(other.status(), 404, "only /metrics on the metrics listener");
    let token = get(format!("http://127.0.0.1:{metrics_port}/jwt/auth")).await;
    assert_eq!(token.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_new_connections_wait_until_one_closes() {
    let cli = Cli::new().await;
    // One connection per worker thread; the server has one worker per core, as here.
    let workers = std::thread::available_parallelism().unwrap().get();
    let server = ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &cli.database_url),
            ("REGAUTH_MAX_CONNECTIONS", "1"),
            ("REGAUTH_REQUEST_HEAD_TIMEOUT", "300"),
        ],
    );
    let held: Vec<TcpStream> = (0..workers)
        .map(|_| stall(server.port, "GET /-/health HTTP/1.1\r\n"))
        .collect();
    // Let the server take them in.
    std::thread::sleep(Duration::from_millis(500));
    let mut waiting = stall(
        server.port,
        "GET /-/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    waiting
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buffer = [0u8; 64];
    let early = waiting.read(&mut buffer);
    assert!(
        early.is_err(),
        "served beyond max_connections: {:?}",
        early.map(|n| String::from_utf8_lossy(&buffer[..n]).into_owned())
    );
    drop(held);
    let answer = read_until_closed(&mut waiting, Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
