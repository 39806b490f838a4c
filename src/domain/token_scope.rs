//! The seven deploy-token scopes (DOMAIN.md "Deploy tokens"), in GitLab's canonical order.

/// One scope a deploy token may carry. The order of [`DeployTokenScope::ALL`] is the order
/// GitLab's API lists them in, and the order every list we print follows.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum DeployTokenScope {
    ReadRepository,
    ReadRegistry,
    WriteRegistry,
    ReadVirtualRegistry,
    WriteVirtualRegistry,
    ReadPackageRegistry,
    WritePackageRegistry,
}

impl DeployTokenScope {
    pub const ALL: [DeployTokenScope; 7] = [
        DeployTokenScope::ReadRepository,
        DeployTokenScope::ReadRegistry,
        DeployTokenScope::WriteRegistry,
        DeployTokenScope::ReadVirtualRegistry,
        DeployTokenScope::WriteVirtualRegistry,
        DeployTokenScope::ReadPackageRegistry,
        DeployTokenScope::WritePackageRegistry,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses one scope name exactly as GitLab spells it.
    pub fn parse(name: &str) -> Option<DeployTokenScope> {
        name.parse().ok()
    }

    /// GitLab's one-line meaning of the scope, as its deploy-token form shows it.
    pub fn description(self) -> &'static str {
        match self {
            DeployTokenScope::ReadRepository => "Allows read-only access to the repository.",
            DeployTokenScope::ReadRegistry => "Allows read-only access to registry images.",
            DeployTokenScope::WriteRegistry => "Allows write access to registry images.",
            DeployTokenScope::ReadVirtualRegistry => {
                "Allows read-only access to container images through the dependency proxy."
            }
            DeployTokenScope::WriteVirtualRegistry => {
                "Allows read, write and delete access to container images through the dependency proxy."
            }
            DeployTokenScope::ReadPackageRegistry => {
                "Allows read-only access to the package registry."
            }
            DeployTokenScope::WritePackageRegistry => "Allows write access to the package registry.",
        }
    }

    /// True for the scopes that only make sense on a group (the virtual registry is per group).
    pub fn is_group_only(self) -> bool {
        matches!(
            self,
            DeployTokenScope::ReadVirtualRegistry | DeployTokenScope::WriteVirtualRegistry
        )
    }
}

/// A set of scopes, always iterated in canonical order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn empty() -> ScopeSet {
        ScopeSet(0)
    }

    fn bit(scope: DeployTokenScope) -> u8 {
        1 << (scope as u8)
    }

    pub fn insert(&mut self, scope: DeployTokenScope) {
        self.0 |= Self::bit(scope);
    }

    pub fn contains(self, scope: DeployTokenScope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = DeployTokenScope> {
        DeployTokenScope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(DeployTokenScope::as_str).collect()
    }
}

impl FromIterator<DeployTokenScope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = DeployTokenScope>>(iter: I) -> Self {
        let mut set = ScopeSet::empty();
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

crate::every_variant_listed!(DeployTokenScope, in_order);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for scope in DeployTokenScope::ALL {
            assert_eq!(DeployTokenScope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(DeployTokenScope::parse("READ_REGISTRY"), None);
        assert_eq!(DeployTokenScope::parse("api"), None);
    }

    #[test]
    fn a_scope_set_iterates_in_canonical_order_without_duplicates() {
        let set: ScopeSet = [
            DeployTokenScope::WriteRegistry,
            DeployTokenScope::ReadRepository,
            DeployTokenScope::WriteRegistry,
        ]
        .into_iter()
        .collect();
        assert_eq!(set.names(), vec!["read_repository", "write_registry"]);
    }
}
