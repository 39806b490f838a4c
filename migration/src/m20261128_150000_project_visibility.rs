//! Project visibility (`private`, `internal`, `public`), as GitLab has it: public projects can
//! be read by anyone, without a token. Stored on the shared namespaces table; existing rows
//! become `private`, the safe default, so no project becomes readable by this migration.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Namespaces {
    Table,
    Visibility,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Namespaces::Table)
                    .add_column(string_len(Namespaces::Visibility, 16).default("private"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Namespaces::Table)
                    .drop_column(Namespaces::Visibility)
                    .to_owned(),
            )
            .await
    }
}
