//! Replicas started together on one database: the schema is migrated once, by whichever
//! gets there first; the others wait (a PostgreSQL advisory lock) and find nothing pending.

use migration::{Migrator, MigratorTrait};
use regauth::store;
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::fresh_postgres_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (REGAUTH_TEST_POSTGRES_URL): run by scripts/test.sh"]
async fn replicas_starting_together_on_a_fresh_database_all_start_and_migrate_once() {
    // Several rounds: a race between two `CREATE TABLE`s does not lose every time.
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        // Replicas share PostgreSQL (a SQLite file serves one process), so this test always
        // runs on PostgreSQL, in the SQLite pass of scripts/test.sh too.
        let Some(url) = fresh_postgres_url(dir.path()).await else {
            eprintln!(
                "SKIPPED: needs PostgreSQL; set REGAUTH_TEST_POSTGRES_URL (scripts/test.sh does)"
            );
            return;
        };
        let starts = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { store::connect(&url, 2, true).await })
        });
        let mut connections = Vec::new();
        for (replica, start) in futures_join(starts).await.into_iter().enumerate() {
            match start {
                Ok(db) => connections.push(db),
                Err(error) => panic!("round {round}: replica {replica} failed to start: {error}"),
            }
        }
        let db = &connections[0];
        let applied = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM seaql_migrations",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(
            applied as usize,
            Migrator::migrations().len(),
            "round {round}: each migration recorded exactly once"
        );
        for db in connections {
            db.close().await.ok();
        }
    }
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

/// Deploy-token usernames are unique since `m20261205_060000`: tokens that shared one before
/// are renamed by the migration, the oldest active token keeping it, and a new token cannot
/// take a username in use.
#[tokio::test]
async fn shared_custom_usernames_are_made_unique_by_the_migration_and_then_refused() {
    use regauth::domain::NamespaceKind::Project;
    let app = crate::helpers::spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    app.create_project_with_groups("acme/api").await;
    let backend = app.db.get_database_backend();
    let run = |sql: &str| {
        let db = app.db.clone();
        let sql = sql.to_owned();
        async move {
            db.execute_raw(Statement::from_string(backend, sql))
                .await
                .unwrap();
        }
    };
    // The schema as it was before: no unique index, the migration not yet applied.
    run("DROP INDEX deploy_tokens_username_unique").await;
    run("DELETE FROM seaql_migrations WHERE version LIKE '%unique_deploy_token_usernames'").await;
    let revoked = app
        .create_token_with(Project, "acme/web", &["read_registry"], Some("ci"))
        .await;
    app.revoke(revoked.token.id).await;
    let active = app
        .create_token_with(Project, "acme/api", &["read_registry"], Some("ci"))
        .await;
    let newer = app
        .create_token_with(Project, "acme/web", &["read_registry"], Some("ci"))
        .await;
    let alone = app
        .create_token_with(Project, "acme/web", &["read_registry"], Some("deployer"))
        .await;
    Migrator::up(&app.db, None).await.unwrap();
    let username_of = |id: i64| {
        let db = app.db.clone();
        async move {
            db.query_one_raw(Statement::from_string(
                backend,
                format!("SELECT username FROM deploy_tokens WHERE id = {id}"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<String>("", "username")
            .unwrap()
        }
    };
    // The oldest active token keeps the name; the others get their id appended.
    assert_eq!(username_of(active.token.id).await, "ci");
    assert_eq!(
        username_of(revoked.token.id).await,
        format!("ci-{}", revoked.token.id)
    );
    assert_eq!(
        username_of(newer.token.id).await,
        format!("ci-{}", newer.token.id)
    );
    assert_eq!(username_of(alone.token.id).await, "deployer");
    // The kept one logs in as before; a renamed one under its new name.
    let query = [("service", "container_registry")];
    let access = app.get_token(Some(("ci", &active.secret)), &query).await;
    assert_eq!(access.status(), 200);
    let renamed = format!("ci-{}", newer.token.id);
    let access = app.get_token(Some((&renamed, &newer.secret)), &query).await;
    assert_eq!(access.status(), 200);
    let old_name = app.get_token(Some(("ci", &newer.secret)), &query).await;
    assert_eq!(old_name.status(), 401);
    // A new token cannot take a username in use, in any project.
    let response = app
        .api(
            reqwest::Method::POST,
            "/projects/acme%2Fweb/deploy_tokens",
            &app.create_user("root", true, "api").await,
        )
        .json(
            &serde_json::json!({"name": "x", "username": "deployer", "scopes": ["read_registry"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("username deployer is already taken"),
        "{body}"
    );
}
