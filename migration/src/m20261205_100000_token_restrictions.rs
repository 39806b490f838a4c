//! Least privilege (issue #27, items 1 and 2): address allow-lists on deploy tokens, groups,
//! workload identity policies and personal access tokens (`ip_restriction_ranges`, canonical
//! CIDRs joined by commas; NULL: anywhere), and repository patterns on deploy tokens
//! (`repository_patterns`, a JSON list of globs; NULL: every repository of the owner).
//! Existing rows keep NULL, so nothing changes for them. A change of a token's lists bumps
//! the change counter (`m20261129_010000_change_counter`), so that no replica's token cache
//! keeps the old lists (namespaces and policies bump it on any update already).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

const TRIGGER: &str = "regauth_changes_token_restrictions";

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, column); one ALTER each: SQLite takes one change per statement.
const COLUMNS: [(&str, &str); 5] = [
    ("deploy_tokens", "ip_restriction_ranges"),
    ("deploy_tokens", "repository_patterns"),
    ("namespaces", "ip_restriction_ranges"),
    ("workload_identities", "ip_restriction_ranges"),
    ("personal_access_tokens", "ip_restriction_ranges"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(ColumnDef::new(Alias::new(column)).text().null())
                        .to_owned(),
                )
                .await?;
        }
        let event = "UPDATE OF ip_restriction_ranges, repository_patterns ON deploy_tokens";
        let statement = match manager.get_database_backend() {
            DatabaseBackend::Postgres => format!(
                "CREATE TRIGGER {TRIGGER} AFTER {event} \
                 FOR EACH STATEMENT EXECUTE FUNCTION regauth_bump_changes()"
            ),
            _ => format!(
                "CREATE TRIGGER {TRIGGER} AFTER {event} FOR EACH ROW \
                 BEGIN UPDATE regauth_changes SET version = version + 1 WHERE id = 1; END"
            ),
        };
        manager
            .get_connection()
            .execute_unprepared(&statement)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let on = match manager.get_database_backend() {
            DatabaseBackend::Postgres => " ON deploy_tokens",
            _ => "",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP TRIGGER IF EXISTS {TRIGGER}{on}"))
            .await?;
        for (table, column) in COLUMNS.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
