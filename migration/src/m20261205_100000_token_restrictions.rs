//! Least privilege (issue #27, items 1 and 2): address allow-lists on deploy tokens, groups,
//! workload identity policies and personal access tokens (`ip_restriction_ranges`, canonical
//! CIDRs joined by commas; NULL: anywhere), and repository patterns on deploy tokens
//! (`repository_patterns`, a JSON list of globs; NULL: every repository of the owner).
//! Existing rows keep NULL, so nothing changes for them.

use sea_orm_migration::prelude::*;

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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
