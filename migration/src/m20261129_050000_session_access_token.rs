//! A web session signed in with a personal access token remembers which one, so that it ends
//! when that token is revoked or expires (the token was the credential; the session must not
//! outlive it). Sessions from before this migration cannot tell how they were signed in, so
//! they are ended: their users sign in once more.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    PersonalAccessTokenId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(Query::delete().from_table(WebSessions::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebSessions::Table)
                    .add_column(big_integer_null(WebSessions::PersonalAccessTokenId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebSessions::Table)
                    .drop_column(WebSessions::PersonalAccessTokenId)
                    .to_owned(),
            )
            .await
    }
}
