//! Refresh tokens for the OAuth2 `refresh_token` grant (docker identity tokens).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    DeployTokenId,
    Service,
    TokenDigest,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum DeployTokens {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RefreshTokens::Id))
                    .col(big_integer(RefreshTokens::DeployTokenId))
                    .col(string_len(RefreshTokens::Service, 255))
                    .col(string_len_uniq(RefreshTokens::TokenDigest, 64))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_deploy_token")
                            .from(RefreshTokens::Table, RefreshTokens::DeployTokenId)
                            .to(DeployTokens::Table, DeployTokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_deploy_token_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::DeployTokenId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await
    }
}
