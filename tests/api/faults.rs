//! Faults: a management write and its audit record are one transaction. A trigger created by
//! the test makes every audit insert fail; the change it records must not be there either.

use chrono::Utc;
use regauth::domain::NamespaceKind::Project;
use regauth::service::caller::Caller;
use regauth::service::deploy_tokens;
use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::helpers::{spawn_app, TestApp};

/// Makes every insert into `audit_events` fail, on SQLite or PostgreSQL.
pub async fn break_audit_inserts(app: &TestApp) {
    let statements: &[&str] = match app.db.get_database_backend() {
        DatabaseBackend::Sqlite => &["CREATE TRIGGER break_audit BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit insert failed (injected by the test)'); END"],
        _ => &[
            "CREATE FUNCTION break_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit insert failed (injected by the test)'; END $$",
            "CREATE TRIGGER break_audit BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION break_audit()",
        ],
    };
    for statement in statements {
        app.db.execute_unprepared(statement).await.unwrap();
    }
}

pub async fn repair_audit_inserts(app: &TestApp) {
    app.db
        .execute_unprepared("DROP TRIGGER break_audit ON audit_events")
        .await
        .or(app.db.execute_unprepared("DROP TRIGGER break_audit").await)
        .unwrap();
}

async fn token_rows(app: &TestApp) -> u64 {
    entity::deploy_token::Entity::find()
        .count(&app.db)
        .await
        .unwrap()
}

async fn audit_rows(app: &TestApp) -> u64 {
    entity::audit_event::Entity::find()
        .count(&app.db)
        .await
        .unwrap()
}

async fn refresh_rows(app: &TestApp) -> u64 {
    entity::refresh_token::Entity::find()
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_audit_insert_leaves_no_created_revoked_or_deleted_token_behind() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let admin = app.create_user("root", true, "api").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    // A docker login leaves a refresh token, which a revocation removes.
    let login = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[
                ("account", &token.token.username),
                ("client_id", "docker"),
                ("offline_token", "true"),
                ("service", "container_registry"),
            ],
        )
        .await;
    assert_eq!(login.status(), 200);
    let (tokens, refresh) = (token_rows(&app).await, refresh_rows(&app).await);
    assert_eq!(refresh, 1);
    // Token-use records are written in the background: wait for this one before counting.
    app.wait_for_token_issue_record(token.token.id).await;
    let audits = audit_rows(&app).await;

    break_audit_inserts(&app).await;

    // Create through the API: the token row must not exist without its audit row.
    let response = app
        .api(Method::POST, "/projects/acme%2Fweb/deploy_tokens", &admin)
        .json(&json!({"name": "ci", "scopes": ["read_registry"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        !body.to_string().contains("injected"),
        "no internals: {body}"
    );
    assert_eq!(
        token_rows(&app).await,
        tokens,
        "a token without its audit row"
    );

    // Create through the service (the command line's path).
    let owner = regauth::service::namespaces::find(
        app.store.as_ref(),
        Project,
        &regauth::service::namespaces::NamespaceRef::Path("acme/web".into()),
    )
    .await
    .unwrap();
    let operator = Caller::operator();
    let authorized = deploy_tokens::authorize(
        app.store.as_ref(),
        &operator,
        regauth::access::permissions::TokenOperation::Create,
        &owner,
    )
    .await
    .unwrap();
    let created = deploy_tokens::create(
        app.store.as_ref(),
        &authorized,
        regauth::domain::deploy_token::DeployTokenRequest {
            name: "cli".into(),
            username: None,
            scopes: vec!["read_registry".into()],
            expires_at: None,
            ..Default::default()
        },
        Default::default(),
        &regauth::domain::token_format::TokenFormats::default(),
        &regauth::ci_secret::CiSecretKey::from_bytes(&[7; 32]).unwrap(),
        Utc::now(),
    )
    .await;
    assert!(created.is_err());
    assert_eq!(token_rows(&app).await, tokens);

    // Revoke: neither the revocation nor the removal of its refresh tokens happens.
    let revoked = deploy_tokens::revoke_by_id(
        app.store.as_ref(),
        &Caller::operator(),
        token.token.id,
        Utc::now(),
    )
    .await;
    assert!(revoked.is_err());
    let row = entity::deploy_token::Entity::find_by_id(token.token.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.revoked && row.revoked_at.is_none(),
        "revoked without its audit row"
    );
    assert_eq!(refresh_rows(&app).await, refresh);

    // Delete through the API.
    let response = app
        .api(
            Method::DELETE,
            &format!("/projects/acme%2Fweb/deploy_tokens/{}", token.token.id),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let row = entity::deploy_token::Entity::find_by_id(token.token.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.deleted_at.is_none() && !row.revoked,
        "deleted without its audit row"
    );
    assert_eq!(audit_rows(&app).await, audits);

    // The token still works: nothing was half-done to it.
    let still = app
        .get_token(
            Some((&token.token.username, &token.secret)),
            &[
                ("service", "container_registry"),
                ("scope", "repository:acme/web:pull"),
            ],
        )
        .await;
    assert_eq!(still.status(), 200);

    // Once audit inserts work again, so do the writes, each with its record.
    repair_audit_inserts(&app).await;
    app.revoke(token.token.id).await;
    let events = app
        .store
        .audit_events_for_deploy_token(token.token.id)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "deploy_token.revoke")
            .count(),
        1,
        "{actions:?}"
    );
    assert_eq!(refresh_rows(&app).await, 0);
}

/// A stalled database (here: a transaction holding the write lock on `audit_events`) must not
/// cost audit records while token requests keep coming: more uses than the writer's channel
/// holds arrive during the stall, and every one is counted once the database answers again.
#[tokio::test]
async fn token_uses_recorded_while_the_database_stalls_are_aggregated_not_dropped() {
    use regauth::service::usage::{TokenUse, UsageRecorder};
    use sea_orm::TransactionTrait;

    const USES: u64 = 40_000; // the channel holds 16,384
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app
        .create_token(Project, "acme/web", &["read_registry"])
        .await;
    let (recorder, writer) = UsageRecorder::start(
        std::sync::Arc::clone(&app.store),
        std::time::Duration::from_millis(100),
    );
    let stall = app.db.begin().await.unwrap();
    let lock = match app.db.get_database_backend() {
        DatabaseBackend::Sqlite => "DELETE FROM audit_events WHERE 1 = 0",
        _ => "LOCK TABLE audit_events IN EXCLUSIVE MODE",
    };
    stall.execute_unprepared(lock).await.unwrap();
    for i in 0..USES {
        recorder.record(TokenUse {
            deploy_token_id: token.token.id,
            namespace_id: token.token.owner.id,
            username: token.token.username.clone(),
            at: Utc::now(),
            ip_address: Some(format!("10.0.0.{}", i % 4)),
            service: "container_registry".into(),
            granted: "repository:acme/web:pull".into(),
            marks_last_used: true,
        });
        if i % 1_000 == 0 {
            // Let the writer run, as the server's other tasks would.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stall.rollback().await.unwrap();
    drop(recorder);
    writer.await.unwrap();

    let recorded: u64 = app
        .store
        .audit_events_for_deploy_token(token.token.id)
        .await
        .unwrap()
        .iter()
        .filter(|event| event.action.as_str() == "registry_token.issue")
        .map(|event| event.details["count"].as_u64().unwrap())
        .sum();
    assert_eq!(recorded, USES);
}
