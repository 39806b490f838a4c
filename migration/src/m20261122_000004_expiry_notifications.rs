//! Expiry notices (DOMAIN.md "Expiry notifications"): one row per deploy token, window and
//! recipient. The unique index is what makes "never twice for the same window" hold across
//! restarts and between replicas: a run claims a row before it sends, marks it sent after,
//! and deletes its claim when the delivery failed (so the next run retries).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ExpiryNotifications {
    Table,
    Id,
    DeployTokenId,
    WindowDays,
    UserId,
    Email,
    ClaimedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum DeployTokens {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ExpiryNotifications::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ExpiryNotifications::Id))
                    .col(big_integer(ExpiryNotifications::DeployTokenId))
                    .col(integer(ExpiryNotifications::WindowDays))
                    .col(big_integer(ExpiryNotifications::UserId))
                    .col(string_len(ExpiryNotifications::Email, 255))
                    .col(timestamp_with_time_zone(ExpiryNotifications::ClaimedAt))
                    .col(timestamp_with_time_zone_null(ExpiryNotifications::SentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_expiry_notifications_deploy_token")
                            .from(
                                ExpiryNotifications::Table,
                                ExpiryNotifications::DeployTokenId,
                            )
                            .to(DeployTokens::Table, DeployTokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_expiry_notifications_user")
                            .from(ExpiryNotifications::Table, ExpiryNotifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_expiry_notifications_token_window_user")
                    .table(ExpiryNotifications::Table)
                    .col(ExpiryNotifications::DeployTokenId)
                    .col(ExpiryNotifications::WindowDays)
                    .col(ExpiryNotifications::UserId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ExpiryNotifications::Table).to_owned())
            .await
    }
}
