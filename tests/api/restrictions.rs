//! Least privilege (issue #27, items 1 and 2): address allow-lists (`ip_restriction_ranges`)
//! on deploy tokens, groups and workload policies, and repository patterns
//! (`repository_patterns`), through the API, at `/jwt/auth` (password and refresh grants)
//! and `/-/forward-auth`. Other client addresses are real: clients bind to 127.0.0.x, or
//! come through a trusted proxy (127.0.0.1) that says `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use regauth::config::Settings;
use regauth::config::TrustedProxies;
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{jwt_claims, spawn_app_with, TestApp};

const REGISTRY: &str = "container_registry";

fn behind_proxy(settings: &mut Settings) {
    settings.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1".to_owned()]).unwrap();
}

fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

async fn json_of(response: Response) -> Value {
    response.json().await.unwrap()
}

/// An app with `acme/web`, an admin's API token, and a deploy token made through the API
/// with `extra` fields.
async fn world(customise: impl FnOnce(&mut Settings), extra: Value) -> (TestApp, String, Value) {
    let app = spawn_app_with(customise).await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let mut body = json!({"name": "ci", "scopes": ["read_registry", "write_registry", "read_package_registry"]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let response = app
        .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{body}");
    let created = json_of(response).await;
    (app, admin, created)
}

/// `GET /jwt/auth` for pull and push on `repository` from `client`, optionally through the
/// trusted proxy saying `forwarded_for`.
async fn login(
    app: &TestApp,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
    token: &Value,
    repository: &str,
) -> Response {
    let mut request = client
        .get(format!("{}/jwt/auth", app.address))
        .query(&[
            ("service", REGISTRY),
            ("scope", &format!("repository:{repository}:pull,push")),
        ])
        .basic_auth(token["username"].as_str().unwrap(), token["token"].as_str());
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    request.send().await.unwrap()
}

async fn granted(response: Response) -> Value {
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    jwt_claims(body["token"].as_str().unwrap())["access"].clone()
}

/// The `login.failure` rows with reason `address_not_allowed`, waited for (the usage
/// writer batches them).
async fn address_refusals(app: &TestApp, at_least: usize) -> Vec<entity::audit_event::Model> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<_> = entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::Action.eq("login.failure"))
            .all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.details.contains("address_not_allowed"))
            .collect();
        if rows.len() >= at_least {
            return rows;
        }
        assert!(Instant::now() < deadline, "audit rows missing: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ranges_are_taken_as_gitlabs_string_or_a_list_shown_changed_and_cleared() {
    let (app, admin, created) = world(
        |_| {},
        json!({"ip_restriction_ranges": "10.20.0.0/16, 2001:db8::/48", "repository_patterns": ["app", "tools/*"]}),
    )
    .await;
    assert_eq!(
        created["ip_restriction_ranges"],
        "10.20.0.0/16,2001:db8::/48"
    );
    assert_eq!(created["repository_patterns"], json!(["app", "tools/*"]));
    let id = created["id"].as_i64().unwrap();
    let path = format!("/projects/acme%2Fweb/deploy_tokens/{id}");
    let shown = json_of(app.api(Method::GET, &path, &admin).send().await.unwrap()).await;
    assert_eq!(shown["ip_restriction_ranges"], "10.20.0.0/16,2001:db8::/48");
    assert_eq!(shown["repository_patterns"], json!(["app", "tools/*"]));

    // A JSON list on create.
    let response = app
        .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
        .json(&json!({"name": "two", "scopes": ["read_registry"], "ip_restriction_ranges": ["192.0.2.7", "10.0.0.0/8"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        json_of(response).await["ip_restriction_ranges"],
        "192.0.2.7/32,10.0.0.0/8"
    );

    // PUT replaces (form or JSON), "" clears; the patterns stay as created.
    let response = app
        .api(Method::PUT, &path, &admin)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("ip_restriction_ranges=10.0.0.0/8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_of(response).await["ip_restriction_ranges"],
        "10.0.0.0/8"
    );
    let response = app
        .api(Method::PUT, &path, &admin)
        .json(&json!({"ip_restriction_ranges": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cleared = json_of(response).await;
    assert_eq!(cleared["ip_restriction_ranges"], "");
    assert_eq!(cleared["repository_patterns"], json!(["app", "tools/*"]));

    // Bad input: 400 naming the field and the entry, nothing created or changed.
    for (body, says) in [
        (
            json!({"name": "bad", "scopes": ["read_registry"], "ip_restriction_ranges": "10.0.0.0/33"}),
            "invalid prefix length",
        ),
        (
            json!({"name": "bad", "scopes": ["read_registry"], "ip_restriction_ranges": "10.1.2.3/8"}),
            "first address",
        ),
        (
            json!({"name": "bad", "scopes": ["read_registry"], "ip_restriction_ranges": 7}),
            "ip_restriction_ranges is invalid",
        ),
        (
            json!({"name": "bad", "scopes": ["read_registry"], "repository_patterns": ["../other"]}),
            "can only narrow",
        ),
        (
            json!({"name": "bad", "scopes": ["read_registry"], "repository_patterns": ["/acme/other"]}),
            "starts with '/'",
        ),
        (
            json!({"name": "bad", "scopes": ["read_registry"], "repository_patterns": ["App"]}),
            "lowercase",
        ),
        (
            json!({"name": "bad", "scopes": ["read_registry"], "repository_patterns": ["app%2f..%2fx"]}),
            "'%'",
        ),
    ] {
        let response = app
            .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer = json_of(response).await.to_string();
        assert!(answer.contains(says), "{body}: {answer}");
    }
    let response = app
        .api(Method::PUT, &path, &admin)
        .json(&json!({"ip_restriction_ranges": "nonsense"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let list = json_of(
        app.api(Method::GET, "/projects/acme%2Fweb/deploy_tokens", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["ip_restriction_ranges"], "");
}

#[tokio::test]
async fn a_token_is_refused_outside_its_ranges_as_a_wrong_secret_and_accepted_through_a_trusted_proxy(
) {
    let (app, _, token) = world(behind_proxy, json!({"ip_restriction_ranges": "10.0.0.0/8"})).await;
    let local = reqwest::Client::new();
    // From 127.0.0.1 itself (the proxy, saying nothing): refused exactly as a wrong secret.
    let refused = login(&app, &local, None, &token, "acme/web/app").await;
    assert_eq!(refused.status(), 401);
    let refused_challenge = refused.headers().get("www-authenticate").cloned();
    let refused_body = json_of(refused).await;
    let mut wrong = token.clone();
    wrong["token"] = json!("gldt-wrong-secret");
    let wrong_secret = login(&app, &local, None, &wrong, "acme/web/app").await;
    assert_eq!(
        wrong_secret.headers().get("www-authenticate").cloned(),
        refused_challenge
    );
    assert_eq!(json_of(wrong_secret).await, refused_body);
    // Through the trusted proxy for 10.1.2.3: served.
    let access = granted(login(&app, &local, Some("10.1.2.3"), &token, "acme/web/app").await).await;
    assert_eq!(access[0]["actions"], json!(["pull", "push"]));
    // Through the proxy for an address outside the list: refused.
    let outside = login(&app, &local, Some("192.0.2.1"), &token, "acme/web/app").await;
    assert_eq!(outside.status(), 401);
    // An untrusted peer cannot claim 10.1.2.3.
    let forged = login(
        &app,
        &client_from(9),
        Some("10.1.2.3"),
        &token,
        "acme/web/app",
    )
    .await;
    assert_eq!(forged.status(), 401);

    // The OAuth2 password grant: the same check.
    let password_grant = |forwarded: &'static str| {
        app.client
            .post(format!("{}/jwt/auth", app.address))
            .header("X-Forwarded-For", forwarded)
            .form(&[
                ("grant_type", "password"),
                ("service", REGISTRY),
                ("client_id", "test"),
                ("access_type", "offline"),
                ("username", token["username"].as_str().unwrap()),
                ("password", token["token"].as_str().unwrap()),
                ("scope", "repository:acme/web/app:pull"),
            ])
            .send()
    };
    assert_eq!(password_grant("127.0.0.5").await.unwrap().status(), 401);
    let allowed = password_grant("10.9.9.9").await.unwrap();
    assert_eq!(allowed.status(), 200);
    let refresh = json_of(allowed).await["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    // The refresh token inherits the ranges.
    let refresh_grant = |forwarded: &'static str| {
        app.client
            .post(format!("{}/jwt/auth", app.address))
            .header("X-Forwarded-For", forwarded)
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", REGISTRY),
                ("client_id", "test"),
                ("refresh_token", refresh.as_str()),
                ("scope", "repository:acme/web/app:pull"),
            ])
            .send()
    };
    assert_eq!(refresh_grant("10.2.3.4").await.unwrap().status(), 200);
    assert_eq!(refresh_grant("198.51.100.1").await.unwrap().status(), 401);

    // Audited with the reason, the address and the token; counted in a metric.
    let rows = address_refusals(&app, 5).await;
    let addresses: Vec<_> = rows
        .iter()
        .filter_map(|row| row.ip_address.clone())
        .collect();
    for address in [
        "127.0.0.1",
        "192.0.2.1",
        "127.0.0.9",
        "127.0.0.5",
        "198.51.100.1",
    ] {
        assert!(
            addresses.iter().any(|a| a == address),
            "{address} in {addresses:?}"
        );
    }
    let id = token["id"].as_i64().unwrap();
    assert!(
        rows.iter().all(|row| row.deploy_token_id == Some(id)),
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .any(|row| row.details.contains("\"route\":\"refresh_token\"")));
    let text = app.metrics_text().await;
    assert!(
        text.contains("regauth_address_refusals_total{route=\"registry\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("regauth_address_refusals_total{route=\"refresh_token\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn refusals_count_against_the_address_but_never_lock_the_username_out() {
    let (app, _, token) = world(
        |settings| {
            settings.login.throttle.max_failures_per_address = 3;
            settings.login.throttle.max_failures_per_username = 3;
        },
        json!({"ip_restriction_ranges": "127.0.0.2/32"}),
    )
    .await;
    let outsider = client_from(3);
    for attempt in 1..=3 {
        let response = login(&app, &outsider, None, &token, "acme/web/app").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // The outsider's address is now locked, as after three wrong secrets: no free probing.
    let locked = login(&app, &outsider, None, &token, "acme/web/app").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    // The username was not counted: the real client, from its allowed address, is served,
    // and so are wrong guesses from elsewhere counted only from now on.
    let access = granted(login(&app, &client_from(2), None, &token, "acme/web/app").await).await;
    assert_eq!(access[0]["name"], "acme/web/app");
}

#[tokio::test]
async fn forward_auth_and_group_ranges_apply_to_every_token_below_the_group() {
    let (app, admin, token) = world(behind_proxy, json!({})).await;
    let forward = |forwarded: &'static str| {
        app.client
            .get(format!("{}/-/forward-auth", app.address))
            .header(
                "X-Original-URI",
                "/api/v4/projects/acme%2Fweb/packages/generic/x/1/x.tgz",
            )
            .header("X-Original-Method", "GET")
            .header("X-Forwarded-For", forwarded)
            .basic_auth(token["username"].as_str().unwrap(), token["token"].as_str())
            .send()
    };
    assert_eq!(
        forward("192.0.2.1").await.unwrap().status(),
        200,
        "no list: anywhere"
    );

    // The group's list: GitLab's `PUT /groups/:id` attribute.
    let response = app
        .api(Method::PUT, "/groups/acme", &admin)
        .json(&json!({"ip_restriction_ranges": "10.0.0.0/8"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_of(response).await["ip_restriction_ranges"],
        "10.0.0.0/8"
    );
    let group = json_of(
        app.api(Method::GET, "/groups/acme", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(group["ip_restriction_ranges"], "10.0.0.0/8");

    assert_eq!(forward("192.0.2.1").await.unwrap().status(), 401);
    assert_eq!(forward("10.1.2.3").await.unwrap().status(), 200);
    assert_eq!(
        login(&app, &app.client, Some("192.0.2.1"), &token, "acme/web/app")
            .await
            .status(),
        401
    );
    granted(login(&app, &app.client, Some("10.1.2.3"), &token, "acme/web/app").await).await;
    let rows = address_refusals(&app, 2).await;
    assert!(rows
        .iter()
        .any(|row| row.details.contains("\"route\":\"forward_auth\"")));

    // The token's own list narrows further: both must admit the address.
    let id = token["id"].as_i64().unwrap();
    let response = app
        .api(
            Method::PUT,
            &format!("/projects/acme%2Fweb/deploy_tokens/{id}"),
            &admin,
        )
        .json(&json!({"ip_restriction_ranges": ["10.1.0.0/16", "192.0.2.0/24"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(forward("10.1.2.3").await.unwrap().status(), 200);
    assert_eq!(
        forward("10.2.0.1").await.unwrap().status(),
        401,
        "outside the token's"
    );
    assert_eq!(
        forward("192.0.2.1").await.unwrap().status(),
        401,
        "outside the group's"
    );

    // Cleared again: anywhere.
    let response = app
        .api(Method::PUT, "/groups/acme", &admin)
        .form(&[("ip_restriction_ranges", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(forward("192.0.2.1").await.unwrap().status(), 200);

    // Only Owners and admins change a group's list.
    let developer = app.create_user("dev", false, "api").await;
    app.add_member(
        "dev",
        regauth::domain::NamespaceKind::Group,
        "acme",
        regauth::domain::Role::Maintainer,
    )
    .await;
    let response = app
        .api(Method::PUT, "/groups/acme", &developer)
        .json(&json!({"ip_restriction_ranges": "0.0.0.0/0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Both changes are in the audit trail.
    let updates = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.is_in(["group.update", "deploy_token.update"]))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(updates.len(), 3, "{updates:?}");
}

#[tokio::test]
async fn a_groups_ranges_take_a_json_list_beside_its_limits_as_a_tokens_do() {
    let (app, admin, _) = world(|_| {}, json!({})).await;
    // The list's entries were once refused as "ip_restriction_ranges is invalid" by the
    // reader of the group's other settings.
    let response = app
        .api(Method::PUT, "/groups/acme", &admin)
        .json(&json!({
            "ip_restriction_ranges": ["10.0.0.0/8", "192.0.2.0/24"],
            "require_token_expiry": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let group = json_of(response).await;
    assert_eq!(group["ip_restriction_ranges"], "10.0.0.0/8,192.0.2.0/24");
    assert_eq!(group["require_token_expiry"], true);
    assert_eq!(group["max_token_lifetime_days"], Value::Null);
    // Anything else that is not a scalar is still refused, naming the field.
    for body in [
        json!({"ip_restriction_ranges": {"a": 1}}),
        json!({"ip_restriction_ranges": "", "max_token_lifetime_days": [30]}),
    ] {
        let response = app
            .api(Method::PUT, "/groups/acme", &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert!(json_of(response).await.to_string().contains(" is invalid"));
    }
}

#[tokio::test]
async fn repository_patterns_limit_the_registry_grant_and_forward_auth() {
    let (app, _, token) = world(|_| {}, json!({"repository_patterns": "app,tools/*"})).await;
    let client = reqwest::Client::new();
    for (repository, actions) in [
        (
            "acme/web/app",
            json!([{"type": "repository", "name": "acme/web/app", "actions": ["pull", "push"]}]),
        ),
        (
            "acme/web/tools/x",
            json!([{"type": "repository", "name": "acme/web/tools/x", "actions": ["pull", "push"]}]),
        ),
        ("acme/web/other", json!([])),
        ("acme/web", json!([])),
        ("acme/web/app/../other", json!([])),
        ("acme/web/App", json!([])),
    ] {
        let access = granted(login(&app, &client, None, &token, repository).await).await;
        assert_eq!(access, actions, "{repository}");
    }
    // Packages of the project itself are beyond `app` and `tools/*`.
    let response = app
        .forward_auth(
            "GET",
            "/api/v4/projects/acme%2Fweb/packages/generic/x/1/x.tgz",
            Some((
                token["username"].as_str().unwrap(),
                token["token"].as_str().unwrap(),
            )),
        )
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_group_token_limited_to_one_project_reaches_its_packages_and_no_other() {
    let app = spawn_app_with(|_| {}).await;
    app.create_project_with_groups("acme/web").await;
    app.create_project("acme/other").await;
    let admin = app.create_user("root", true, "api").await;
    let response = app
        .api(Method::POST, "/groups/acme/deploy_tokens", &admin)
        .json(&json!({"name": "pkg", "scopes": ["read_package_registry", "read_registry"], "repository_patterns": ["web/**"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let token = json_of(response).await;
    let credentials = Some((
        token["username"].as_str().unwrap(),
        token["token"].as_str().unwrap(),
    ));
    for (uri, status) in [
        (
            "/api/v4/projects/acme%2Fweb/packages/generic/x/1/x.tgz",
            200,
        ),
        (
            "/api/v4/projects/acme%2Fother/packages/generic/x/1/x.tgz",
            403,
        ),
        ("/api/v4/groups/acme/-/packages/npm/x", 403),
    ] {
        assert_eq!(
            app.forward_auth("GET", uri, credentials).await.status(),
            status,
            "{uri}"
        );
    }
    let access = granted(login(&app, &app.client, None, &token, "acme/other/app").await).await;
    assert_eq!(access, json!([]));
}

#[tokio::test]
async fn a_workload_policy_takes_ranges_and_shows_them() {
    let app = spawn_app_with(|settings| {
        settings.oidc_issuers = vec![regauth::config::oidc::OidcIssuer {
            url: "https://gitlab.example.com".to_owned(),
            kind: regauth::config::oidc::IssuerKind::Generic,
            jwks_file: None,
        }];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let response = app
        .api(
            Method::POST,
            "/projects/acme%2Fweb/workload_identities",
            &admin,
        )
        .json(&json!({
            "name": "release",
            "issuer": "https://gitlab.example.com",
            "audience": "https://regauth.example.com",
            "conditions": {"project_path": "acme/web"},
            "scopes": ["read_registry"],
            "ip_restriction_ranges": "10.0.0.0/8"
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = json_of(response).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ip_restriction_ranges"], "10.0.0.0/8");
}

#[tokio::test]
async fn the_command_line_sets_ranges_and_patterns_on_tokens_groups_and_personal_tokens() {
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
        "--allow-from",
        "127.0.0.2/32",
        "--allow-from",
        "10.0.0.0/8,2001:db8::/32",
        "--repositories",
        "app,tools/*",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        created["ip_restriction_ranges"],
        "127.0.0.2/32,10.0.0.0/8,2001:db8::/32"
    );
    assert_eq!(created["repository_patterns"], json!(["app", "tools/*"]));
    // Bad input: one clear line, a non-zero exit, nothing created.
    for args in [
        &[
            "deploy-token",
            "create",
            "--project",
            "acme/web",
            "--name",
            "bad",
            "--scopes",
            "read_registry",
            "--allow-from",
            "10.0.0.0/33",
        ][..],
        &[
            "deploy-token",
            "create",
            "--project",
            "acme/web",
            "--name",
            "bad",
            "--scopes",
            "read_registry",
            "--repositories",
            "../web",
        ][..],
    ] {
        let output = cli.run(args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("ip_restriction_ranges") || stderr.contains("repository_patterns"),
            "{stderr}"
        );
    }
    let app = cli.spawn_app().await;
    let token = created;
    assert_eq!(
        login(&app, &client_from(3), None, &token, "acme/web/app")
            .await
            .status(),
        401
    );
    granted(login(&app, &client_from(2), None, &token, "acme/web/app").await).await;
    let id = token["id"].as_i64().unwrap().to_string();
    cli.ok(&["deploy-token", "update", &id, "--allow-from", ""]);
    granted(login(&app, &client_from(3), None, &token, "acme/web/app").await).await;
    cli.ok(&["group", "update", "acme", "--allow-from", "127.0.0.4"]);
    assert_eq!(
        login(&app, &client_from(3), None, &token, "acme/web/app")
            .await
            .status(),
        401
    );
    granted(login(&app, &client_from(4), None, &token, "acme/web/app").await).await;
    assert!(!cli
        .run(&["group", "update", "acme", "--allow-from", "nonsense"])
        .status
        .success());

    // A personal access token for the API, usable only from 127.0.0.5.
    cli.ok(&[
        "user",
        "create",
        "root",
        "--email",
        "root@example.com",
        "--admin",
    ]);
    let pat: Value = serde_json::from_str(&cli.ok(&[
        "user",
        "token",
        "create",
        "root",
        "--name",
        "ops",
        "--allow-from",
        "127.0.0.5",
        "--json",
    ]))
    .unwrap();
    assert_eq!(pat["ip_restriction_ranges"], "127.0.0.5/32");
    let secret = pat["token"].as_str().unwrap();
    let user_from = |last: u8| {
        client_from(last)
            .get(format!("{}/api/v4/user", app.address))
            .header("PRIVATE-TOKEN", secret)
            .send()
    };
    assert_eq!(user_from(5).await.unwrap().status(), 200);
    let refused = user_from(6).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        json_of(refused).await,
        json!({"message": "401 Unauthorized"})
    );
    // The admin token API shows the metadata.
    let described = json_of(
        client_from(5)
            .post(format!("{}/api/v4/admin/token", app.address))
            .header("PRIVATE-TOKEN", secret)
            .json(&json!({"token": token["token"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(described["ip_restriction_ranges"], "", "{described}");
    assert_eq!(
        described["repository_patterns"],
        json!(["app", "tools/*"]),
        "{described}"
    );
    let rows = address_refusals(&app, 3).await;
    assert!(
        rows.iter()
            .any(|row| row.details.contains("\"route\":\"api\"")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn workload_logins_exchanges_and_their_credentials_honour_the_policys_and_groups_ranges() {
    use regauth::config::oidc::{IssuerKind, OidcIssuer};
    use regauth::domain::workload_identity::WorkloadIdentityRequest;
    use regauth_test_support::oidc::{github_claims, FixtureIssuer};

    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    const AUDIENCE: &str = "https://regauth.example.com";
    let github = FixtureIssuer::new(GITHUB, "gh-key-1");
    let trusted = OidcIssuer {
        url: GITHUB.to_owned(),
        kind: IssuerKind::Github,
        jwks_file: Some(github.jwks_file.clone()),
    };
    let app = spawn_app_with(move |settings| {
        behind_proxy(settings);
        settings.oidc_issuers = vec![trusted];
    })
    .await;
    app.create_project_with_groups("acme/web").await;
    let owner = regauth::service::namespaces::find(
        app.store.as_ref(),
        regauth::domain::NamespaceKind::Project,
        &regauth::service::namespaces::NamespaceRef::Path("acme/web".into()),
    )
    .await
    .unwrap();
    let policy = regauth::service::workload_identity::create(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &owner,
        WorkloadIdentityRequest {
            name: "release".into(),
            issuer: GITHUB.into(),
            audience: AUDIENCE.into(),
            conditions: serde_json::from_value(json!({"repository_id": "74"})).unwrap(),
            scopes: vec!["read_registry".into(), "write_registry".into()],
            max_ttl: Some(600),
            ip_restriction_ranges: vec!["10.0.0.0/8".into()],
        },
        &app.settings.oidc_issuers,
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .policy;
    let username = policy.username();
    let oidc_token = github.sign(&github_claims(
        GITHUB,
        AUDIENCE,
        chrono::Utc::now().timestamp(),
    ));
    let direct = |forwarded: &'static str| {
        app.client
            .get(format!("{}/jwt/auth", app.address))
            .query(&[
                ("service", REGISTRY),
                ("scope", "repository:acme/web/app:pull"),
            ])
            .header("X-Forwarded-For", forwarded)
            .basic_auth(&username, Some(&oidc_token))
            .send()
    };
    assert_eq!(direct("192.0.2.1").await.unwrap().status(), 401);
    assert_eq!(direct("10.1.2.3").await.unwrap().status(), 200);

    // The token exchange: refused as an invalid grant from outside, accepted from inside.
    let exchange = |forwarded: &'static str| {
        app.client
            .post(format!("{}/oauth/token", app.address))
            .header("X-Forwarded-For", forwarded)
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", oidc_token.as_str()),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("resource", username.as_str()),
            ])
            .send()
    };
    let refused = exchange("192.0.2.1").await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(json_of(refused).await["error"], "invalid_grant");
    let exchanged = exchange("10.1.2.3").await.unwrap();
    assert_eq!(exchanged.status(), 200);
    let credential = json_of(exchanged).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The credential it minted carries the policy's ranges.
    let with_credential = |forwarded: &'static str| {
        app.client
            .get(format!("{}/jwt/auth", app.address))
            .query(&[
                ("service", REGISTRY),
                ("scope", "repository:acme/web/app:pull"),
            ])
            .header("X-Forwarded-For", forwarded)
            .basic_auth(&username, Some(&credential))
            .send()
    };
    assert_eq!(with_credential("192.0.2.1").await.unwrap().status(), 401);
    assert_eq!(with_credential("10.1.2.3").await.unwrap().status(), 200);

    // A group's list above the policy narrows it further.
    regauth::service::restrictions::set_group_ip_ranges(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &regauth::service::namespaces::NamespaceRef::Path("acme".into()),
        regauth::domain::address_range::IpRanges::parse_text("10.1.0.0/16").unwrap(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(direct("10.2.0.1").await.unwrap().status(), 401);
    assert_eq!(direct("10.1.2.3").await.unwrap().status(), 200);
    assert_eq!(with_credential("10.2.0.1").await.unwrap().status(), 401);
    let rows = address_refusals(&app, 4).await;
    assert!(
        rows.iter()
            .any(|row| row.details.contains("\"route\":\"token_exchange\"")),
        "{rows:?}"
    );
    assert!(rows.iter().all(|row| row.actor == username), "{rows:?}");
}

#[tokio::test]
async fn the_page_adds_a_restricted_token_shows_its_lists_and_explains_bad_ones() {
    use crate::web_pages::{
        client, get_page, hidden_csrf, hidden_field, input_tag, signed_in, user_with_password,
        PASSWORD,
    };
    let app = spawn_app_with(|_| {}).await;
    app.create_project_with_groups("acme/web").await;
    user_with_password(&app, "alice").await;
    app.add_member(
        "alice",
        regauth::domain::NamespaceKind::Project,
        "acme/web",
        regauth::domain::Role::Maintainer,
    )
    .await;
    let cookie = signed_in(&app, "alice", PASSWORD).await;
    let path = "/acme/web/-/settings/repository";
    let (_, page) = get_page(&app, &cookie, path).await;
    assert!(input_tag(&page, "deploy_token_ip_restriction_ranges")
        .contains("aria-describedby=\"ranges-hint\""));
    assert!(input_tag(&page, "deploy_token_repository_patterns")
        .contains("aria-describedby=\"patterns-hint\""));
    let post = |ranges: &'static str, patterns: &'static str, page: String| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let form = vec![
                ("authenticity_token", hidden_csrf(&page)),
                ("form_nonce", hidden_field(&page, "form_nonce")),
                ("name", "ci".to_owned()),
                ("scopes", "read_registry".to_owned()),
                ("ip_restriction_ranges", ranges.to_owned()),
                ("repository_patterns", patterns.to_owned()),
            ];
            let response = client()
                .post(format!("{}{path}/deploy_token/create", app.address))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, answer) = post("10.0.0.0/33", "../web", page.clone()).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer.contains("id=\"ranges-error\"") && answer.contains("id=\"patterns-error\""),
        "{answer}"
    );
    assert!(answer.contains("2 fields need fixing"), "{answer}");
    assert!(
        input_tag(&answer, "deploy_token_ip_restriction_ranges").contains("value=\"10.0.0.0/33\"")
    );
    assert!(input_tag(&answer, "deploy_token_ip_restriction_ranges").contains("autofocus"));

    let (status, _) = post("10.0.0.0/8, 192.0.2.7", "app, tools/*", page).await;
    assert!([200, 201, 303].contains(&status), "{status}");
    let tokens = app
        .store
        .list_deploy_tokens(&regauth::store::TokenQuery {
            owner_id: None,
            active_at: None,
            page: 1,
            per_page: 10,
        })
        .await
        .unwrap();
    assert_eq!(tokens.items.len(), 1);
    let token = &tokens.items[0];
    assert_eq!(
        token.restrictions.ip_ranges.to_text(),
        "10.0.0.0/8,192.0.2.7/32"
    );
    assert_eq!(
        token.restrictions.repository_patterns.texts(),
        ["app", "tools/*"]
    );
    let (status, detail) = get_page(
        &app,
        &cookie,
        &format!("/acme/web/-/deploy_tokens/{}", token.id),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        detail.contains("<dd id=\"token-allowed-from\">10.0.0.0/8, 192.0.2.7/32</dd>"),
        "{detail}"
    );
    assert!(
        detail.contains("<dd id=\"token-repositories\">app, tools/*</dd>"),
        "{detail}"
    );
}
