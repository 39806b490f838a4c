//! Groups and projects (one `namespaces` table: they share one space of full paths) and
//! deploy tokens.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Namespaces {
    Table,
    Id,
    Kind,
    ParentId,
    Path,
    FullPath,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DeployTokens {
    Table,
    Id,
    NamespaceId,
    Name,
    Username,
    TokenDigest,
    ReadRepository,
    ReadRegistry,
    WriteRegistry,
    ReadVirtualRegistry,
    WriteVirtualRegistry,
    ReadPackageRegistry,
    WritePackageRegistry,
    ExpiresAt,
    Revoked,
    RevokedAt,
    CreatedAt,
    CreatedBy,
    LastUsedAt,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Namespaces::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Namespaces::Id))
                    .col(string_len(Namespaces::Kind, 16))
                    .col(big_integer_null(Namespaces::ParentId))
                    .col(string_len(Namespaces::Path, 255))
                    .col(string_len_uniq(Namespaces::FullPath, 255))
                    .col(string_len(Namespaces::Name, 255))
                    .col(timestamp_with_time_zone(Namespaces::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_namespaces_parent")
                            .from(Namespaces::Table, Namespaces::ParentId)
                            .to(Namespaces::Table, Namespaces::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_namespaces_parent_id")
                    .table(Namespaces::Table)
                    .col(Namespaces::ParentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeployTokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(DeployTokens::Id))
                    .col(big_integer(DeployTokens::NamespaceId))
                    .col(string_len(DeployTokens::Name, 255))
                    .col(string_len_null(DeployTokens::Username, 255))
                    .col(string_len_uniq(DeployTokens::TokenDigest, 64))
                    .col(boolean(DeployTokens::ReadRepository).default(false))
                    .col(boolean(DeployTokens::ReadRegistry).default(false))
                    .col(boolean(DeployTokens::WriteRegistry).default(false))
                    .col(boolean(DeployTokens::ReadVirtualRegistry).default(false))
                    .col(boolean(DeployTokens::WriteVirtualRegistry).default(false))
                    .col(boolean(DeployTokens::ReadPackageRegistry).default(false))
                    .col(boolean(DeployTokens::WritePackageRegistry).default(false))
                    .col(timestamp_with_time_zone_null(DeployTokens::ExpiresAt))
                    .col(boolean(DeployTokens::Revoked).default(false))
                    .col(timestamp_with_time_zone_null(DeployTokens::RevokedAt))
                    .col(timestamp_with_time_zone(DeployTokens::CreatedAt))
                    .col(string_len_null(DeployTokens::CreatedBy, 255))
                    .col(timestamp_with_time_zone_null(DeployTokens::LastUsedAt))
                    .col(timestamp_with_time_zone_null(DeployTokens::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deploy_tokens_namespace")
                            .from(DeployTokens::Table, DeployTokens::NamespaceId)
                            .to(Namespaces::Table, Namespaces::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deploy_tokens_namespace_id")
                    .table(DeployTokens::Table)
                    .col(DeployTokens::NamespaceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeployTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Namespaces::Table).to_owned())
            .await
    }
}
