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

#[cfg(test)]
mod tests {
    use super::audit::{ActorKind, AuditAction};
    use super::registry_event::{RegistryAction, TargetKind};
    use super::*;

    /// The names are derived from the variants (strum): renaming a variant must not change
    /// what the database holds or what people read.
    #[test]
    fn the_names_stored_and_shown_stay_and_parse_back() {
        let actors = ActorKind::ALL.map(ActorKind::as_str).join(" ");
        assert_eq!(actors, "user cli deploy_token anonymous reporter workload");
        assert!(ActorKind::ALL
            .into_iter()
            .all(|kind| kind.as_str().parse() == Ok(kind)));
        assert!(AuditAction::ALL
            .into_iter()
            .all(|action| action.as_str().parse() == Ok(action)));
        assert_eq!(
            AuditAction::GroupTokenPolicyChange.as_str(),
            "group.token_policy"
        );
        let scopes = DeployTokenScope::ALL
            .map(DeployTokenScope::as_str)
            .join(" ");
        assert_eq!(
            scopes,
            "read_repository read_registry write_registry read_virtual_registry \
             write_virtual_registry read_package_registry write_package_registry"
        );
        assert!(DeployTokenScope::ALL
            .into_iter()
            .all(
                |scope| DeployTokenScope::parse(scope.as_str()) == Some(scope)
                    && scope.to_string() == scope.as_str()
            ));
        assert_eq!(DeployTokenScope::parse("Read_Registry"), None);
        let roles = Role::ALL.map(Role::as_str).join(" ");
        assert_eq!(roles, "guest reporter developer maintainer owner");
        assert_eq!(Role::parse(" Maintainer "), Some(Role::Maintainer));
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(ApiScope::parse(" read_api"), Some(ApiScope::ReadApi));
        assert_eq!(ApiScope::parse("API"), None);
        assert_eq!(
            Visibility::ALL.map(Visibility::as_str),
            ["private", "internal", "public"]
        );
        assert_eq!(NamespaceKind::parse("group"), Some(NamespaceKind::Group));
        assert_eq!(NamespaceKind::parse("Group"), None);
        assert_eq!(NamespaceKind::Project.to_string(), "project");
        let actions = RegistryAction::ALL.map(RegistryAction::as_str);
        assert_eq!(actions, ["push", "pull", "mount", "delete"]);
        assert_eq!(RegistryAction::parse("mount"), Some(RegistryAction::Mount));
        let targets = TargetKind::ALL.map(TargetKind::as_str);
        assert_eq!(targets, ["manifest", "blob", "tag", "repository"]);
        assert_eq!(TargetKind::parse("blob"), Some(TargetKind::Blob));
    }
}
