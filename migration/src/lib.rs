//! Database migrations, run at start-up by `regauth serve` and by `regauth migrate`.
//! One file per change, each with `up` and `down`; never edit a migration that has shipped.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_namespaces_and_deploy_tokens;
mod m20261122_000002_users_memberships_tokens_audit;
mod m20261122_000003_refresh_tokens;
mod m20261122_000004_expiry_notifications;
mod m20261128_110000_login_failures;
mod m20261128_130000_ci_deploy_secret;
mod m20261128_150000_project_visibility;
mod m20261128_170000_web_sign_in;
mod m20261129_010000_change_counter;
mod m20261129_050000_session_access_token;
mod m20261205_060000_unique_deploy_token_usernames;
mod m20261205_070000_workload_identities;
mod m20261205_080000_registry_events;
mod m20261205_100000_token_restrictions;
mod m20261205_110000_token_rotation_and_lifetime;
mod m20261205_120000_registry_event_inbox;

pub struct Migrator;

/// Runs a migration inside a transaction on every database (sea-orm-migration does so on
/// PostgreSQL only by default; SQLite has transactional DDL too): a migration that fails
/// half-way leaves nothing behind, and is not recorded as applied.
struct Transactional(Box<dyn MigrationTrait>);

impl MigrationName for Transactional {
    fn name(&self) -> &str {
        self.0.name()
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Transactional {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.up(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.down(manager).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        every_migration()
            .into_iter()
            .map(|migration| Box::new(Transactional(migration)) as Box<dyn MigrationTrait>)
            .collect()
    }
}

/// Every migration, oldest first. Register new ones at the end.
fn every_migration() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261122_000001_create_namespaces_and_deploy_tokens::Migration),
        Box::new(m20261122_000002_users_memberships_tokens_audit::Migration),
        Box::new(m20261122_000003_refresh_tokens::Migration),
        Box::new(m20261122_000004_expiry_notifications::Migration),
        Box::new(m20261128_110000_login_failures::Migration),
        Box::new(m20261128_130000_ci_deploy_secret::Migration),
        Box::new(m20261128_150000_project_visibility::Migration),
        Box::new(m20261128_170000_web_sign_in::Migration),
        Box::new(m20261129_010000_change_counter::Migration),
        Box::new(m20261129_050000_session_access_token::Migration),
        Box::new(m20261205_060000_unique_deploy_token_usernames::Migration),
        Box::new(m20261205_070000_workload_identities::Migration),
        Box::new(m20261205_080000_registry_events::Migration),
        Box::new(m20261205_100000_token_restrictions::Migration),
        Box::new(m20261205_110000_token_rotation_and_lifetime::Migration),
        Box::new(m20261205_120000_registry_event_inbox::Migration),
    ]
}
