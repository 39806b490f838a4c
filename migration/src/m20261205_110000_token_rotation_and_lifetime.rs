//! Secret rotation and the group lifetime policy (issue #27, items 3 and 4).
//!
//! Deploy tokens and personal access tokens get a second digest column: after a rotation the
//! previous secret's digest moves there, with the instant its grace period ends, and is
//! looked up by its own index. `rotated_at` is the last rotation. Existing rows keep NULLs:
//! nothing about a token changes until it is rotated.
//!
//! `namespace_token_policies` holds a group's limits for the tokens created below it (a
//! table of its own, one row per group that has set something).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum DeployTokens {
    Table,
    PreviousTokenDigest,
    PreviousTokenExpiresAt,
    RotatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PersonalAccessTokens {
    Table,
    PreviousTokenDigest,
    PreviousTokenExpiresAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum NamespaceTokenPolicies {
    Table,
    NamespaceId,
    MaxTokenLifetimeDays,
    RequireTokenExpiry,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Namespaces {
    Table,
    Id,
}

const DEPLOY_INDEX: &str = "deploy_tokens_previous_token_digest";
const PAT_INDEX: &str = "personal_access_tokens_previous_token_digest";

/// SQLite adds one column per ALTER TABLE.
async fn add_rotation_columns<T: IntoIden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    digest: T,
    expires_at: T,
    rotated_at: T,
) -> Result<(), DbErr> {
    for column in [
        string_null(digest),
        timestamp_with_time_zone_null(expires_at),
        timestamp_with_time_zone_null(rotated_at),
    ] {
        let mut column = column;
        manager
            .alter_table(
                Table::alter()
                    .table(table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn drop_rotation_columns<T: IntoIden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: [T; 3],
) -> Result<(), DbErr> {
    for column in columns {
        manager
            .alter_table(Table::alter().table(table).drop_column(column).to_owned())
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_rotation_columns(
            manager,
            DeployTokens::Table,
            DeployTokens::PreviousTokenDigest,
            DeployTokens::PreviousTokenExpiresAt,
            DeployTokens::RotatedAt,
        )
        .await?;
        add_rotation_columns(
            manager,
            PersonalAccessTokens::Table,
            PersonalAccessTokens::PreviousTokenDigest,
            PersonalAccessTokens::PreviousTokenExpiresAt,
            PersonalAccessTokens::RotatedAt,
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name(DEPLOY_INDEX)
                    .table(DeployTokens::Table)
                    .col(DeployTokens::PreviousTokenDigest)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PAT_INDEX)
                    .table(PersonalAccessTokens::Table)
                    .col(PersonalAccessTokens::PreviousTokenDigest)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NamespaceTokenPolicies::Table)
                    .col(big_integer(NamespaceTokenPolicies::NamespaceId).primary_key())
                    .col(integer_null(NamespaceTokenPolicies::MaxTokenLifetimeDays))
                    .col(boolean(NamespaceTokenPolicies::RequireTokenExpiry).default(false))
                    .col(timestamp_with_time_zone(NamespaceTokenPolicies::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_namespace_token_policies_namespace")
                            .from(
                                NamespaceTokenPolicies::Table,
                                NamespaceTokenPolicies::NamespaceId,
                            )
                            .to(Namespaces::Table, Namespaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(NamespaceTokenPolicies::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(PAT_INDEX)
                    .table(PersonalAccessTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(DEPLOY_INDEX)
                    .table(DeployTokens::Table)
                    .to_owned(),
            )
            .await?;
        drop_rotation_columns(
            manager,
            PersonalAccessTokens::Table,
            [
                PersonalAccessTokens::PreviousTokenDigest,
                PersonalAccessTokens::PreviousTokenExpiresAt,
                PersonalAccessTokens::RotatedAt,
            ],
        )
        .await?;
        drop_rotation_columns(
            manager,
            DeployTokens::Table,
            [
                DeployTokens::PreviousTokenDigest,
                DeployTokens::PreviousTokenExpiresAt,
                DeployTokens::RotatedAt,
            ],
        )
        .await
    }
}
