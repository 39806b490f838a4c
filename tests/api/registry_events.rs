//! The registry's notifications (`POST /api/v4/container_registry_event/events`): the
//! receiver's authentication and media types, events kept once however often they are
//! delivered, blob pulls added up per day, attribution to tokens, and what the token's
//! events API, "last used" and `/metrics` show. With a real registry: `tests/e2e/`.

use chrono::{DateTime, Utc};
use regauth::config::RegistryEventsSecret;
use regauth::domain::NamespaceKind;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use std::time::Duration;

use crate::helpers::{eventually, spawn_app_with, TestApp};

pub const SECRET: &str = "Bearer registry-events-test-secret";
const V1: &str = "application/vnd.docker.distribution.events.v1+json";
const V2: &str = "application/vnd.docker.distribution.events.v2+json";

async fn app_with_receiver() -> TestApp {
    spawn_app_with(|settings| {
        settings.registry.events_secret = Some(RegistryEventsSecret::parse(SECRET).unwrap());
    })
    .await
}

fn delivery(
    app: &TestApp,
    authorization: Option<&str>,
    content_type: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = app
        .client
        .post(format!(
            "{}/api/v4/container_registry_event/events",
            app.address
        ))
        .header("Content-Type", content_type)
        .body(body.to_string());
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request
}

/// Delivers an envelope and, once it is answered, waits until its events are recorded
/// (the inbox is empty), as the registry's next delivery would find them.
async fn deliver(
    app: &TestApp,
    authorization: Option<&str>,
    content_type: &str,
    body: &Value,
) -> reqwest::Response {
    let response = delivery(app, authorization, content_type, body)
        .send()
        .await
        .unwrap();
    recorded(app).await;
    response
}

/// Waits until every envelope written to the inbox is recorded.
async fn recorded(app: &TestApp) {
    eventually("the inbox recorded", Duration::from_secs(10), async || {
        (count_rows(app, "registry_event_inbox").await == 0).then_some(())
    })
    .await;
}

/// One event as distribution 2.8 sends it.
fn event(id: &str, action: &str, actor: &str, target: Value, at: &str) -> Value {
    json!({
        "id": id,
        "timestamp": at,
        "action": action,
        "target": target,
        "request": {"id": "r", "addr": "10.1.2.3", "host": "registry", "method": "GET", "useragent": "skopeo/1.13"},
        "actor": {"name": actor},
        "source": {"addr": "registry:5000", "instanceID": "i"},
    })
}

fn manifest(repository: &str, tag: Option<&str>, digest: &str) -> Value {
    let mut target = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": 708, "length": 708, "repository": repository,
        "url": format!("http://registry/v2/{repository}/manifests/{digest}"),
    });
    if let Some(tag) = tag {
        target["tag"] = json!(tag);
    }
    target
}

/// A manifest pull by `actor` from `address`.
fn pulled_from(actor: &str, id: &str, address: &str, at: &str) -> Value {
    let mut pulled = event(
        id,
        "pull",
        actor,
        manifest("acme/web", Some("v1"), "sha256:1"),
        at,
    );
    pulled["request"]["addr"] = json!(address);
    pulled
}

/// The token's `deploy_token.new_address` audit records, oldest first.
async fn new_address_records(app: &TestApp, token_id: i64) -> Vec<regauth::domain::AuditEvent> {
    app.store
        .audit_events_for_deploy_token(token_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.action.as_str() == "deploy_token.new_address")
        .collect()
}

fn blob(repository: &str, digest: &str) -> Value {
    json!({"mediaType": "application/octet-stream", "digest": digest, "size": 1000, "repository": repository})
}

async fn events_of(
    app: &TestApp,
    admin: &str,
    kind: &str,
    owner: &str,
    token_id: i64,
    query: &str,
) -> reqwest::Response {
    app.api(
        Method::GET,
        &format!(
            "/{kind}/{}/deploy_tokens/{token_id}/events{query}",
            owner.replace('/', "%2F")
        ),
        admin,
    )
    .send()
    .await
    .unwrap()
}

async fn count_rows(app: &TestApp, table: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Waits until `/metrics` counts `expected` events, all actions, with this `result`
/// (`recorded` or `duplicate`): the recorder counts them right after it recorded them.
async fn events_counted(app: &TestApp, result: &str, expected: u64) {
    let counted = async || {
        let text = app.metrics_text().await;
        text.lines()
            .filter(|line| line.starts_with("regauth_registry_events_total{"))
            .filter(|line| line.contains(&format!("result=\"{result}\"")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    let what = format!("{expected} events counted as {result}");
    eventually(&what, Duration::from_secs(10), async || {
        (counted().await == expected).then_some(())
    })
    .await;
}

async fn metric(app: &TestApp, line_start: &str) -> Option<String> {
    let text = app.metrics_text().await;
    text.lines()
        .find(|line| line.starts_with(line_start))
        .map(str::to_owned)
}

#[tokio::test]
async fn without_a_secret_the_receiver_is_off() {
    let app = crate::helpers::spawn_app().await;
    let body = json!({"events": []});
    let response = deliver(&app, Some(SECRET), V1, &body).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_refused_and_nothing_is_kept() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let body = json!({"events": [event("e1", "push", "x", manifest("acme/web", Some("v1"), "sha256:1"), "2026-12-05T10:00:00Z")]});
    for authorization in [
        None,
        Some("Bearer registry-events-test-secreT"),
        Some("registry-events-test-secret"),
    ] {
        let response = deliver(&app, authorization, V1, &body).await;
        assert_eq!(response.status(), 401, "{authorization:?}");
    }
    assert_eq!(count_rows(&app, "registry_events").await, 0);
    assert_eq!(count_rows(&app, "registry_event_receipts").await, 0);
    assert_eq!(
        metric(
            &app,
            "regauth_registry_event_envelopes_total{outcome=\"unauthorized\"}"
        )
        .await
        .as_deref(),
        Some("regauth_registry_event_envelopes_total{outcome=\"unauthorized\"} 3")
    );
}

#[tokio::test]
async fn both_envelope_media_types_are_taken_and_others_refused() {
    let app = app_with_receiver().await;
    let first = json!({"events": [event("v1-event", "pull", "", manifest("acme/web", None, "sha256:1"), "2026-12-05T10:00:00Z")]});
    let second = json!({"events": [event("v2-event", "pull", "", manifest("acme/web", None, "sha256:1"), "2026-12-05T10:00:00Z")]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &first).await.status(), 200);
    assert_eq!(deliver(&app, Some(SECRET), V2, &second).await.status(), 200);
    let refused = deliver(&app, Some(SECRET), "application/json", &first).await;
    assert_eq!(refused.status(), 400);
    let message = refused.text().await.unwrap();
    assert!(message.contains("events.v1+json"), "{message}");
    // Anonymous pulls are kept, with no token.
    assert_eq!(count_rows(&app, "registry_events").await, 2);
}

#[tokio::test]
async fn events_are_kept_once_linked_to_their_token_and_listed_with_what_they_did() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let default_named = app
        .create_token(
            NamespaceKind::Project,
            "acme/web",
            &["read_registry", "write_registry"],
        )
        .await;
    let custom_named = app
        .create_token_with(
            NamespaceKind::Project,
            "acme/web",
            &["read_registry"],
            Some("ci-puller"),
        )
        .await;
    let pusher = default_named.token.username.clone();
    let body = json!({"events": [
        event("p1", "push", &pusher, blob("acme/web", "sha256:layer"), "2026-12-05T10:00:00Z"),
        event("p2", "push", &pusher, manifest("acme/web", Some("1.0"), "sha256:m1"), "2026-12-05T10:00:01Z"),
        event("q1", "pull", "ci-puller", manifest("acme/web", Some("1.0"), "sha256:m1"), "2026-12-05T11:00:00Z"),
        event("q2", "pull", "ci-puller", blob("acme/web", "sha256:layer"), "2026-12-05T11:00:01Z"),
        event("q3", "pull", "ci-puller", blob("acme/web", "sha256:config"), "2026-12-05T11:00:02Z"),
        event("s1", "pull", "someone-else", manifest("acme/web", None, "sha256:m1"), "2026-12-05T12:00:00Z"),
        {"id": "odd1", "action": "teleport", "target": {"repository": "acme/web"}},
        "not an event",
    ]});
    let response = deliver(&app, Some(SECRET), V1, &body).await;
    assert_eq!(response.status(), 200);
    let intake: Value = response.json().await.unwrap();
    assert_eq!(intake, json!({"accepted": 6, "odd": 2}));
    events_counted(&app, "recorded", 6).await;

    // The registry retries (it did not see the answer): nothing is counted twice.
    let again: Value = deliver(&app, Some(SECRET), V1, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, json!({"accepted": 6, "odd": 2}));
    events_counted(&app, "duplicate", 6).await;
    events_counted(&app, "recorded", 6).await;

    let pushed: Vec<Value> = events_of(
        &app,
        &admin,
        "projects",
        "acme/web",
        default_named.token.id,
        "",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pushed.len(), 2, "{pushed:#?}");
    assert_eq!(pushed[0]["action"], "push");
    assert_eq!(pushed[0]["target"], "manifest");
    assert_eq!(pushed[0]["repository"], "acme/web");
    assert_eq!(pushed[0]["tag"], "1.0");
    assert_eq!(pushed[0]["digest"], "sha256:m1");
    assert_eq!(pushed[0]["address"], "10.1.2.3");
    assert_eq!(pushed[0]["created_at"], "2026-12-05T10:00:01.000Z");
    assert_eq!(pushed[1]["target"], "blob");
    assert_eq!(pushed[1]["digest"], "sha256:layer");

    let pulled: Vec<Value> = events_of(
        &app,
        &admin,
        "projects",
        "acme/web",
        custom_named.token.id,
        "",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pulled.len(), 2, "{pulled:#?}");
    // Two blob pulls of one day: one entry counting both, first and last time kept.
    assert_eq!(pulled[0]["target"], "blob");
    assert_eq!(pulled[0]["count"], 2);
    assert_eq!(pulled[0]["digest"], Value::Null);
    assert_eq!(pulled[0]["created_at"], "2026-12-05T11:00:01.000Z");
    assert_eq!(pulled[0]["last_at"], "2026-12-05T11:00:02.000Z");
    assert_eq!(pulled[1]["action"], "pull");
    assert_eq!(pulled[1]["tag"], "1.0");

    // The unknown actor's event is kept, linked to nobody.
    let unknown = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT actor, deploy_token_id FROM registry_events WHERE actor = 'someone-else'",
        ))
        .await
        .unwrap()
        .expect("the unknown actor's event is kept");
    assert_eq!(
        unknown
            .try_get::<Option<i64>>("", "deploy_token_id")
            .unwrap(),
        None
    );

    assert_eq!(
        metric(
            &app,
            "regauth_registry_events_total{action=\"push\",result=\"recorded\"}"
        )
        .await
        .as_deref(),
        Some("regauth_registry_events_total{action=\"push\",result=\"recorded\"} 2")
    );
    assert_eq!(
        metric(
            &app,
            "regauth_registry_events_total{action=\"pull\",result=\"duplicate\"}"
        )
        .await
        .as_deref(),
        Some("regauth_registry_events_total{action=\"pull\",result=\"duplicate\"} 4")
    );
    assert_eq!(
        metric(&app, "regauth_registry_events_odd_total")
            .await
            .as_deref(),
        Some("regauth_registry_events_odd_total 4")
    );
}

#[tokio::test]
async fn last_used_is_the_last_registry_action_not_the_last_token_issue() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    // A registry token issued: with the receiver on, that is not use.
    let issued = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[
                ("service", "container_registry"),
                ("scope", "repository:acme/web:pull"),
            ],
        )
        .await;
    assert_eq!(issued.status(), 200);
    // Once the use is recorded, it has had every chance to move "last used".
    app.wait_for_token_issue_record(token.token.id).await;
    let last_used = || async {
        app.store
            .find_deploy_token(token.token.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used().await, None);

    let at = "2026-12-05T10:00:00Z";
    let body = json!({"events": [event("u1", "pull", &token.token.username, manifest("acme/web", Some("v1"), "sha256:1"), at)]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    let expected: DateTime<Utc> = at.parse().unwrap();
    assert_eq!(last_used().await, Some(expected));
    // An older event delivered late does not move it back.
    let older = json!({"events": [event("u0", "pull", &token.token.username, manifest("acme/web", Some("v1"), "sha256:1"), "2026-12-05T09:00:00Z")]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &older).await.status(), 200);
    assert_eq!(last_used().await, Some(expected));
}

#[tokio::test]
async fn the_events_list_is_paginated_for_group_tokens_too_and_hidden_from_others() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let outsider = app.create_user("eve", false, "api").await;
    let token = app
        .create_token(NamespaceKind::Group, "acme", &["read_registry"])
        .await;
    let events: Vec<Value> = (0..5)
        .map(|i| {
            event(
                &format!("g{i}"),
                "pull",
                &token.token.username,
                manifest("acme/web", Some(&format!("v{i}")), &format!("sha256:{i}")),
                &format!("2026-12-05T10:00:0{i}Z"),
            )
        })
        .collect();
    assert_eq!(
        deliver(&app, Some(SECRET), V2, &json!({ "events": events }))
            .await
            .status(),
        200
    );
    let response = events_of(
        &app,
        &admin,
        "groups",
        "acme",
        token.token.id,
        "?per_page=2&page=2",
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-total"], "5");
    assert_eq!(response.headers()["x-total-pages"], "3");
    let page: Vec<Value> = response.json().await.unwrap();
    let tags: Vec<&str> = page.iter().map(|e| e["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["v2", "v1"]);

    let hidden = events_of(&app, &outsider, "groups", "acme", token.token.id, "").await;
    assert!(
        matches!(hidden.status().as_u16(), 403 | 404),
        "{}",
        hidden.status()
    );
    // The token is the group's, not the project's.
    let elsewhere = events_of(&app, &admin, "projects", "acme/web", token.token.id, "").await;
    assert_eq!(elsewhere.status(), 404);
}

#[tokio::test]
async fn the_same_events_delivered_at_once_are_counted_once() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let body = json!({"events": (0..20).map(|i| event(
        &format!("c{i}"), "pull", &token.token.username, blob("acme/web", &format!("sha256:{i}")),
        "2026-12-05T10:00:00Z")).collect::<Vec<_>>()});
    let deliveries: Vec<_> = (0..4)
        .map(|_| tokio::spawn(delivery(&app, Some(SECRET), V1, &body).send()))
        .collect();
    for delivery in deliveries {
        let answer = delivery.await.unwrap().unwrap();
        assert_eq!(answer.status(), 200);
        let intake: Value = answer.json().await.unwrap();
        assert_eq!(intake, json!({"accepted": 20, "odd": 0}));
    }
    recorded(&app).await;
    events_counted(&app, "recorded", 20).await;
    events_counted(&app, "duplicate", 60).await;
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count FROM registry_events",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "count").unwrap(), 20);
}

/// A head announcing an envelope of 4 KiB, then 10 bytes of it, then nothing; the first
/// bytes of the answer, or `None` if none came within `limit`.
fn stalled_answer(
    app: &TestApp,
    authorization: &str,
    limit: std::time::Duration,
) -> Option<String> {
    use std::io::{Read, Write};
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /api/v4/container_registry_event/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: {V1}\r\nContent-Length: 4096\r\nAuthorization: {authorization}\r\n\r\n{{\"events\":"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_is_read_only_after_the_secret_and_then_within_the_deadline() {
    let app = spawn_app_with(|settings| {
        settings.registry.events_secret = Some(RegistryEventsSecret::parse(SECRET).unwrap());
        settings.limits.request_body_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let started = std::time::Instant::now();
    let refused = tokio::task::block_in_place(|| {
        stalled_answer(
            &app,
            "Bearer wrong-wrong-wrong-wrong",
            std::time::Duration::from_secs(1),
        )
    })
    .expect("a wrong secret is answered without waiting for the body");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let timed_out = tokio::task::block_in_place(|| {
        stalled_answer(&app, SECRET, std::time::Duration::from_secs(10))
    })
    .expect("the registry's stalled envelope is answered by the body deadline");
    assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
    assert_eq!(count_rows(&app, "registry_event_receipts").await, 0);
}

#[tokio::test]
async fn the_command_line_lists_a_tokens_events_and_memory_databases_start_with_them() {
    let cli = crate::cli::Cli::new().await;
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
    let (id, username) = (
        created["id"].as_i64().unwrap(),
        created["username"].as_str().unwrap().to_owned(),
    );
    {
        let database_url = cli.database_url.clone();
        let keys_dir = cli.dir.path().join("keys");
        let app = spawn_app_with(move |settings| {
            settings.database.url = database_url;
            settings.signing.keys_dir = keys_dir;
            settings.registry.events_secret = Some(RegistryEventsSecret::parse(SECRET).unwrap());
        })
        .await;
        let body = json!({"events": [
            event("m1", "push", &username, manifest("acme/web", Some("2.0"), "sha256:feed"), "2026-12-05T10:00:00Z"),
            event("b1", "pull", &username, blob("acme/web", "sha256:l1"), "2026-12-05T10:01:00Z"),
            event("b2", "pull", &username, blob("acme/web", "sha256:l2"), "2026-12-05T10:02:00Z"),
        ]});
        assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    }
    let printed = cli.ok(&["deploy-token", "events", &id.to_string()]);
    assert!(
        printed.contains(&format!(
            "deploy token {id} ({username}): 2 registry events"
        )),
        "{printed}"
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert!(
        lines[2].contains("pull×2") && lines[2].contains("blob"),
        "{printed}"
    );
    assert!(
        lines[3].contains("push") && lines[3].contains("2.0") && lines[3].contains("sha256:feed"),
        "{printed}"
    );
    let listed: Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "events",
        &id.to_string(),
        "--json",
        "--per-page",
        "1",
    ]))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(cli
        .fails(&["deploy-token", "events", "999"])
        .contains("Deploy token 999 not found"));

    // `memory://` copies the events along with the rest (SQLite only).
    if cli.database_url.starts_with("sqlite") {
        let seed = cli
            .database_url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let pat: Value = serde_json::from_str(&{
            cli.ok(&[
                "user",
                "create",
                "root",
                "--email",
                "root@example.com",
                "--admin",
            ]);
            cli.ok(&["user", "token", "create", "root", "--name", "ops", "--json"])
        })
        .unwrap();
        let memory_url = format!("memory://{seed}");
        let server = crate::server::ServerProcess::start(
            cli.dir.path(),
            &[
                ("REGAUTH_DATABASE_URL", memory_url.as_str()),
                ("RUST_LOG", "warn"),
            ],
        );
        let events: Vec<Value> = reqwest::Client::new()
            .get(format!(
                "{}/api/v4/projects/acme%2Fweb/deploy_tokens/{id}/events",
                server.address
            ))
            .header("PRIVATE-TOKEN", pat["token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(events.len(), 2, "{events:#?}");
        server.terminate();
    }
}

#[tokio::test]
async fn serve_prints_the_notifications_block_without_the_secret() {
    let cli = crate::cli::Cli::new().await;
    let printed = |env: &[(&str, &str)]| {
        let mut all = vec![("REGAUTH_DATABASE_URL", cli.database_url.as_str())];
        all.extend_from_slice(env);
        let mut server = crate::server::ServerProcess::start(cli.dir.path(), &all);
        server.terminate();
        server.wait(std::time::Duration::from_secs(30));
        format!("{}\n{}", server.stdout(), server.stderr())
    };
    let off = printed(&[]);
    assert!(
        off.contains("registry notifications (what each token pushed and pulled) are off"),
        "{off}"
    );
    assert!(!off.contains("notifications:\n"), "{off}");
    let on = printed(&[("REGAUTH_REGISTRY_EVENTS_SECRET", SECRET)]);
    assert!(
        on.contains("notifications:\n  endpoints:\n    - name: regauth\n"),
        "{on}"
    );
    assert!(
        on.contains("/api/v4/container_registry_event/events\n"),
        "{on}"
    );
    assert!(
        on.contains("Authorization: [\"<the value of registry_events_secret>\"]"),
        "{on}"
    );
    assert!(
        !on.contains("registry-events-test-secret"),
        "the secret is never printed:\n{on}"
    );
}

#[tokio::test]
async fn the_token_page_shows_what_the_token_did_at_the_registry() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let token = app
        .create_token(
            NamespaceKind::Project,
            "acme/web",
            &["read_registry", "write_registry"],
        )
        .await;
    let session = regauth::service::web_sessions::sign_in(
        app.store.as_ref(),
        &app.settings.tokens.formats(),
        "root",
        regauth::service::web_sessions::Password::new(admin),
        None,
        std::time::Duration::from_secs(3600),
        Utc::now(),
    )
    .await
    .unwrap();
    let page = || async {
        app.client
            .get(format!(
                "{}/acme/web/-/deploy_tokens/{}",
                app.address, token.token.id
            ))
            .header(
                "Cookie",
                format!("_regauth_session={}", session.id.expose()),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = page().await;
    assert!(
        before.contains("No pushes, pulls or deletes reported by the registry."),
        "{before}"
    );
    let user = token.token.username.clone();
    let mut pushed_manifest = event(
        "w1",
        "push",
        &user,
        manifest("acme/web", Some("1.0"), "sha256:m1"),
        "2026-12-05T10:00:00Z",
    );
    pushed_manifest["request"]["addr"] = json!("192.0.2.7");
    let body = json!({"events": [
        pushed_manifest,
        event("w2", "pull", &user, blob("acme/web", "sha256:l1"), "2026-12-05T09:00:00Z"),
        event("w3", "pull", &user, blob("acme/web", "sha256:l2"), "2026-12-05T09:00:01Z"),
    ]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    let after = page().await;
    assert!(after.contains("id=\"registry-events\""), "{after}");
    assert!(after.contains("pushed a manifest"), "{after}");
    assert!(
        after.contains("<code>acme/web:1.0 (sha256:m1)</code>"),
        "{after}"
    );
    assert!(after.contains("pulled 2 blobs"), "{after}");
    // "Last used" is the last registry action, from its address.
    assert!(
        after.contains("2026-12-05 10:00 UTC from 192.0.2.7"),
        "{after}"
    );
}

#[tokio::test]
async fn an_event_is_linked_best_effort_to_the_registry_token_that_did_it() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let issued = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[
                ("service", "container_registry"),
                ("scope", "repository:acme/web:pull,push"),
            ],
        )
        .await;
    assert_eq!(issued.status(), 200);
    app.wait_for_token_issue_record(token.token.id).await;
    let now = Utc::now().to_rfc3339();
    let user = token.token.username.clone();
    let mut pulled = event(
        "i1",
        "pull",
        &user,
        manifest("acme/web", Some("v1"), "sha256:1"),
        &now,
    );
    pulled["request"]["addr"] = json!("127.0.0.1");
    let from_elsewhere = event(
        "i2",
        "pull",
        &user,
        manifest("acme/web", Some("v2"), "sha256:2"),
        &now,
    );
    // The token was granted pull only: no issued token covers a push.
    let pushed = event(
        "i3",
        "push",
        &user,
        manifest("acme/web", Some("v3"), "sha256:3"),
        &now,
    );
    let long_before = event(
        "i4",
        "pull",
        &user,
        manifest("acme/web", Some("v4"), "sha256:4"),
        "2026-01-01T00:00:00Z",
    );
    let body = json!({"events": [pulled, from_elsewhere, pushed, long_before]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    let listed: Vec<Value> = events_of(&app, &admin, "projects", "acme/web", token.token.id, "")
        .await
        .json()
        .await
        .unwrap();
    let by_tag =
        |tag: &str| listed.iter().find(|e| e["tag"] == tag).unwrap()["issued_token"].clone();
    let same = by_tag("v1");
    assert_eq!(same["match"], "same_address", "{listed:#?}");
    assert_eq!(same["address"], "127.0.0.1");
    assert_eq!(same["granted"], "repository:acme/web:pull");
    assert_eq!(by_tag("v2")["match"], "other_address");
    assert_eq!(by_tag("v3"), Value::Null);
    assert_eq!(by_tag("v4"), Value::Null);
}

#[tokio::test]
async fn a_token_acting_from_a_network_it_did_not_use_lately_is_recorded_once() {
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let user = token.token.username.clone();
    let from = |id: &str, address: &str, at: &str| pulled_from(&user, id, address, at);
    let news = || new_address_records(&app, token.token.id);
    // The token's first network, then another address in it: no news.
    let body = json!({"events": [
        from("n1", "10.1.2.3:40000", "2026-11-01T10:00:00Z"),
        from("n2", "10.1.2.99", "2026-11-02T10:00:00Z"),
    ]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    assert!(news().await.is_empty());
    // Another network: recorded, once however often the registry delivers it.
    let elsewhere = json!({"events": [from("n3", "198.51.100.7", "2026-11-03T10:00:00Z")]});
    for _ in 0..2 {
        assert_eq!(
            deliver(&app, Some(SECRET), V1, &elsewhere).await.status(),
            200
        );
    }
    let recorded = news().await;
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0].ip_address.as_deref(), Some("198.51.100.7"));
    assert_eq!(recorded[0].details["network"], "198.51.100.0/24");
    assert_eq!(recorded[0].details["repository"], "acme/web");
    assert_eq!(recorded[0].actor, user);
    // Used again within 30 days: no news; back after 40 days away: news again.
    let again = json!({"events": [
        from("n4", "198.51.100.8", "2026-11-10T10:00:00Z"),
        from("n5", "10.1.2.3", "2026-12-12T10:00:00Z"),
    ]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &again).await.status(), 200);
    let recorded = news().await;
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    assert_eq!(recorded[1].details["network"], "10.1.2.0/24");
    assert_eq!(
        metric(&app, "regauth_registry_new_addresses_total")
            .await
            .as_deref(),
        Some("regauth_registry_new_addresses_total 2")
    );
}

#[tokio::test]
async fn events_are_pruned_with_the_audit_retention_and_receipts_after_a_day() {
    let app = app_with_receiver().await;
    let now = Utc::now();
    let body = json!({"events": [
        event("old", "pull", "", manifest("acme/web", Some("v1"), "sha256:1"), "2026-01-01T00:00:00Z"),
        event("new", "pull", "", manifest("acme/web", Some("v2"), "sha256:2"), &now.to_rfc3339()),
    ]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    assert_eq!(count_rows(&app, "registry_events").await, 2);
    regauth::service::audit_retention::prune_issue_records(app.store.as_ref(), 90, now)
        .await
        .unwrap();
    assert_eq!(count_rows(&app, "registry_events").await, 1);
    assert_eq!(count_rows(&app, "registry_event_receipts").await, 2);
    // Retention 0 keeps events for ever; receipts still go after a day.
    let later = now + chrono::TimeDelta::days(2);
    regauth::service::audit_retention::prune_issue_records(app.store.as_ref(), 0, later)
        .await
        .unwrap();
    assert_eq!(count_rows(&app, "registry_events").await, 1);
    assert_eq!(count_rows(&app, "registry_event_receipts").await, 0);
}

#[ignore = "needs python3 with aiosmtpd as the SMTP server: run by scripts/test.sh"]
#[tokio::test]
async fn managers_who_asked_are_mailed_once_per_token_and_new_network() {
    use regauth::domain::Role;
    let sink = crate::smtp_sink::SmtpSink::start();
    let smtp_url = sink.url();
    let app = spawn_app_with(|settings| {
        settings.registry.events_secret = Some(RegistryEventsSecret::parse(SECRET).unwrap());
        settings.housekeeping.smtp =
            Some(regauth::config::SmtpSettings::parse(&smtp_url, "regauth@localhost").unwrap());
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    for (username, role) in [
        ("mia", Role::Maintainer),
        ("max", Role::Maintainer),
        ("dev", Role::Developer),
    ] {
        app.create_user(username, false, "api").await;
        app.add_member(username, NamespaceKind::Project, "acme/web", role)
            .await;
    }
    // Mia and the developer asked; the developer manages no token, so only Mia is mailed.
    for username in ["mia", "dev"] {
        regauth::service::users::set_new_address_mail(
            app.store.as_ref(),
            username,
            true,
            Utc::now(),
        )
        .await
        .unwrap();
    }
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let user = token.token.username.clone();
    let from = |id: &str, address: &str, at: &str| json!({ "events": [pulled_from(&user, id, address, at)] });
    for body in [
        from("m1", "10.1.2.3", "2026-11-01T10:00:00Z"),
        from("m2", "198.51.100.7", "2026-11-03T10:00:00Z"),
        from("m3", "10.1.2.3", "2026-11-04T10:00:00Z"),
    ] {
        assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    }
    // Mails go out in the background, one task per delivery: wait for the first before the
    // network comes back, or the two tasks race for the one claim of that network.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sink.mails().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Away 40 days and back: news again in the trail, but that network was mailed already.
    let back = from("m4", "198.51.100.9", "2026-12-20T10:00:00Z");
    assert_eq!(deliver(&app, Some(SECRET), V1, &back).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].rcpt_to, ["mia@example.com"]);
    assert!(
        mails[0]
            .subject
            .ends_with("used from a new address: 198.51.100.7"),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[0].body.contains("198.51.100.0/24"),
        "{}",
        mails[0].body
    );
    assert!(mails[0].body.contains("pull acme/web"), "{}", mails[0].body);
    assert!(!mails[0].body.contains(&token.secret));
    assert_eq!(
        new_address_records(&app, token.token.id).await.len(),
        2,
        "the return after 40 days is in the trail"
    );
}

#[tokio::test]
async fn the_new_address_mail_is_turned_on_and_off_on_the_command_line() {
    let cli = crate::cli::Cli::new().await;
    cli.ok(&["user", "create", "mia", "--email", "mia@example.com"]);
    let on = cli.run(&["user", "new-address-mail", "mia", "on"]);
    assert!(on.status.success());
    assert_eq!(
        String::from_utf8_lossy(&on.stdout),
        "new-address mail on for mia (mia@example.com)\n"
    );
    assert!(String::from_utf8_lossy(&on.stderr).contains("smtp_url is not set"));
    let app = cli.spawn_app().await;
    let mia = app
        .store
        .find_user_by_username("mia")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.store.new_address_mail_users(&[mia.id]).await.unwrap(),
        [mia.id]
    );
    cli.ok(&["user", "new-address-mail", "mia", "off"]);
    assert!(app
        .store
        .new_address_mail_users(&[mia.id])
        .await
        .unwrap()
        .is_empty());
    assert!(!cli
        .run(&["user", "new-address-mail", "mia", "maybe"])
        .status
        .success());
    assert!(cli
        .fails(&["user", "new-address-mail", "nobody", "on"])
        .contains("nobody"));
}

#[tokio::test]
async fn each_person_turns_the_new_address_mail_on_and_off_through_the_api_and_the_page() {
    use crate::web_pages::{client, hidden_csrf, signed_in, user_with_password};
    let app = app_with_receiver().await;
    let mia = user_with_password(&app, "mia").await;
    let reader = app.create_user("rea", false, "read_api").await;
    let preferences = |token: &str| {
        let request = app.api(Method::GET, "/user/preferences", token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["new_address_mail"].clone()
        }
    };
    let put = |token: &str, body: Value| {
        app.api(Method::PUT, "/user/preferences", token)
            .json(&body)
            .send()
    };
    let mia_id = app
        .store
        .find_user_by_username("mia")
        .await
        .unwrap()
        .unwrap()
        .id;
    let subscribed = || async { app.store.new_address_mail_users(&[mia_id]).await.unwrap() };
    assert_eq!(preferences(&mia).await, false, "off until asked for");
    // The API: JSON or a form, GitLab's booleans; the mailer's list follows.
    let on = put(&mia, json!({"new_address_mail": true})).await.unwrap();
    assert_eq!(on.status(), 200);
    let on: Value = on.json().await.unwrap();
    assert_eq!(on["new_address_mail"], true);
    assert_eq!(subscribed().await, [mia_id]);
    assert_eq!(preferences(&mia).await, true);
    let off = app
        .api(Method::PUT, "/user/preferences", &mia)
        .form(&[("new_address_mail", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    assert!(subscribed().await.is_empty());
    // Bad input is a clear 400 and changes nothing; a read_api token only looks.
    for body in [json!({"new_address_mail": "maybe"}), json!({"theme_id": 2})] {
        let refused = put(&mia, body).await.unwrap();
        assert_eq!(refused.status(), 400);
        let text = refused.text().await.unwrap();
        assert!(text.contains("new_address_mail"), "{text}");
    }
    assert_eq!(preferences(&reader).await, false);
    let forbidden = put(&reader, json!({"new_address_mail": true}))
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let anonymous = app
        .client
        .get(format!("{}/api/v4/user/preferences", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(subscribed().await.is_empty());

    // The page: the box shows the setting, saving it turns it on, unticking it off.
    let cookie = signed_in(&app, "mia", crate::web_pages::PASSWORD).await;
    let page_url = format!("{}/-/profile/preferences", app.address);
    let page = |cookie: String| {
        let request = client().get(&page_url).header("cookie", cookie);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let html = page(cookie.clone()).await;
    let checkbox = |html: &str| {
        let start = html.find("id=\"new_address_mail\"").expect("the checkbox");
        let end = start + html[start..].find('>').unwrap();
        html[start..end].contains(" checked")
    };
    assert!(!checkbox(&html));
    assert!(html.contains("aria-describedby=\"new_address_mail_hint\""));
    let csrf = hidden_csrf(&html);
    let save = |fields: Vec<(&'static str, String)>| {
        client()
            .post(&page_url)
            .header("cookie", cookie.clone())
            .form(&fields)
            .send()
    };
    let saved = save(vec![
        ("authenticity_token", csrf.clone()),
        ("new_address_mail", "true".into()),
    ])
    .await
    .unwrap();
    assert_eq!(saved.status(), 303);
    assert_eq!(
        saved.headers()["location"],
        "/-/profile/preferences?saved=1"
    );
    assert_eq!(subscribed().await, [mia_id]);
    assert!(checkbox(&page(cookie.clone()).await));
    // Without the session's CSRF token nothing changes.
    let forged = save(vec![("authenticity_token", "forged".into())])
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(subscribed().await, [mia_id]);
    let unticked = save(vec![("authenticity_token", csrf)]).await.unwrap();
    assert_eq!(unticked.status(), 303);
    assert!(subscribed().await.is_empty());
}

#[tokio::test]
async fn what_a_workload_identitys_jobs_did_is_listed_under_its_policy() {
    use crate::workload_identity::{issuer, policy, GITHUB};
    use regauth::config::oidc::IssuerKind;
    let app = spawn_app_with(|settings| {
        settings.registry.events_secret = Some(RegistryEventsSecret::parse(SECRET).unwrap());
        settings.oidc_issuers = vec![issuer(GITHUB, IssuerKind::Github, None)];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let outsider = app.create_user("eve", false, "api").await;
    let release = policy(
        &app,
        "acme/web",
        GITHUB,
        json!({"repository_id": "74"}),
        &["read_registry", "write_registry"],
    )
    .await;
    let now = Utc::now().to_rfc3339();
    let body = json!({"events": [
        event("w1", "push", &release.username(), manifest("acme/web/app", Some("v1"), "sha256:1"), &now),
        event("w2", "pull", &release.username(), manifest("acme/web/app", Some("v1"), "sha256:1"), &now),
        // A policy that does not exist (deleted): kept, under its actor name only.
        event("w3", "pull", "gitlab+workload-999", manifest("acme/web/app", Some("v1"), "sha256:1"), &now),
    ]});
    assert_eq!(deliver(&app, Some(SECRET), V1, &body).await.status(), 200);
    let path = format!(
        "/projects/acme%2Fweb/workload_identities/{}/events",
        release.id
    );
    let listed = app.api(Method::GET, &path, &admin).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["x-total"], "2");
    let listed: Vec<Value> = listed.json().await.unwrap();
    let actions: Vec<&str> = listed
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 2, "{listed:#?}");
    assert!(actions.contains(&"push") && actions.contains(&"pull"));
    assert!(listed
        .iter()
        .all(|event| event["actor"] == release.username() && event["tag"] == "v1"));
    assert_eq!(count_rows(&app, "registry_events").await, 3);
    // Only for those who may see the policy.
    let hidden = app.api(Method::GET, &path, &outsider).send().await.unwrap();
    assert_eq!(hidden.status(), 404);
    // The policy's page shows them beside its logins.
    let cookie = crate::web_pages::signed_in(&app, "root", &admin).await;
    let page = crate::web_pages::client()
        .get(format!(
            "{}/acme/web/-/settings/workload_identities",
            app.address
        ))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let activity = &html[html.find("Registry activity").expect("the section")..];
    assert!(activity.contains("acme/web/app:v1"), "{activity}");
}

#[tokio::test]
async fn envelopes_left_in_the_inbox_by_a_stopped_server_are_recorded_once_by_the_next() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    // What a server that stopped between its answers and their recording left behind: an
    // envelope, the registry's retry of it, and a later one; recorded in one batch.
    let user = token.token.username.clone();
    let mut second_blob = event(
        "left-3",
        "pull",
        &user,
        blob("acme/web", "sha256:b"),
        "2026-12-05T10:00:05Z",
    );
    second_blob["request"]["addr"] = json!("192.0.2.9");
    let envelopes = [
        json!({"events": [
            event("left-1", "pull", &user, manifest("acme/web", Some("1.0"), "sha256:m1"), "2026-12-05T10:00:00Z"),
            event("left-2", "pull", &user, blob("acme/web", "sha256:a"), "2026-12-05T10:00:01Z"),
        ]}),
        json!({"events": [
            event("left-1", "pull", &user, manifest("acme/web", Some("1.0"), "sha256:m1"), "2026-12-05T10:00:00Z"),
            event("left-2", "pull", &user, blob("acme/web", "sha256:a"), "2026-12-05T10:00:01Z"),
        ]}),
        json!({"events": [second_blob]}),
    ];
    let received_at = Utc::now() - chrono::TimeDelta::minutes(1);
    for body in &envelopes {
        entity::registry_event_inbox::ActiveModel {
            received_at: Set(received_at),
            envelope: Set(body.to_string()),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    recorded(&app).await;
    // The manifest pull, and the day's two blob pulls added up in one row.
    assert_eq!(count_rows(&app, "registry_events").await, 2);
    events_counted(&app, "recorded", 3).await;
    events_counted(&app, "duplicate", 2).await;
    let admin = app.create_user("root", true, "api").await;
    let listed: Vec<Value> = events_of(&app, &admin, "projects", "acme/web", token.token.id, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let blobs = listed
        .iter()
        .find(|event| event["target"] == "blob")
        .unwrap();
    assert_eq!(blobs["count"], 2);
    assert_eq!(blobs["address"], "192.0.2.9");
    assert_eq!(
        (blobs["created_at"].as_str(), blobs["last_at"].as_str()),
        (
            Some("2026-12-05T10:00:01.000Z"),
            Some("2026-12-05T10:00:05.000Z")
        )
    );
    let manifest = listed
        .iter()
        .find(|event| event["target"] == "manifest")
        .unwrap();
    assert_eq!(manifest["tag"], "1.0");
}

#[tokio::test]
async fn an_envelope_that_failed_to_be_recorded_ten_times_is_set_aside_and_the_rest_go_on() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let user = token.token.username.clone();
    let received_at = Utc::now() - chrono::TimeDelta::minutes(1);
    let mut ids = Vec::new();
    for (id, attempts) in [("failed-often", 10), ("failed-once", 9)] {
        let body = json!({"events": [event(
            id, "pull", &user, manifest("acme/web", Some(id), "sha256:m"), "2026-12-05T10:00:00Z")]});
        let row = entity::registry_event_inbox::ActiveModel {
            received_at: Set(received_at),
            envelope: Set(body.to_string()),
            attempts: Set(attempts),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
        ids.push(row.id);
    }
    eventually(
        "the envelope below the limit recorded",
        Duration::from_secs(10),
        async || (count_rows(&app, "registry_events").await == 1).then_some(()),
    )
    .await;
    let left = entity::registry_event_inbox::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(left.iter().map(|row| row.id).collect::<Vec<_>>(), [ids[0]]);
    events_counted(&app, "recorded", 1).await;
}

#[tokio::test]
async fn an_envelope_whose_recording_fails_is_counted_and_recorded_once_the_database_recovers() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = app_with_receiver().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(NamespaceKind::Project, "acme/web", &["read_registry"])
        .await;
    let rename = async |from: &str, to: &str| {
        app.db
            .execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .await
            .unwrap();
    };
    // Recording fails while the receipts table is away.
    rename("registry_event_receipts", "receipts_away").await;
    let body = json!({"events": [event(
        "during-outage", "pull", &token.token.username,
        manifest("acme/web", Some("1.0"), "sha256:m"), "2026-12-05T10:00:00Z")]});
    let row = entity::registry_event_inbox::ActiveModel {
        received_at: Set(Utc::now() - chrono::TimeDelta::minutes(1)),
        envelope: Set(body.to_string()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    eventually(
        "a failed attempt counted",
        Duration::from_secs(10),
        async || {
            let row = entity::registry_event_inbox::Entity::find_by_id(row.id)
                .one(&app.db)
                .await
                .unwrap()?;
            (row.attempts >= 1).then_some(())
        },
    )
    .await;
    rename("receipts_away", "registry_event_receipts").await;
    recorded(&app).await;
    assert_eq!(count_rows(&app, "registry_events").await, 1);
    events_counted(&app, "recorded", 1).await;
}
