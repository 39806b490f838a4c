//! A change counter for caches: `regauth_changes.version` goes up, in the same transaction,
//! whenever something a token request reads from the database changes — a deploy token's
//! state (anything but `last_used_at`), or a namespace. Triggers do it, so every writer
//! counts: this server, another replica, the CLI in another process, or SQL typed by hand.
//! A server holding deploy tokens in memory compares the counter before trusting them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every deploy-token column a token request depends on: all but `last_used_at`, which the
/// usage writer updates in the background and which must not empty the caches.
const TOKEN_COLUMNS: &str = "namespace_id, name, username, token_digest, read_repository, \
    read_registry, write_registry, read_virtual_registry, write_virtual_registry, \
    read_package_registry, write_package_registry, expires_at, revoked, revoked_at, \
    created_at, created_by, deleted_at";

/// (trigger name, event, table)
fn triggers() -> [(&'static str, String, &'static str); 6] {
    [
        (
            "regauth_changes_token_update",
            format!("UPDATE OF {TOKEN_COLUMNS}"),
            "deploy_tokens",
        ),
        (
            "regauth_changes_token_delete",
            "DELETE".into(),
            "deploy_tokens",
        ),
        (
            "regauth_changes_token_insert",
            "INSERT".into(),
            "deploy_tokens",
        ),
        (
            "regauth_changes_namespace_insert",
            "INSERT".into(),
            "namespaces",
        ),
        (
            "regauth_changes_namespace_update",
            "UPDATE".into(),
            "namespaces",
        ),
        (
            "regauth_changes_namespace_delete",
            "DELETE".into(),
            "namespaces",
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE regauth_changes (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
        )
        .await?;
        db.execute_unprepared("INSERT INTO regauth_changes (id, version) VALUES (1, 0)")
            .await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION regauth_bump_changes() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN \
                       UPDATE regauth_changes SET version = version + 1 WHERE id = 1; \
                       PERFORM pg_notify('regauth_changes', ''); \
                       RETURN NULL; \
                     END $$",
                )
                .await?;
                for (name, event, table) in triggers() {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {name} AFTER {event} ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION regauth_bump_changes()"
                    ))
                    .await?;
                }
            }
            _ => {
                for (name, event, table) in triggers() {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW \
                         BEGIN UPDATE regauth_changes SET version = version + 1 WHERE id = 1; END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        for (name, _, table) in triggers() {
            let on = if postgres {
                format!(" ON {table}")
            } else {
                String::new()
            };
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}{on}"))
                .await?;
        }
        if postgres {
            db.execute_unprepared("DROP FUNCTION IF EXISTS regauth_bump_changes()")
                .await?;
        }
        db.execute_unprepared("DROP TABLE IF EXISTS regauth_changes")
            .await?;
        Ok(())
    }
}
