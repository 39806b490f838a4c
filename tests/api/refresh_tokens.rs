//! Refresh (identity) tokens on `/jwt/auth`: what docker keeps after `docker login` and sends
//! in the refresh_token grant, bound to its deploy token and service, stored as a digest,
//! limited, expired and swept.

use chrono::Utc;
use regauth::domain::NamespaceKind::{Group, Project};
use serde_json::json;

use crate::helpers::{jwt_claims, spawn_app, spawn_app_with};

const REGISTRY: &str = "container_registry";
const PROXY: &str = "dependency_proxy";

/// Logs in as docker does (no scope, offline_token=true); the 200 body.
pub(crate) async fn docker_login_response(
    app: &crate::helpers::TestApp,
    token: &crate::helpers::CreatedToken,
    service: &str,
) -> serde_json::Value {
    let response = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[
                ("account", &token.token.username),
                ("client_id", "docker"),
                ("offline_token", "true"),
                ("service", service),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Logs in as docker does and returns the refresh (identity) token.
async fn docker_login(
    app: &crate::helpers::TestApp,
    token: &crate::helpers::CreatedToken,
    service: &str,
) -> String {
    docker_login_response(app, token, service).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn refresh(
    app: &crate::helpers::TestApp,
    refresh_token: &str,
    service: &str,
    scope: &str,
) -> reqwest::Response {
    app.post_token(&[
        ("grant_type", "refresh_token"),
        ("client_id", "docker"),
        ("refresh_token", refresh_token),
        ("service", service),
        ("scope", scope),
    ])
    .await
}

#[tokio::test]
async fn a_refresh_token_grants_what_the_deploy_token_may_and_is_kept() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let refresh_token = docker_login(&app, &token, REGISTRY).await;

    let response = refresh(
        &app,
        &refresh_token,
        REGISTRY,
        "repository:acme/web:pull,push",
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["refresh_token"], refresh_token.as_str());
    assert_eq!(body["scope"], "repository:acme/web:pull");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], token.token.username.as_str());
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "acme/web", "actions": ["pull"]}])
    );
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_service() {
    let app = spawn_app().await;
    app.create_group("acme").await;
    let token = app
        .create_token(Group, "acme", &["read_registry", "write_registry"])
        .await;
    let refresh_token = docker_login(&app, &token, REGISTRY).await;
    assert_eq!(
        refresh(&app, &refresh_token, PROXY, "repository:acme/x:pull")
            .await
            .status(),
        401
    );
    assert_eq!(
        refresh(&app, &refresh_token, REGISTRY, "").await.status(),
        200
    );
}

#[tokio::test]
async fn revoking_or_expiring_the_deploy_token_ends_its_refresh_tokens_at_once() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let revoked = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let expired = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let revoked_refresh = docker_login(&app, &revoked, REGISTRY).await;
    let expired_refresh = docker_login(&app, &expired, REGISTRY).await;
    app.revoke(revoked.token.id).await;
    app.set_expiry(expired.token.id, Utc::now()).await;
    assert_eq!(
        refresh(&app, &revoked_refresh, REGISTRY, "").await.status(),
        401
    );
    assert_eq!(
        refresh(&app, &expired_refresh, REGISTRY, "").await.status(),
        401
    );
}

#[tokio::test]
async fn a_refresh_token_expires_after_its_own_lifetime() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let refresh_token = docker_login(&app, &token, REGISTRY).await;
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    entity::refresh_token::Entity::update_many()
        .col_expr(
            entity::refresh_token::Column::ExpiresAt,
            Expr::value(Utc::now()),
        )
        .filter(entity::refresh_token::Column::DeployTokenId.eq(token.token.id))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(
        refresh(&app, &refresh_token, REGISTRY, "").await.status(),
        401
    );
}

#[tokio::test]
async fn the_password_grant_returns_a_refresh_token_only_for_offline_access() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let form = |offline: bool| {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", token.token.username.as_str()),
            ("password", token.secret.as_str()),
            ("service", REGISTRY),
        ];
        if offline {
            form.push(("access_type", "offline"));
        }
        form
    };
    let online: serde_json::Value = app.post_token(&form(false)).await.json().await.unwrap();
    assert!(online.get("refresh_token").is_none());
    let offline: serde_json::Value = app.post_token(&form(true)).await.json().await.unwrap();
    let refresh_token = offline["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&app, refresh_token, REGISTRY, "repository:acme/web:pull")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_refresh_token_is_stored_only_as_a_digest() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let refresh_token = docker_login(&app, &token, REGISTRY).await;
    use sea_orm::EntityTrait;
    let rows = entity::refresh_token::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].token_digest, refresh_token);
    assert!(!rows[0].token_digest.contains("regauth-rt-"));
}

#[tokio::test]
async fn no_refresh_token_is_stored_when_the_service_is_refused() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let response = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", &token.token.username),
            ("password", &token.secret),
            ("service", &"x".repeat(300)),
            ("access_type", "offline"),
        ])
        .await;
    assert_eq!(response.status(), 404);
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        entity::refresh_token::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn revoking_a_deploy_token_removes_its_refresh_tokens() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    docker_login(&app, &token, REGISTRY).await;
    docker_login(&app, &token, REGISTRY).await;
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        entity::refresh_token::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        2
    );
    app.revoke(token.token.id).await;
    assert_eq!(
        entity::refresh_token::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        0
    );
}

async fn refresh_rows(app: &crate::helpers::TestApp, deploy_token_id: i64) -> u64 {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    entity::refresh_token::Entity::find()
        .filter(entity::refresh_token::Column::DeployTokenId.eq(deploy_token_id))
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn logins_beyond_the_refresh_token_limit_remove_the_oldest() {
    let app = spawn_app_with(|settings| settings.tokens.refresh_tokens_per_deploy_token = 3).await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let other = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let other_refresh = docker_login(&app, &other, REGISTRY).await;
    let mut issued = Vec::new();
    for _ in 0..5 {
        issued.push(docker_login(&app, &token, REGISTRY).await);
    }
    assert_eq!(refresh_rows(&app, token.token.id).await, 3);
    for (index, refresh_token) in issued.iter().enumerate() {
        let expected = if index < 2 { 401 } else { 200 };
        assert_eq!(
            refresh(&app, refresh_token, REGISTRY, "").await.status(),
            expected,
            "refresh token #{index}"
        );
    }
    // Another deploy token's refresh tokens are not counted against this one.
    assert_eq!(refresh_rows(&app, other.token.id).await, 1);
    assert_eq!(
        refresh(&app, &other_refresh, REGISTRY, "").await.status(),
        200
    );
}

#[tokio::test]
async fn expired_refresh_tokens_are_swept_by_the_background_task() {
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let stale = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let fresh = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    docker_login(&app, &stale, REGISTRY).await;
    docker_login(&app, &fresh, REGISTRY).await;
    entity::refresh_token::Entity::update_many()
        .col_expr(
            entity::refresh_token::Column::ExpiresAt,
            Expr::value(Utc::now() - chrono::TimeDelta::minutes(1)),
        )
        .filter(entity::refresh_token::Column::DeployTokenId.eq(stale.token.id))
        .exec(&app.db)
        .await
        .unwrap();
    // A replica starting on this database sweeps at once (and hourly after that); nobody
    // logs in with the stale token, so only the sweep can remove its row.
    let database_url = app.settings.database.url.clone();
    let keys_dir = app.settings.signing.keys_dir.clone();
    let _replica = spawn_app_with(move |settings| {
        settings.database.url = database_url;
        settings.signing.keys_dir = keys_dir;
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while refresh_rows(&app, stale.token.id).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired refresh token was not swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(refresh_rows(&app, fresh.token.id).await, 1);
}
