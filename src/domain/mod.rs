//! Plain domain types: deploy tokens, scopes, secrets, expiry, namespaces, users and roles.

/// Checks at compile time that `$enum::ALL` lists every variant of a fieldless enum (derived
/// `strum::EnumCount`) exactly once, so that a variant added without its table entry fails
/// the build rather than a lookup or a metric at run time. With `in_order`, also in
/// declaration order: `variant as usize` then indexes arrays built from `ALL`.
#[macro_export]
macro_rules! every_variant_listed {
    ($enum:ty) => {
        $crate::every_variant_listed!(@check $enum, false);
    };
    ($enum:ty, in_order) => {
        $crate::every_variant_listed!(@check $enum, true);
    };
    (@check $enum:ty, $in_order:expr) => {
        const _: () = {
            let all = <$enum>::ALL;
            let count = <$enum as strum::EnumCount>::COUNT;
            assert!(all.len() == count);
            let mut seen = [false; <$enum as strum::EnumCount>::COUNT];
            let mut index = 0;
            while index < count {
                let discriminant = all[index] as usize;
                assert!(discriminant < count && !seen[discriminant]);
                assert!(!$in_order || discriminant == index);
                seen[discriminant] = true;
                index += 1;
            }
        };
    };
}

pub mod address_range;
pub mod audit;
pub mod deploy_token;
pub mod expiry;
pub mod login_throttle;
pub mod namespace;
pub mod notice;
pub mod path;
pub mod registry_event;
pub mod repository_pattern;
pub mod restrictions;
pub mod rotation;
pub mod secret;
pub mod text;
pub mod token_format;
pub mod token_lifetime;
pub mod token_scope;
pub mod user;
pub mod workload_identity;

pub use audit::{ActorKind, AuditAction, AuditEvent};
pub use deploy_token::{DeployToken, NewDeployToken, ValidationError};
pub use namespace::{Namespace, NamespaceKind, Visibility};
pub use notice::NoticeWindow;
pub use path::{NamespacePath, PathError};
pub use restrictions::TokenRestrictions;
pub use secret::{SecretDigest, TokenSecret};
pub use token_scope::{DeployTokenScope, ScopeSet};
pub use user::{ApiScope, Email, PersonalAccessToken, Role, User, Username};
