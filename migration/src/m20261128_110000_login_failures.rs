//! Failed logins, for brute-force protection shared by every replica: one row per failed
//! credential check and per key (`a:<client address>`, `u:<username tried>`). Rows are written
//! on failure only and pruned once they leave the counting window.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    Key,
    FailedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .if_not_exists()
                    .col(big_pk_auto(LoginFailures::Id))
                    .col(string_len(LoginFailures::Key, 300))
                    .col(timestamp_with_time_zone(LoginFailures::FailedAt))
                    .to_owned(),
            )
            .await?;
        // The per-second view reads a time range and groups by key; pruning reads the range.
        manager
            .create_index(
                Index::create()
                    .name("idx_login_failures_failed_at_key")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::FailedAt)
                    .col(LoginFailures::Key)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}
