//! sea-orm entities of regauth. Behaviour lives in the `regauth` crate's store and domain
//! modules; these are the table shapes only.

pub mod deploy_token;
pub mod namespace;

pub mod prelude {
    pub use super::deploy_token::Entity as DeployToken;
    pub use super::namespace::Entity as Namespace;
}
