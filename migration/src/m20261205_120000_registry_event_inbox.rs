//! The registry's notifications are written to an inbox before they are answered, and
//! attributed and recorded from there in batches (issue #26, item 3). The registry delivers
//! one event at a time and waits for each answer: one insert per envelope keeps its queue
//! flat where the whole attribution per envelope let it grow under a burst of pushes.
//! `attempts` counts failed recordings: an envelope that keeps failing is set aside.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistryEventInbox {
    Table,
    Id,
    ReceivedAt,
    Envelope,
    Attempts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RegistryEventInbox::Table)
                    .col(big_pk_auto(RegistryEventInbox::Id))
                    .col(timestamp_with_time_zone(RegistryEventInbox::ReceivedAt))
                    .col(text(RegistryEventInbox::Envelope))
                    .col(integer(RegistryEventInbox::Attempts).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RegistryEventInbox::Table).to_owned())
            .await
    }
}
