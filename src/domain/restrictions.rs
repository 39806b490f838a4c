//! What fences a token in beyond its scopes (issue #27): the addresses it may be used from
//! and the repositories below its owner it may reach. Parsed once when the token is read, so
//! a check costs a few comparisons.

use std::net::IpAddr;

use super::address_range::IpRanges;
use super::repository_pattern::RepositoryPatterns;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRestrictions {
    /// The token's own allow-list (`ip_restriction_ranges`); empty: anywhere.
    pub ip_ranges: IpRanges,
    /// The allow-lists of the groups the token lives in (its owner, if a group, and every
    /// group above), each of which must admit the address. Loaded with the token wherever it
    /// authenticates; empty elsewhere (listings, management).
    /// Shared: a token read from the cache is cloned at every use.
    pub group_ip_ranges: std::sync::Arc<[IpRanges]>,
    /// The repositories below the owner it may reach; empty: all the owner reaches.
    pub repository_patterns: RepositoryPatterns,
}

impl TokenRestrictions {
    /// Whether a use from `address` is allowed: every non-empty list must hold it, and a use
    /// from an unknown address is allowed only when no list restricts.
    pub fn allows_address(&self, address: Option<IpAddr>) -> bool {
        let lists = std::iter::once(&self.ip_ranges).chain(self.group_ip_ranges.iter());
        match address {
            Some(address) => lists.into_iter().all(|ranges| ranges.allows(address)),
            None => lists.into_iter().all(IpRanges::is_empty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(text: &str) -> IpRanges {
        IpRanges::parse_text(text).unwrap()
    }

    #[test]
    fn the_token_and_every_group_above_it_must_admit_the_address() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        let token_only = TokenRestrictions {
            ip_ranges: ranges("10.0.0.0/8"),
            ..TokenRestrictions::default()
        };
        let group_only = TokenRestrictions {
            group_ip_ranges: vec![ranges("10.1.0.0/16")].into(),
            ..TokenRestrictions::default()
        };
        let both = TokenRestrictions {
            ip_ranges: ranges("10.0.0.0/8"),
            group_ip_ranges: vec![
                ranges("10.1.0.0/16"),
                IpRanges::default(),
                ranges("10.1.2.0/24,192.0.2.0/24"),
            ]
            .into(),
            ..TokenRestrictions::default()
        };
        for (restrictions, address, allowed) in [
            (&TokenRestrictions::default(), ip("203.0.113.9"), true),
            (&TokenRestrictions::default(), None, true),
            (&token_only, ip("10.9.9.9"), true),
            (&token_only, ip("127.0.0.1"), false),
            (&token_only, None, false),
            (&group_only, ip("10.1.0.1"), true),
            (&group_only, ip("10.2.0.1"), false),
            (&both, ip("10.1.2.3"), true),
            (&both, ip("10.1.3.3"), false),
            (&both, ip("192.0.2.1"), false),
        ] {
            assert_eq!(
                restrictions.allows_address(address),
                allowed,
                "{restrictions:?} {address:?}"
            );
        }
    }
}
