//! Deploy-token usernames become unique across the instance: the username is the `sub` of
//! every registry token and names the actor in the registry's own events, so it must name
//! exactly one credential. Custom usernames were unique nowhere before; where two or more
//! tokens share one, the token that keeps it is the oldest active one (else the oldest), and
//! every other gets `-<id>` appended (`ci` becomes `ci-42`). Each rename is logged with the
//! token's id and both names; its users log in with the new username from then on.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeployTokens {
    Table,
    Username,
}

const INDEX: &str = "deploy_tokens_username_unique";

/// Tokens sharing their username with an older (or active) one: id, username.
const DUPLICATES: &str = "
    SELECT t.id, t.username FROM deploy_tokens t
    WHERE t.username IS NOT NULL AND t.id <> (
        SELECT keep.id FROM deploy_tokens keep
        WHERE keep.username = t.username
        ORDER BY CASE WHEN keep.revoked = FALSE AND keep.deleted_at IS NULL THEN 0 ELSE 1 END,
                 keep.id
        LIMIT 1)
    ORDER BY t.id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let duplicates = db
            .query_all_raw(Statement::from_string(backend, DUPLICATES))
            .await?;
        for row in duplicates {
            let id: i64 = row.try_get("", "id")?;
            let old: String = row.try_get("", "username")?;
            let new = format!("{old}-{id}");
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                match backend {
                    sea_orm_migration::sea_orm::DatabaseBackend::Postgres => {
                        "UPDATE deploy_tokens SET username = $1 WHERE id = $2"
                    }
                    _ => "UPDATE deploy_tokens SET username = ? WHERE id = ?",
                },
                [new.clone().into(), id.into()],
            ))
            .await?;
            tracing::warn!(
                deploy_token_id = id,
                old_username = %old,
                new_username = %new,
                "deploy-token usernames are now unique: this token shared its username with an \
                 older one and was renamed; its users must log in with the new username"
            );
        }
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(DeployTokens::Table)
                    .col(DeployTokens::Username)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(DeployTokens::Table)
                    .to_owned(),
            )
            .await
    }
}
