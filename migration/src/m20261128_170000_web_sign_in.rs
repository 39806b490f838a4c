//! The web pages' sign-in: password hashes (argon2id PHC strings) in their own table, and
//! server-side sessions stored by the SHA-256 digest of their id, so that replicas share them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserPasswords {
    Table,
    UserId,
    PasswordHash,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    Id,
    SessionDigest,
    UserId,
    CsrfToken,
    MayWrite,
    LastFormNonce,
    CreatedAt,
    ExpiresAt,
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
                    .table(UserPasswords::Table)
                    .if_not_exists()
                    .col(big_integer(UserPasswords::UserId).primary_key())
                    .col(string_len(UserPasswords::PasswordHash, 255))
                    .col(timestamp_with_time_zone(UserPasswords::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_passwords_user")
                            .from(UserPasswords::Table, UserPasswords::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebSessions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebSessions::Id))
                    .col(string_len_uniq(WebSessions::SessionDigest, 64))
                    .col(big_integer(WebSessions::UserId))
                    .col(string_len(WebSessions::CsrfToken, 64))
                    .col(boolean(WebSessions::MayWrite))
                    .col(string_len_null(WebSessions::LastFormNonce, 64))
                    .col(timestamp_with_time_zone(WebSessions::CreatedAt))
                    .col(timestamp_with_time_zone(WebSessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_web_sessions_user")
                            .from(WebSessions::Table, WebSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_web_sessions_user_id")
                    .table(WebSessions::Table)
                    .col(WebSessions::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebSessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserPasswords::Table).to_owned())
            .await
    }
}
