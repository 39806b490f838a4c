//! Database migrations, run at start-up by `regauth serve` and by `regauth migrate`.
//! One file per change, each with `up` and `down`; never edit a migration that has shipped.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_namespaces_and_deploy_tokens;
mod m20261122_000002_users_memberships_tokens_audit;
mod m20261122_000003_refresh_tokens;
mod m20261122_000004_expiry_notifications;
mod m20261128_140000_change_counter;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_namespaces_and_deploy_tokens::Migration),
            Box::new(m20261122_000002_users_memberships_tokens_audit::Migration),
            Box::new(m20261122_000003_refresh_tokens::Migration),
            Box::new(m20261122_000004_expiry_notifications::Migration),
            Box::new(m20261128_140000_change_counter::Migration),
        ]
    }
}
