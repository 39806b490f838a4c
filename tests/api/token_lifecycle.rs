//! Issue #27, items 3 and 4 through the API: the lifetime policy of new tokens (instance and
//! group limits, refusals naming them, PAT defaults) and secret rotation (same token, new
//! secret, the old one working for the grace period and refused after it, revocation ending
//! both, audit), on SQLite and PostgreSQL alike.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use regauth::domain::NamespaceKind::Project;
use regauth::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with, TestApp};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// acme (group) / acme/web (project), acme/platform/infra below a subgroup, and an admin.
async fn world(customise: impl FnOnce(&mut regauth::config::Settings)) -> (TestApp, String) {
    let app = spawn_app_with(customise).await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/platform/infra").await;
    let admin = app.create_user("root", true, "api").await;
    (app, admin)
}

fn day(days: i64) -> String {
    (Utc::now() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

async fn create_token(app: &TestApp, pat: &str, owner: &str, body: Value) -> reqwest::Response {
    let (kind, id) = owner.split_once(':').unwrap();
    app.api(
        Method::POST,
        &format!("/{kind}/{}/deploy_tokens", id.replace('/', "%2F")),
        pat,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

/// Creates a deploy token of acme/web through the API; the answer (with its secret).
async fn web_token(app: &TestApp, pat: &str, body: Value) -> Value {
    let response = create_token(app, pat, "projects:acme/web", body).await;
    assert_eq!(response.status(), 201, "create");
    json_of(response).await
}

/// A token request for a pull of acme/web/app with these credentials: its status.
async fn pull_status(app: &TestApp, username: &str, secret: &str) -> u16 {
    app.get_token(
        Some((username, secret)),
        &[
            ("service", app.settings.registry.service.as_str()),
            ("scope", "repository:acme/web/app:pull"),
        ],
    )
    .await
    .status()
    .as_u16()
}

/// Logs in as docker does (`offline_token=true`); the refresh (identity) token.
async fn refresh_token_of(app: &TestApp, username: &str, secret: &str) -> String {
    let response = app
        .get_token(
            Some((username, secret)),
            &[
                ("account", username),
                ("client_id", "docker"),
                ("offline_token", "true"),
                ("service", app.settings.registry.service.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// A pull of acme/web/app with a refresh token: its status.
async fn refresh_status(app: &TestApp, refresh_token: &str) -> u16 {
    app.post_token(&[
        ("grant_type", "refresh_token"),
        ("client_id", "docker"),
        ("refresh_token", refresh_token),
        ("service", app.settings.registry.service.as_str()),
        ("scope", "repository:acme/web/app:pull"),
    ])
    .await
    .status()
    .as_u16()
}

async fn rotate(app: &TestApp, pat: &str, token_id: i64, body: Value) -> reqwest::Response {
    app.api(
        Method::POST,
        &format!("/projects/acme%2Fweb/deploy_tokens/{token_id}/rotate"),
        pat,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

fn error_text(body: &Value, field: &str) -> String {
    body["message"][field][0]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_new_deploy_token_past_the_instance_limit_is_refused_naming_the_limit() {
    let (app, admin) = world(|settings| {
        settings.tokens.lifetime.max_days = Some(30);
    })
    .await;
    let body = |expires_at: Option<String>| json!({"name": "ci", "scopes": ["read_registry"], "expires_at": expires_at});
    let response = create_token(&app, &admin, "projects:acme/web", body(Some(day(32)))).await;
    assert_eq!(response.status(), 400);
    let message = error_text(&json_of(response).await, "expires_at");
    assert!(message.contains("at most 30 days"), "{message}");
    assert!(
        message.contains("max_token_lifetime_days is 30, the instance setting"),
        "{message}"
    );

    // No expiry where the limit requires one: refused too, never a silent default.
    let response = create_token(&app, &admin, "projects:acme/web", body(None)).await;
    assert_eq!(response.status(), 400);
    let message = error_text(&json_of(response).await, "expires_at");
    assert!(message.starts_with("is required"), "{message}");

    // The date 30 days on is within the limit.
    let response = create_token(&app, &admin, "projects:acme/web", body(Some(day(30)))).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_groups_limit_applies_below_it_is_set_by_its_owner_and_can_only_be_stricter() {
    let (app, admin) = world(|settings| {
        settings.tokens.lifetime.max_days = Some(90);
    })
    .await;
    let owner = app.create_user("olga", false, "api").await;
    app.add_member(
        "olga",
        regauth::domain::NamespaceKind::Group,
        "acme",
        Role::Owner,
    )
    .await;
    let maintainer = app.create_user("max", false, "api").await;
    app.add_member(
        "max",
        regauth::domain::NamespaceKind::Group,
        "acme",
        Role::Maintainer,
    )
    .await;
    // An existing token without expiry, created before any group limit.
    let existing = web_token(
        &app,
        &admin,
        json!({"name": "old", "scopes": ["read_registry"], "expires_at": day(80)}),
    )
    .await;

    let put = |pat: &str, body: Value| app.api(Method::PUT, "/groups/acme", pat).json(&body).send();
    assert_eq!(
        put(&maintainer, json!({"max_token_lifetime_days": 30}))
            .await
            .unwrap()
            .status(),
        403
    );
    let response = put(&owner, json!({"max_token_lifetime_days": 120}))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let message = error_text(&json_of(response).await, "max_token_lifetime_days");
    assert!(message.contains("at most 90"), "{message}");
    assert!(message.contains("the instance setting"), "{message}");

    let response = put(&owner, json!({"max_token_lifetime_days": 30}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let group = json_of(response).await;
    assert_eq!(group["full_path"], "acme");
    assert_eq!(group["max_token_lifetime_days"], 30);
    assert_eq!(group["require_token_expiry"], false);
    let fetched = json_of(
        app.api(Method::GET, "/groups/acme", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched["max_token_lifetime_days"], 30);

    // A project below the group, and a project below a subgroup, both get the group's limit.
    for owner_path in [
        "projects:acme/web",
        "projects:acme/platform/infra",
        "groups:acme/platform",
    ] {
        let response = create_token(
            &app,
            &admin,
            owner_path,
            json!({"name": "ci", "scopes": ["read_registry"], "expires_at": day(31)}),
        )
        .await;
        assert_eq!(response.status(), 400, "{owner_path}");
        let message = error_text(&json_of(response).await, "expires_at");
        assert!(
            message.contains("the setting of group acme"),
            "{owner_path}: {message}"
        );
    }
    // A subgroup can only be stricter than its parent.
    let response = app
        .api(Method::PUT, "/groups/acme%2Fplatform", &admin)
        .json(&json!({"max_token_lifetime_days": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let message = error_text(&json_of(response).await, "max_token_lifetime_days");
    assert!(message.contains("group acme"), "{message}");

    // The existing token is unaffected: it keeps its 80 days and still works.
    let token = json_of(
        app.api(
            Method::GET,
            &format!("/projects/acme%2Fweb/deploy_tokens/{}", existing["id"]),
            &admin,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(token["expires_at"], existing["expires_at"]);
    assert_eq!(
        pull_status(
            &app,
            existing["username"].as_str().unwrap(),
            existing["token"].as_str().unwrap()
        )
        .await,
        200
    );

    // require_token_expiry through a form body, as curl --data sends it.
    let response = app
        .api(Method::PUT, "/groups/acme", &owner)
        .form(&[
            ("max_token_lifetime_days", ""),
            ("require_token_expiry", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let group = json_of(response).await;
    assert_eq!(group["max_token_lifetime_days"], Value::Null);
    assert_eq!(group["require_token_expiry"], true);
    let response = create_token(
        &app,
        &admin,
        "projects:acme/web",
        json!({"name": "forever", "scopes": ["read_registry"]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let message = error_text(&json_of(response).await, "expires_at");
    // Both require an expiry; the refusal names the stricter statement, the instance's maximum.
    assert!(message.starts_with("is required"), "{message}");
    assert!(
        message.contains("max_token_lifetime_days is 90, the instance setting"),
        "{message}"
    );
    // The instance's 90 days still hold below the group.
    let response = create_token(
        &app,
        &admin,
        "projects:acme/web",
        json!({"name": "ci", "scopes": ["read_registry"], "expires_at": day(60)}),
    )
    .await;
    assert_eq!(response.status(), 201);

    // The changes are in the audit trail, with who made them.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let records = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("group.token_policy"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|record| record.actor == "olga"));
    assert!(records[0]
        .details
        .contains("\"max_token_lifetime_days\":30"));
}

#[tokio::test]
async fn a_rotated_token_keeps_its_identity_and_its_old_secret_works_only_for_the_grace_period() {
    let (app, admin) = world(|settings| {
        settings.tokens.rotation_grace = StdDuration::from_secs(3600);
        settings.tokens.lifetime.max_days = Some(60);
    })
    .await;
    let created = web_token(&app, &admin, json!({"name": "ci", "username": "pipeline", "scopes": ["read_registry", "write_registry"], "expires_at": day(10)})).await;
    let id = created["id"].as_i64().unwrap();
    let old_secret = created["token"].as_str().unwrap().to_owned();
    // Used once, so that the server's cache holds it under the old secret.
    assert_eq!(pull_status(&app, "pipeline", &old_secret).await, 200);
    // docker login's identity (refresh) token, obtained with the old secret.
    let old_refresh = refresh_token_of(&app, "pipeline", &old_secret).await;

    // More grace than the instance allows, or an expiry past the limit: refused, nothing changes.
    let response = rotate(&app, &admin, id, json!({"grace_period_seconds": 7200})).await;
    assert_eq!(response.status(), 400);
    let message = error_text(&json_of(response).await, "grace_period_seconds");
    assert!(
        message.contains("at most 3600 (token_rotation_grace"),
        "{message}"
    );
    let response = rotate(&app, &admin, id, json!({"expires_at": day(61)})).await;
    assert_eq!(response.status(), 400);
    assert!(error_text(&json_of(response).await, "expires_at")
        .contains("max_token_lifetime_days is 60"));
    assert_eq!(pull_status(&app, "pipeline", &old_secret).await, 200);

    let grace = 3;
    let started = std::time::Instant::now();
    let response = rotate(
        &app,
        &admin,
        id,
        json!({"grace_period_seconds": grace, "expires_at": day(50)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated = json_of(response).await;
    assert_eq!(rotated["id"], id);
    assert_eq!(rotated["username"], "pipeline");
    assert_eq!(
        rotated["scopes"],
        json!(["read_registry", "write_registry"])
    );
    assert_eq!(rotated["expires_at"], format!("{}T00:00:00.000Z", day(50)));
    assert!(rotated["rotated_at"].is_string());
    assert!(rotated["previous_token_expires_at"].is_string());
    let new_secret = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    // The current format: prefix and checksum.
    assert!(new_secret.starts_with("gldt-"), "{new_secret}");
    assert!(app.settings.tokens.formats().may_be(
        &new_secret,
        regauth::domain::token_format::TokenKind::DeployToken
    ));

    // Within the grace period both secrets work; after it only the new one. A refresh token
    // lives as long as the secret it was obtained with.
    assert_eq!(pull_status(&app, "pipeline", &new_secret).await, 200);
    assert_eq!(pull_status(&app, "pipeline", &old_secret).await, 200);
    assert_eq!(refresh_status(&app, &old_refresh).await, 200);
    let new_refresh = refresh_token_of(&app, "pipeline", &new_secret).await;
    let left = StdDuration::from_secs(grace + 1).saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    assert_eq!(pull_status(&app, "pipeline", &old_secret).await, 401);
    assert_eq!(pull_status(&app, "pipeline", &new_secret).await, 200);
    assert_eq!(refresh_status(&app, &old_refresh).await, 401);
    assert_eq!(refresh_status(&app, &new_refresh).await, 200);

    // The rotation is audited: who, the grace, until when.
    let events = app.store.audit_events_for_deploy_token(id).await.unwrap();
    let record = events
        .iter()
        .find(|event| event.action.as_str() == "deploy_token.rotate")
        .expect("a rotation record");
    assert_eq!(record.actor, "root");
    assert_eq!(record.details["grace_period_seconds"], grace);
    assert_eq!(record.details["name"], "ci");
    assert!(record.details["previous_secret_expires_at"].is_string());
    assert!(!record.details.to_string().contains(&new_secret));
    assert!(!record.details.to_string().contains(&old_secret));

    // Rotating again within a grace: revocation ends every secret at once.
    let again = json_of(rotate(&app, &admin, id, json!({"grace_period_seconds": 600})).await).await;
    let newest = again["token"].as_str().unwrap().to_owned();
    assert_eq!(
        pull_status(&app, "pipeline", &new_secret).await,
        200,
        "in its grace"
    );
    app.revoke(id).await;
    assert_eq!(pull_status(&app, "pipeline", &new_secret).await, 401);
    assert_eq!(pull_status(&app, "pipeline", &newest).await, 401);
    // A revoked token cannot be rotated.
    assert_eq!(rotate(&app, &admin, id, json!({})).await.status(), 400);
}

#[tokio::test]
async fn without_a_grace_period_the_old_secret_is_refused_at_once() {
    let (app, admin) = world(|_| {}).await;
    let created = web_token(
        &app,
        &admin,
        json!({"name": "ci", "scopes": ["read_registry"]}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let username = created["username"].as_str().unwrap().to_owned();
    let old_secret = created["token"].as_str().unwrap().to_owned();
    assert_eq!(pull_status(&app, &username, &old_secret).await, 200);
    // A maintainer may rotate; a developer may not; a token of another project is absent.
    let dev = app.create_user("dev", false, "api").await;
    app.add_member("dev", Project, "acme/web", Role::Developer)
        .await;
    assert_eq!(rotate(&app, &dev, id, json!({})).await.status(), 403);
    let other = app
        .api(
            Method::POST,
            &format!("/projects/acme%2Fplatform%2Finfra/deploy_tokens/{id}/rotate"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    // Parameters in a form body, as curl --data sends them.
    let response = app
        .api(
            Method::POST,
            &format!("/projects/acme%2Fweb/deploy_tokens/{id}/rotate"),
            &admin,
        )
        .form(&[("grace_period_seconds", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated = json_of(response).await;
    let new_secret = rotated["token"].as_str().unwrap();
    assert_eq!(pull_status(&app, &username, &old_secret).await, 401);
    assert_eq!(pull_status(&app, &username, new_secret).await, 200);
    // The token never expired: it still does not.
    assert_eq!(rotated["expires_at"], Value::Null);
}

#[tokio::test]
async fn a_rotated_gitlab_deploy_token_hands_ci_its_new_secret() {
    let (app, admin) = world(|_| {}).await;
    let created = web_token(
        &app,
        &admin,
        json!({"name": "gitlab-deploy-token", "scopes": ["read_registry"]}),
    )
    .await;
    let rotated =
        json_of(rotate(&app, &admin, created["id"].as_i64().unwrap(), json!({})).await).await;
    let credentials = json_of(
        app.api(
            Method::GET,
            "/projects/acme%2Fweb/ci_deploy_credentials",
            &admin,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(credentials["CI_DEPLOY_PASSWORD"], rotated["token"]);
}

#[tokio::test]
async fn a_personal_access_token_rotates_itself_or_by_id_keeping_its_id() {
    let (app, admin) = world(|settings| {
        settings.tokens.rotation_grace = StdDuration::from_secs(600);
    })
    .await;
    let alice = app.create_user("alice", false, "api").await;
    let reader = app.create_user("rita", false, "read_api").await;
    let whoami = |pat: String| {
        let request = app.api(Method::GET, "/user", &pat);
        async move { request.send().await.unwrap().status().as_u16() }
    };

    // Without grace (asked for 0): the old secret stops at once.
    let response = app
        .api(Method::POST, "/personal_access_tokens/self/rotate", &alice)
        .query(&[("grace_period_seconds", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated = json_of(response).await;
    let id = rotated["id"].as_i64().unwrap();
    assert_eq!(rotated["name"], "test");
    assert_eq!(rotated["scopes"], json!(["api"]));
    assert_eq!(rotated["active"], true);
    let second = rotated["token"].as_str().unwrap().to_owned();
    assert!(second.starts_with("glpat-"), "{second}");
    assert_eq!(whoami(alice.clone()).await, 401);
    assert_eq!(whoami(second.clone()).await, 200);

    // By id, with the instance's grace (600 s): both work; the id stays.
    let rotated = json_of(
        app.api(
            Method::POST,
            &format!("/personal_access_tokens/{id}/rotate"),
            &second,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(rotated["id"], id);
    let third = rotated["token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(second.clone()).await, 200);
    assert_eq!(whoami(third.clone()).await, 200);
    // The replaced secret, still in its grace, may not rotate its token (a leaked old secret
    // must not take the token over).
    let response = app
        .api(Method::POST, "/personal_access_tokens/self/rotate", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Someone else's token is absent; an admin may; a read-only token may not rotate itself.
    let bob = app.create_user("bob", false, "api").await;
    let response = app
        .api(
            Method::POST,
            &format!("/personal_access_tokens/{id}/rotate"),
            &bob,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .api(
            Method::POST,
            &format!("/personal_access_tokens/{id}/rotate"),
            &admin,
        )
        .json(&json!({"grace_period_seconds": 0, "expires_at": day(20)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated = json_of(response).await;
    assert_eq!(rotated["expires_at"], day(20));
    assert_eq!(whoami(third).await, 401);
    let response = app
        .api(Method::POST, "/personal_access_tokens/self/rotate", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let records = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("personal_access_token.rotate"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].actor, "root");
}

#[tokio::test]
async fn a_personal_access_token_gets_the_longest_allowed_expiry_when_none_is_given() {
    let (app, _) = world(|settings| {
        settings.tokens.lifetime.max_days = Some(30);
    })
    .await;
    let now = Utc::now();
    let (token, _) = regauth::service::users::create_personal_access_token(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &app.settings.tokens.formats(),
        "root",
        "script",
        vec![regauth::domain::ApiScope::Api],
        None,
        app.settings.tokens.lifetime,
        now,
    )
    .await
    .unwrap();
    let expected = (now.date_naive() + Duration::days(30))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(token.expires_at, Some(expected));
    let error = regauth::service::users::create_personal_access_token(
        app.store.as_ref(),
        &regauth::service::caller::Caller::operator(),
        &app.settings.tokens.formats(),
        "root",
        "script",
        vec![regauth::domain::ApiScope::Api],
        Some(now + Duration::days(31)),
        app.settings.tokens.lifetime,
        now,
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("max_token_lifetime_days is 30"),
        "{error}"
    );
}

#[tokio::test]
async fn the_command_line_sets_group_limits_and_rotates_tokens() {
    let cli = crate::cli::Cli::new().await;
    std::fs::write(
        cli.dir.path().join("regauth.toml"),
        "max_token_lifetime_days = 30\ntoken_rotation_grace = \"1h\"\n",
    )
    .unwrap();
    let app = cli.spawn_app().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let error = cli.fails(&["group", "update", "acme", "--max-token-lifetime-days", "40"]);
    assert!(error.contains("at most 30"), "{error}");
    let printed = cli.ok(&[
        "group",
        "update",
        "acme",
        "--max-token-lifetime-days",
        "20",
        "--require-token-expiry",
        "true",
    ]);
    assert!(
        printed.contains("\"max_token_lifetime_days\":20"),
        "{printed}"
    );
    let create = |expires_at: String| {
        cli.run(&[
            "deploy-token",
            "create",
            "--project",
            "acme/web",
            "--name",
            "ci",
            "--scopes",
            "read_registry",
            "--expires-at",
            &expires_at,
            "--json",
        ])
    };
    let refused = create(day(25));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the setting of group acme"), "{stderr}");
    let created: Value = serde_json::from_slice(&create(day(10)).stdout).unwrap();
    let id = created["id"].to_string();
    let username = created["username"].as_str().unwrap();
    let old_secret = created["token"].as_str().unwrap();

    let rotated: Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "rotate",
        &id,
        "--grace-period",
        "600",
        "--expires-at",
        &day(15),
        "--json",
    ]))
    .unwrap();
    assert_eq!(rotated["id"], created["id"]);
    assert_eq!(rotated["expires_at"], format!("{}T00:00:00.000Z", day(15)));
    let new_secret = rotated["token"].as_str().unwrap();
    assert_eq!(pull_status(&app, username, old_secret).await, 200);
    assert_eq!(pull_status(&app, username, new_secret).await, 200);
    let error = cli.fails(&["deploy-token", "rotate", &id, "--grace-period", "7200"]);
    assert!(error.contains("token_rotation_grace"), "{error}");
    let plain = cli.ok(&["deploy-token", "rotate", &id, "--grace-period", "0"]);
    assert!(plain.contains("previous: refused from now on"), "{plain}");
    // The server sees another process's write at its next request (SQLite), or within its
    // trust window of about a second (PostgreSQL).
    eventually(
        "the previous secret refused after a rotation without grace",
        StdDuration::from_secs(3),
        async || (pull_status(&app, username, new_secret).await == 401).then_some(()),
    )
    .await;

    // A personal access token, by id.
    cli.ok(&["user", "create", "alice", "--email", "alice@example.com"]);
    let pat: Value = serde_json::from_str(&cli.ok(&[
        "user", "token", "create", "alice", "--name", "script", "--json",
    ]))
    .unwrap();
    // No expiry given, 30 days at most on this instance: the longest allowed, as a date.
    assert!(
        pat["expires_at"].as_str().unwrap().starts_with(&day(30)),
        "{pat}"
    );
    let rotated: Value = serde_json::from_str(&cli.ok(&[
        "user",
        "token",
        "rotate",
        &pat["id"].to_string(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(rotated["id"], pat["id"]);
    assert_ne!(rotated["token"], pat["token"]);
    let whoami = |secret: &str| app.api(Method::GET, "/user", secret).send();
    assert_eq!(
        whoami(pat["token"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        whoami(rotated["token"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        200
    );
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_pages_show_the_limit_and_rotate_a_token_showing_its_new_secret_once() {
    use crate::web_pages::{get_page, signed_in, user_with_password, PASSWORD};
    let (app, admin) = world(|settings| {
        settings.tokens.rotation_grace = StdDuration::from_secs(900);
    })
    .await;
    user_with_password(&app, "mia").await;
    app.add_member("mia", Project, "acme/web", Role::Maintainer)
        .await;
    let response = app
        .api(Method::PUT, "/groups/acme", &admin)
        .json(&json!({"max_token_lifetime_days": 14}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = signed_in(&app, "mia", PASSWORD).await;

    // The add form says which limit applies, and caps the date input.
    let (status, settings) = get_page(&app, &cookie, "/acme/web/-/settings/repository").await;
    assert_eq!(status, 200);
    assert!(
        settings.contains("tokens must expire within 14 days (max_token_lifetime_days, the setting of group acme)"),
        "{settings}"
    );
    assert!(
        settings.contains(&format!("max=\"{}", day(14))),
        "date input capped"
    );

    let created = web_token(
        &app,
        &admin,
        json!({"name": "ci", "scopes": ["read_registry"], "expires_at": day(7)}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let username = created["username"].as_str().unwrap();
    let old_secret = created["token"].as_str().unwrap();
    let page_path = format!("/acme/web/-/deploy_tokens/{id}");
    let (status, page) = get_page(&app, &cookie, &page_path).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"confirm-rotate\""), "the Rotate button");
    assert!(
        page.contains("max=\"900\""),
        "the grace is capped by the setting"
    );

    let post = |form: Vec<(&'static str, String)>| {
        reqwest::Client::new()
            .post(format!("{}{page_path}/rotate", app.address))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let csrf = hidden(&page, "authenticity_token");
    // Past the group's limit: the page says so, and nothing changes.
    let response = post(vec![
        ("authenticity_token", csrf.clone()),
        ("form_nonce", hidden(&page, "form_nonce")),
        ("grace_period_seconds", "60".into()),
        ("expires_at", day(20)),
    ])
    .await
    .unwrap();
    assert_eq!(response.status(), 422);
    let answer = response.text().await.unwrap();
    assert!(answer.contains("max_token_lifetime_days is 14"), "{answer}");
    assert_eq!(pull_status(&app, username, old_secret).await, 200);

    let (_, page) = get_page(&app, &cookie, &page_path).await;
    let nonce = hidden(&page, "form_nonce");
    let form = vec![
        ("authenticity_token", csrf.clone()),
        ("form_nonce", nonce.clone()),
        ("grace_period_seconds", "60".into()),
        ("expires_at", day(10)),
    ];
    let response = post(form.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer = response.text().await.unwrap();
    let new_secret = hidden_input(&answer, "deploy-token-secret");
    assert_ne!(new_secret, old_secret);
    assert!(
        answer.contains("The previous secret works until"),
        "{answer}"
    );
    assert!(
        answer.contains("id=\"token-rotated\""),
        "the detail view shows the rotation"
    );
    assert!(
        answer.contains("rotated (the previous secret works 60 s more"),
        "audit row"
    );
    assert_eq!(pull_status(&app, username, old_secret).await, 200);
    assert_eq!(pull_status(&app, username, &new_secret).await, 200);
    // A reload re-posts the form: nothing is rotated again, no secret is shown.
    let response = post(form).await.unwrap();
    let again = response.text().await.unwrap();
    assert!(again.contains("already submitted"), "{again}");
    assert!(!again.contains("deploy-token-secret"));
    assert_eq!(pull_status(&app, username, &new_secret).await, 200);
}

fn hidden_input(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" readonly value=\"");
    let start = html.find(&marker).expect("the secret field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_leaked_old_secret_revokes_the_token_in_its_grace_and_not_after() {
    let (app, admin) = world(|settings| {
        settings.tokens.rotation_grace = StdDuration::from_secs(600);
    })
    .await;
    let create = |name: &'static str| {
        create_token(
            &app,
            &admin,
            "projects:acme/web",
            json!({"name": name, "scopes": ["read_registry"]}),
        )
    };
    let report = |secret: String| {
        app.api(Method::DELETE, "/admin/token", &admin)
            .json(&json!({"token": secret}))
            .send()
    };
    // Rotated without grace: its old secret is dead, a report of it changes nothing.
    let quiet = json_of(create("quiet").await).await;
    let rotated = json_of(
        rotate(
            &app,
            &admin,
            quiet["id"].as_i64().unwrap(),
            json!({"grace_period_seconds": 0}),
        )
        .await,
    )
    .await;
    // The admin token API says which secret it is.
    let described = json_of(
        app.api(Method::POST, "/admin/token", &admin)
            .json(&json!({"token": quiet["token"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(described["id"], quiet["id"]);
    assert_eq!(described["presented_secret"], "previous");
    assert!(described["previous_token_expires_at"].is_string());
    let response = report(quiet["token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let username = quiet["username"].as_str().unwrap();
    assert_eq!(
        pull_status(&app, username, rotated["token"].as_str().unwrap()).await,
        200
    );
    // Within its grace, the old secret still opens the token: the report revokes it.
    let live = json_of(create("live").await).await;
    let rotated =
        json_of(rotate(&app, &admin, live["id"].as_i64().unwrap(), json!({})).await).await;
    let response = report(live["token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let username = live["username"].as_str().unwrap();
    assert_eq!(
        pull_status(&app, username, rotated["token"].as_str().unwrap()).await,
        401
    );
}

#[tokio::test]
async fn a_rotation_that_changes_the_expiry_restarts_its_expiry_notices() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
    let (app, admin) = world(|_| {}).await;
    let created = web_token(
        &app,
        &admin,
        json!({"name": "ci", "scopes": ["read_registry"], "expires_at": day(20)}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let user = app
        .store
        .find_user_by_username("root")
        .await
        .unwrap()
        .unwrap();
    // The 30-day notice of the old date went out.
    entity::expiry_notification::ActiveModel {
        deploy_token_id: Set(id),
        window_days: Set(30),
        user_id: Set(user.id),
        email: Set(user.email.clone()),
        claimed_at: Set(Utc::now()),
        sent_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    let notices = || {
        entity::expiry_notification::Entity::find()
            .filter(entity::expiry_notification::Column::DeployTokenId.eq(id))
            .count(&app.db)
    };
    // Same expiry: the notices stand.
    assert_eq!(rotate(&app, &admin, id, json!({})).await.status(), 200);
    assert_eq!(notices().await.unwrap(), 1);
    // A new expiry: its own windows are mailed again as the days pass.
    assert_eq!(
        rotate(&app, &admin, id, json!({"expires_at": day(200)}))
            .await
            .status(),
        200
    );
    assert_eq!(notices().await.unwrap(), 0);
}

/// Two `regauth serve` replicas on one database, both holding the token in their caches: a
/// rotation through one (no grace) is seen by the other by the time the API answers, and a
/// rotation by the CLI in a third process by both at once (SQLite) or, on PostgreSQL, by the
/// time the CLI returns (it waits out the replicas' trust window, as a revocation does).
#[tokio::test]
async fn replicas_refuse_the_old_secret_once_a_rotation_has_answered() {
    use crate::cache::{create_token as cli_token, start_server, token_status, Token};
    let cli = crate::cli::Cli::new().await;
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
    let token = cli_token(&cli, "acme/web", "ci");
    let first = start_server(&cli);
    let second = start_server(&cli);
    let scope = "repository:acme/web:pull";
    for server in [&first, &second, &first, &second] {
        assert_eq!(token_status(server, &token, scope).await, 200);
    }
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/v4/projects/acme%2Fweb/deploy_tokens/{}/rotate",
            first.address, token.id
        ))
        .header("PRIVATE-TOKEN", &pat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let renewed = Token {
        id: token.id,
        username: token.username.clone(),
        secret: rotated["token"].as_str().unwrap().to_owned(),
    };
    for server in [&second, &first] {
        assert_eq!(token_status(server, &token, scope).await, 401, "old secret");
        assert_eq!(
            token_status(server, &renewed, scope).await,
            200,
            "new secret"
        );
    }
    // Again from the command line, another process.
    let printed: Value =
        serde_json::from_str(&cli.ok(&["deploy-token", "rotate", &token.id.to_string(), "--json"]))
            .unwrap();
    let newest = Token {
        id: token.id,
        username: token.username.clone(),
        secret: printed["token"].as_str().unwrap().to_owned(),
    };
    for server in [&first, &second] {
        assert_eq!(
            token_status(server, &renewed, scope).await,
            401,
            "replaced secret"
        );
        assert_eq!(
            token_status(server, &newest, scope).await,
            200,
            "newest secret"
        );
    }
}
