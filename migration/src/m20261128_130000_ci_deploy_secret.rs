//! `deploy_tokens.ci_secret`: the secret of a token named `gitlab-deploy-token`, sealed with
//! AES-256-GCM under the key of `ci_secret_key_file`, so that a CI system can be handed
//! `CI_DEPLOY_PASSWORD`. NULL for every other token (their secrets exist only as digests).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeployTokens {
    Table,
    CiSecret,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DeployTokens::Table)
                    .add_column(ColumnDef::new(DeployTokens::CiSecret).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DeployTokens::Table)
                    .drop_column(DeployTokens::CiSecret)
                    .to_owned(),
            )
            .await
    }
}
