//! Users, memberships (roles in groups and projects), personal access tokens and the audit
//! trail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    Admin,
    Blocked,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    UserId,
    NamespaceId,
    AccessLevel,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PersonalAccessTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenDigest,
    Scopes,
    ExpiresAt,
    Revoked,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    CreatedAt,
    ActorKind,
    Actor,
    Action,
    DeployTokenId,
    NamespaceId,
    IpAddress,
    Details,
}

#[derive(DeriveIden)]
enum Namespaces {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Users::Id))
                    .col(string_len_uniq(Users::Username, 255))
                    .col(string_len(Users::Email, 255))
                    .col(boolean(Users::Admin).default(false))
                    .col(boolean(Users::Blocked).default(false))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Memberships::Id))
                    .col(big_integer(Memberships::UserId))
                    .col(big_integer(Memberships::NamespaceId))
                    .col(integer(Memberships::AccessLevel))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_memberships_user")
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_memberships_namespace")
                            .from(Memberships::Table, Memberships::NamespaceId)
                            .to(Namespaces::Table, Namespaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_user_namespace")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .col(Memberships::NamespaceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PersonalAccessTokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PersonalAccessTokens::Id))
                    .col(big_integer(PersonalAccessTokens::UserId))
                    .col(string_len(PersonalAccessTokens::Name, 255))
                    .col(string_len_uniq(PersonalAccessTokens::TokenDigest, 64))
                    .col(string_len(PersonalAccessTokens::Scopes, 255))
                    .col(timestamp_with_time_zone_null(
                        PersonalAccessTokens::ExpiresAt,
                    ))
                    .col(boolean(PersonalAccessTokens::Revoked).default(false))
                    .col(timestamp_with_time_zone(PersonalAccessTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        PersonalAccessTokens::LastUsedAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_personal_access_tokens_user")
                            .from(PersonalAccessTokens::Table, PersonalAccessTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .col(string_len(AuditEvents::ActorKind, 32))
                    .col(string_len(AuditEvents::Actor, 255))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(big_integer_null(AuditEvents::DeployTokenId))
                    .col(big_integer_null(AuditEvents::NamespaceId))
                    .col(string_len_null(AuditEvents::IpAddress, 64))
                    .col(text(AuditEvents::Details))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_deploy_token_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::DeployTokenId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            PersonalAccessTokens::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
