//! Workload identity policies: which OIDC tokens (issuer, audience, claim conditions) stand
//! in for a deploy token of a project or group, deleted with their namespace; the short-lived
//! credentials the token exchange mints from them (stored as SHA-256 digests, deleted with
//! their policy); and the `jti`s already exchanged, so that a token is exchanged only once.

use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};
use sea_orm_migration::{prelude::*, schema::*};

/// Policies are kept by the token cache: every change to them bumps `regauth_changes`, as
/// deploy tokens' do (`m20261129_010000_change_counter`). (trigger name, event)
const POLICY_TRIGGERS: [(&str, &str); 3] = [
    ("regauth_changes_workload_identity_insert", "INSERT"),
    ("regauth_changes_workload_identity_update", "UPDATE"),
    ("regauth_changes_workload_identity_delete", "DELETE"),
];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkloadIdentities {
    Table,
    Id,
    NamespaceId,
    Name,
    Issuer,
    Audience,
    /// JSON object: claim path → string or list of strings.
    Conditions,
    /// Comma-separated scope names, canonical order.
    Scopes,
    MaxTtlSeconds,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum WorkloadCredentials {
    Table,
    Id,
    WorkloadIdentityId,
    TokenDigest,
    /// Comma-separated scope names: the policy's, or fewer when the exchange narrowed them.
    Scopes,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WorkloadExchangedJtis {
    Table,
    Id,
    Issuer,
    Jti,
    /// The token's `exp` plus the leeway: until then a replay must still be refused.
    ExpiresAt,
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
                    .table(WorkloadIdentities::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WorkloadIdentities::Id))
                    .col(big_integer(WorkloadIdentities::NamespaceId))
                    .col(string_len(WorkloadIdentities::Name, 255))
                    .col(string_len(WorkloadIdentities::Issuer, 1024))
                    .col(string_len(WorkloadIdentities::Audience, 1024))
                    .col(text(WorkloadIdentities::Conditions))
                    .col(string_len(WorkloadIdentities::Scopes, 255))
                    .col(integer(WorkloadIdentities::MaxTtlSeconds))
                    .col(timestamp_with_time_zone(WorkloadIdentities::CreatedAt))
                    .col(string_len(WorkloadIdentities::CreatedBy, 255))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workload_identities_namespace")
                            .from(WorkloadIdentities::Table, WorkloadIdentities::NamespaceId)
                            .to(Namespaces::Table, Namespaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workload_identities_namespace_id")
                    .table(WorkloadIdentities::Table)
                    .col(WorkloadIdentities::NamespaceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkloadCredentials::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WorkloadCredentials::Id))
                    .col(big_integer(WorkloadCredentials::WorkloadIdentityId))
                    .col(string_len_uniq(WorkloadCredentials::TokenDigest, 64))
                    .col(string_len(WorkloadCredentials::Scopes, 255))
                    .col(timestamp_with_time_zone(WorkloadCredentials::ExpiresAt))
                    .col(timestamp_with_time_zone(WorkloadCredentials::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workload_credentials_identity")
                            .from(
                                WorkloadCredentials::Table,
                                WorkloadCredentials::WorkloadIdentityId,
                            )
                            .to(WorkloadIdentities::Table, WorkloadIdentities::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workload_credentials_identity")
                    .table(WorkloadCredentials::Table)
                    .col(WorkloadCredentials::WorkloadIdentityId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkloadExchangedJtis::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WorkloadExchangedJtis::Id))
                    .col(string_len(WorkloadExchangedJtis::Issuer, 1024))
                    .col(string_len(WorkloadExchangedJtis::Jti, 255))
                    .col(timestamp_with_time_zone(WorkloadExchangedJtis::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workload_exchanged_jtis_unique")
                    .table(WorkloadExchangedJtis::Table)
                    .col(WorkloadExchangedJtis::Issuer)
                    .col(WorkloadExchangedJtis::Jti)
                    .unique()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        for (name, event) in POLICY_TRIGGERS {
            let sql = if postgres {
                format!(
                    "CREATE TRIGGER {name} AFTER {event} ON workload_identities \
                     FOR EACH STATEMENT EXECUTE FUNCTION regauth_bump_changes()"
                )
            } else {
                format!(
                    "CREATE TRIGGER {name} AFTER {event} ON workload_identities FOR EACH ROW \
                     BEGIN UPDATE regauth_changes SET version = version + 1 WHERE id = 1; END"
                )
            };
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        for (name, _) in POLICY_TRIGGERS {
            let on = if postgres {
                " ON workload_identities"
            } else {
                ""
            };
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}{on}"))
                .await?;
        }
        manager
            .drop_table(Table::drop().table(WorkloadExchangedJtis::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WorkloadCredentials::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WorkloadIdentities::Table).to_owned())
            .await
    }
}
