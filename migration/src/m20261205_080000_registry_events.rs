//! What each credential really did at the registry: the registry's notifications
//! (`/api/v4/container_registry_event/events`). `registry_events` keeps manifest, tag,
//! repository and blob push/mount/delete events whole, one row each, and blob pulls as one row
//! per actor, repository and day (`aggregate_key`, `count`), each tied to the deploy token or
//! the workload identity policy its actor names. `registry_event_receipts` holds
//! the id of every event taken in, so that the registry's retries (delivery is at least once)
//! are not counted twice. `registry_event_addresses` holds, per deploy token, each network
//! (/24, /64) it acted from and when last, for the new-address warning;
//! `new_address_mail_subscribers` the users who asked to be mailed about it, and
//! `new_address_notices` each mail claimed (once per token, network and user). No table here
//! is read by the token path: no change-counter trigger.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistryEvents {
    Table,
    Id,
    CreatedAt,
    LastAt,
    EventId,
    AggregateKey,
    Action,
    TargetKind,
    Actor,
    DeployTokenId,
    WorkloadIdentityId,
    NamespaceId,
    Repository,
    FromRepository,
    Tag,
    Digest,
    MediaType,
    Size,
    Address,
    UserAgent,
    Count,
}

#[derive(DeriveIden)]
enum RegistryEventReceipts {
    Table,
    EventId,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum RegistryEventAddresses {
    Table,
    Id,
    DeployTokenId,
    Network,
    FirstSeen,
    LastSeen,
}

#[derive(DeriveIden)]
enum NewAddressMailSubscribers {
    Table,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NewAddressNotices {
    Table,
    Id,
    DeployTokenId,
    Network,
    UserId,
    ClaimedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RegistryEvents::Table)
                    .col(big_pk_auto(RegistryEvents::Id))
                    .col(timestamp_with_time_zone(RegistryEvents::CreatedAt))
                    .col(timestamp_with_time_zone(RegistryEvents::LastAt))
                    .col(string_len_null(RegistryEvents::EventId, 200))
                    .col(string_len_null(RegistryEvents::AggregateKey, 800))
                    .col(string_len(RegistryEvents::Action, 20))
                    .col(string_len(RegistryEvents::TargetKind, 20))
                    .col(string_len(RegistryEvents::Actor, 300))
                    .col(big_integer_null(RegistryEvents::DeployTokenId))
                    .col(big_integer_null(RegistryEvents::WorkloadIdentityId))
                    .col(big_integer_null(RegistryEvents::NamespaceId))
                    .col(string_len(RegistryEvents::Repository, 300))
                    .col(string_len_null(RegistryEvents::FromRepository, 300))
                    .col(string_len_null(RegistryEvents::Tag, 200))
                    .col(string_len_null(RegistryEvents::Digest, 200))
                    .col(string_len_null(RegistryEvents::MediaType, 200))
                    .col(big_integer_null(RegistryEvents::Size))
                    .col(string_len_null(RegistryEvents::Address, 100))
                    .col(string_len_null(RegistryEvents::UserAgent, 300))
                    .col(big_integer(RegistryEvents::Count).default(1))
                    .to_owned(),
            )
            .await?;
        // Blob pulls of one actor, repository and day add up in one row (NULL for the rest:
        // NULLs never collide in a unique index, on SQLite and PostgreSQL alike).
        manager
            .create_index(
                Index::create()
                    .name("registry_events_aggregate_key")
                    .table(RegistryEvents::Table)
                    .col(RegistryEvents::AggregateKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A token's events, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_registry_events_token")
                    .table(RegistryEvents::Table)
                    .col(RegistryEvents::DeployTokenId)
                    .col(RegistryEvents::LastAt)
                    .to_owned(),
            )
            .await?;
        // A workload identity policy's events, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_registry_events_workload_identity")
                    .table(RegistryEvents::Table)
                    .col(RegistryEvents::WorkloadIdentityId)
                    .col(RegistryEvents::LastAt)
                    .to_owned(),
            )
            .await?;
        // Pruning reads a time range.
        manager
            .create_index(
                Index::create()
                    .name("idx_registry_events_last_at")
                    .table(RegistryEvents::Table)
                    .col(RegistryEvents::LastAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RegistryEventReceipts::Table)
                    .col(string_len(RegistryEventReceipts::EventId, 200).primary_key())
                    .col(timestamp_with_time_zone(RegistryEventReceipts::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registry_event_receipts_received_at")
                    .table(RegistryEventReceipts::Table)
                    .col(RegistryEventReceipts::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RegistryEventAddresses::Table)
                    .col(big_pk_auto(RegistryEventAddresses::Id))
                    .col(big_integer(RegistryEventAddresses::DeployTokenId))
                    .col(string_len(RegistryEventAddresses::Network, 120))
                    .col(timestamp_with_time_zone(RegistryEventAddresses::FirstSeen))
                    .col(timestamp_with_time_zone(RegistryEventAddresses::LastSeen))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("registry_event_addresses_token_network")
                    .table(RegistryEventAddresses::Table)
                    .col(RegistryEventAddresses::DeployTokenId)
                    .col(RegistryEventAddresses::Network)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NewAddressMailSubscribers::Table)
                    .col(big_integer(NewAddressMailSubscribers::UserId).primary_key())
                    .col(timestamp_with_time_zone(
                        NewAddressMailSubscribers::CreatedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NewAddressNotices::Table)
                    .col(big_pk_auto(NewAddressNotices::Id))
                    .col(big_integer(NewAddressNotices::DeployTokenId))
                    .col(string_len(NewAddressNotices::Network, 120))
                    .col(big_integer(NewAddressNotices::UserId))
                    .col(timestamp_with_time_zone(NewAddressNotices::ClaimedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("new_address_notices_once")
                    .table(NewAddressNotices::Table)
                    .col(NewAddressNotices::DeployTokenId)
                    .col(NewAddressNotices::Network)
                    .col(NewAddressNotices::UserId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(NewAddressNotices::Table).to_owned())
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(NewAddressMailSubscribers::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(RegistryEventAddresses::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(RegistryEventReceipts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RegistryEvents::Table).to_owned())
            .await
    }
}
