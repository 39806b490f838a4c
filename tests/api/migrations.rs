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
