//! `GET /api/v4/projects/:id/ci_deploy_credentials`: the `CI_DEPLOY_USER` /
//! `CI_DEPLOY_PASSWORD` a CI system injects into a project's jobs (DOMAIN.md "The
//! gitlab-deploy-token name"), and proof that no other token's secret is recoverable.

use regauth::domain::NamespaceKind::{Group, Project};
use regauth::domain::Role;
use reqwest::Method;
use sea_orm::EntityTrait;

use crate::helpers::{spawn_app, spawn_app_with, CreatedToken, TestApp};

const CI_NAME: &str = "gitlab-deploy-token";

async fn ci_credentials(app: &TestApp, project: &str, pat: &str) -> reqwest::Response {
    let id = project.replace('/', "%2F");
    app.api(
        Method::GET,
        &format!("/projects/{id}/ci_deploy_credentials"),
        pat,
    )
    .send()
    .await
    .unwrap()
}

async fn credentials_ok(app: &TestApp, project: &str, pat: &str) -> (String, String) {
    let response = ci_credentials(app, project, pat).await;
    assert_eq!(response.status(), 200, "{project}");
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "a password must not be cached"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["CI_DEPLOY_USER"].as_str().unwrap().to_owned(),
        body["CI_DEPLOY_PASSWORD"].as_str().unwrap().to_owned(),
    )
}

/// The stored `ci_secret` column of a token.
async fn stored_ci_secret(app: &TestApp, token: &CreatedToken) -> Option<String> {
    entity::deploy_token::Entity::find_by_id(token.token.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .ci_secret
}

#[tokio::test]
async fn ci_gets_the_projects_gitlab_deploy_token_and_it_logs_in() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("ci-bot", true, "api").await;
    let token = app
        .create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;

    let (user, password) = credentials_ok(&app, "acme/web", &admin).await;
    assert_eq!(user, token.token.username);
    assert_eq!(password, token.secret);
    // By numeric id too.
    let id = token.token.owner.id.to_string();
    let (_, by_id) = credentials_ok(&app, &id, &admin).await;
    assert_eq!(by_id, token.secret);

    // What CI received works for docker login.
    let response = app
        .get_token(
            Some((&user, &password)),
            &[("service", "container_registry")],
        )
        .await;
    assert_eq!(response.status(), 200);

    // The sealed value at rest holds no trace of the secret.
    let sealed = stored_ci_secret(&app, &token).await.expect("sealed");
    assert!(sealed.starts_with("v1."), "{sealed}");
    assert!(!sealed.contains(&token.secret));
    assert!(!sealed.contains("gldt-"));
}

#[tokio::test]
async fn the_immediate_parent_groups_token_serves_a_project_without_one_and_the_projects_own_wins()
{
    let app = spawn_app().await;
    app.create_project_with_groups("acme/platform/web").await;
    app.create_project_with_groups("acme/platform/own").await;
    app.create_project_with_groups("acme/platform/sub/deep")
        .await;
    let admin = app.create_user("ci-bot", true, "api").await;
    let group_token = app
        .create_named_token(Group, "acme/platform", CI_NAME, &["read_registry"])
        .await;
    let own_token = app
        .create_named_token(Project, "acme/platform/own", CI_NAME, &["read_registry"])
        .await;

    let (user, password) = credentials_ok(&app, "acme/platform/web", &admin).await;
    assert_eq!(
        (user, password),
        (
            group_token.token.username.clone(),
            group_token.secret.clone()
        )
    );
    let (_, password) = credentials_ok(&app, "acme/platform/own", &admin).await;
    assert_eq!(password, own_token.secret);
    // A grandparent group's token is not injected (GitLab: immediate parent only)...
    let response = ci_credentials(&app, "acme/platform/sub/deep", &admin).await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["message"], "404 Deploy Token Not Found", "{body}");
    // ...although it reaches that project like any group token.
    let access = app
        .token_access(
            &group_token,
            "container_registry",
            &["repository:acme/platform/sub/deep:pull"],
        )
        .await;
    assert_eq!(access[0]["actions"], serde_json::json!(["pull"]));
}

#[tokio::test]
async fn no_other_tokens_secret_is_stored_or_handed_out() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("ci-bot", true, "api").await;
    let mut others = Vec::new();
    for name in [
        "deploy",
        "gitlab-deploy-token-2",
        "GitLab-Deploy-Token",
        "ci",
    ] {
        let token = app
            .create_named_token(Project, "acme/web", name, &["read_registry"])
            .await;
        others.push(token);
    }
    others.push(app.create_token(Group, "acme", &["read_registry"]).await);
    for token in &others {
        assert_eq!(
            stored_ci_secret(&app, token).await,
            None,
            "token {:?} must keep only its digest",
            token.token.name
        );
    }
    // None of them is handed out.
    assert_eq!(ci_credentials(&app, "acme/web", &admin).await.status(), 404);

    // A revoked or expired gitlab-deploy-token is not handed out either.
    let revoked = app
        .create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;
    app.revoke(revoked.token.id).await;
    assert_eq!(ci_credentials(&app, "acme/web", &admin).await.status(), 404);
    let expired = app
        .create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;
    app.set_expiry(
        expired.token.id,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )
    .await;
    assert_eq!(ci_credentials(&app, "acme/web", &admin).await.status(), 404);

    // Across the whole table, only gitlab-deploy-token rows carry a sealed secret.
    let rows = entity::deploy_token::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    for row in rows {
        assert_eq!(row.ci_secret.is_some(), row.name == CI_NAME, "{}", row.name);
    }
}

#[tokio::test]
async fn only_an_admin_with_the_api_scope_gets_ci_credentials() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;
    let owner = app.create_user("alice", false, "api").await;
    app.add_member("alice", Group, "acme", Role::Owner).await;
    let read_only_admin = app.create_user("auditor", true, "read_api").await;
    let blocked_admin = app.create_user("former", true, "api").await;
    app.block_user("former").await;

    for (who, pat) in [
        ("a group owner", &owner),
        ("an admin with read_api", &read_only_admin),
    ] {
        let response = ci_credentials(&app, "acme/web", pat).await;
        assert_eq!(response.status(), 403, "{who}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("gldt-"), "{who}: {text}");
    }
    assert_eq!(
        ci_credentials(&app, "acme/web", &blocked_admin)
            .await
            .status(),
        401,
        "a blocked user's token does not authenticate"
    );
    assert_eq!(ci_credentials(&app, "acme/web", "nope").await.status(), 401);
    // A caller without the right does not learn whether a project exists.
    assert_eq!(
        ci_credentials(&app, "acme/missing", &owner).await.status(),
        403
    );
}

#[tokio::test]
async fn a_replaced_or_deleted_key_file_fails_clearly_and_leaks_nothing() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;
    let key_file = app.settings.signing.ci_secret_key_file();
    assert!(key_file.is_file(), "generated on first start");
    let restart = || {
        let database_url = app.settings.database.url.clone();
        let keys_dir = app.settings.signing.keys_dir.clone();
        spawn_app_with(move |settings| {
            settings.database.url = database_url;
            settings.signing.keys_dir = keys_dir;
        })
    };

    // A restart with the same keys directory keeps the key (and starts at all: the key file
    // must not be mistaken for a signing key).
    let same_key = restart().await;
    let admin = same_key.create_user("ci-bot", true, "api").await;
    let (_, password) = credentials_ok(&same_key, "acme/web", &admin).await;
    assert_eq!(password, token.secret);

    // Delete the key file: the next start makes a new key, the old secret cannot open.
    std::fs::remove_file(&key_file).unwrap();
    let restarted = restart().await;
    let response = ci_credentials(&restarted, "acme/web", &admin).await;
    assert_eq!(response.status(), 409);
    let text = response.text().await.unwrap();
    assert!(text.contains("ci_secret_key_file"), "{text}");
    assert!(text.contains("another"), "{text}");
    assert!(
        !text.contains(&token.secret) && !text.contains("gldt-"),
        "{text}"
    );

    // A new gitlab-deploy-token made under the new key is handed out again.
    let fresh = restarted
        .create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;
    let (_, password) = credentials_ok(&restarted, "acme/web", &admin).await;
    assert_eq!(password, fresh.secret);
}

#[tokio::test]
async fn a_damaged_key_file_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("ci.key");
    std::fs::write(&key_file, "too short").unwrap();
    let mut settings = crate::helpers::test_settings(dir.path()).await;
    settings.signing.ci_secret_key_file = Some(key_file);
    let error = regauth::startup::Application::build(settings)
        .await
        .err()
        .expect("the start must fail");
    let message = error.to_string();
    assert!(message.contains("ci_secret_key_file"), "{message}");
    assert!(message.contains("ci.key"), "{message}");
}

#[tokio::test]
async fn the_ci_secret_migration_goes_down_and_up_again_keeping_the_tokens() {
    use migration::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_named_token(Project, "acme/web", CI_NAME, &["read_registry"])
        .await;
    // Down to just before the ci_secret migration (later ones go down first), then up.
    let migrations = Migrator::migrations();
    let position = migrations
        .iter()
        .position(|migration| migration.name().contains("ci_deploy_secret"))
        .expect("the ci_secret migration is registered");
    let steps = (migrations.len() - position) as u32;
    Migrator::down(&app.db, Some(steps)).await.expect("down");
    Migrator::up(&app.db, None).await.expect("up again");
    // The token still authenticates; its sealed secret is gone with the column.
    let response = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[("service", "container_registry")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(stored_ci_secret(&app, &token).await, None);
}
