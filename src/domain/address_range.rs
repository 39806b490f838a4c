//! Address blocks: the `trusted_proxies` setting and the address allow-lists of tokens,
//! policies and groups (`ip_restriction_ranges`, GitLab's name: CIDRs, IPv4 and IPv6, as a
//! comma-separated string or a JSON list; WIRE-FORMATS.md §2(e)).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::deploy_token::ValidationError;

/// One `address/prefix` block, e.g. `10.0.0.0/8` or `fd00::/8`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= max)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length (0 to {max})"))?,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }

    /// True when the block's address has no bits set past its prefix (`10.0.0.0/8`, not
    /// `10.1.2.3/8`): an allow-list entry must say what it allows.
    fn is_network_address(&self) -> bool {
        match self.network {
            IpAddr::V4(v4) => {
                u32::from(v4) & u32::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0) == 0
            }
            IpAddr::V6(v6) => {
                u128::from(v6) & u128::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0) == 0
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; anything else unchanged.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Most blocks one allow-list may hold.
pub const MAX_RANGES: usize = 100;

/// An address allow-list, parsed once (when its row is read) and shared cheaply: empty means
/// "from anywhere".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRanges(Arc<[Cidr]>);

impl IpRanges {
    /// GitLab's comma-separated form (`"10.0.0.0/8, 2001:db8::/32"`; blanks and empty
    /// entries ignored; `""` clears the list).
    pub fn parse_text(text: &str) -> Result<IpRanges, ValidationError> {
        IpRanges::parse_entries(text.split([',', ' ', '\n', '\t']))
    }

    /// A JSON list of blocks (each entry may itself be comma-separated).
    pub fn parse_list<S: AsRef<str>>(entries: &[S]) -> Result<IpRanges, ValidationError> {
        IpRanges::parse_entries(
            entries
                .iter()
                .flat_map(|entry| entry.as_ref().split([',', ' ', '\n', '\t'])),
        )
    }

    fn parse_entries<'a>(
        entries: impl Iterator<Item = &'a str>,
    ) -> Result<IpRanges, ValidationError> {
        let invalid = |message: String| ValidationError::new("ip_restriction_ranges", message);
        let mut blocks: Vec<Cidr> = Vec::new();
        for entry in entries.map(str::trim).filter(|entry| !entry.is_empty()) {
            let block = Cidr::parse(entry).map_err(invalid)?;
            if !block.is_network_address() {
                return Err(invalid(format!(
                    "{entry:?} has bits set past its prefix length: write the block's first address (e.g. 10.0.0.0/8)"
                )));
            }
            if !blocks.contains(&block) {
                blocks.push(block);
            }
            if blocks.len() > MAX_RANGES {
                return Err(invalid(format!("has more than {MAX_RANGES} entries")));
            }
        }
        Ok(IpRanges(blocks.into()))
    }

    /// The stored form; [`IpRanges::parse_text`] reads it back.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(Cidr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }

    /// True when the list is empty (no restriction) or a block holds `address`.
    pub fn allows(&self, address: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|block| block.contains(address))
    }
}

impl fmt::Display for IpRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Serde: `ip_restriction_ranges` as GitLab's comma-separated string or a JSON list, kept
/// as text entries for validation (`null` or absent: none).
pub fn deserialize_ranges<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum TextOrList {
        Text(String),
        List(Vec<String>),
    }
    Ok(
        match <Option<TextOrList> as serde::Deserialize>::deserialize(deserializer)? {
            None => Vec::new(),
            Some(TextOrList::Text(text)) => vec![text],
            Some(TextOrList::List(list)) => list,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_parse_and_match() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped peers");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        let single = Cidr::parse("192.0.2.1").unwrap();
        assert!(single.contains(ip("192.0.2.1")) && !single.contains(ip("192.0.2.2")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "proxy.local",
            "10.0.0.0/x",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn allow_lists_parse_from_gitlabs_string_or_a_list() {
        let text = IpRanges::parse_text("10.20.0.0/16,2001:db8::/48 , 192.0.2.7").unwrap();
        assert_eq!(text.to_text(), "10.20.0.0/16,2001:db8::/48,192.0.2.7/32");
        let list = IpRanges::parse_list(&["10.20.0.0/16", "2001:db8::/48,192.0.2.7/32"]).unwrap();
        assert_eq!(list, text);
        assert_eq!(
            IpRanges::parse_text(&text.to_text()).unwrap(),
            text,
            "round trip"
        );
        assert!(IpRanges::parse_text("").unwrap().is_empty(), "empty clears");
        assert!(IpRanges::parse_text(" , ").unwrap().is_empty());
        assert_eq!(
            IpRanges::parse_text("10.0.0.0/8,10.0.0.0/8")
                .unwrap()
                .blocks()
                .len(),
            1,
            "duplicates merge"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_field_and_the_entry() {
        for (bad, says) in [
            ("10.0.0.0/33", "invalid prefix length"),
            ("example.com", "not an IP address"),
            ("10.1.2.3/8", "first address"),
            ("2001:db8::1/32", "first address"),
            ("10.0.0.0/8;rm", "invalid prefix length"),
            ("10.0.0.0;/8", "not an IP address"),
        ] {
            let error = IpRanges::parse_text(bad).unwrap_err();
            assert_eq!(error.field, "ip_restriction_ranges");
            assert!(error.message.contains(says), "{bad:?}: {}", error.message);
        }
        let many: Vec<String> = (0..=MAX_RANGES)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        assert!(IpRanges::parse_list(&many).is_err());
    }

    #[test]
    fn an_allow_list_admits_exactly_its_blocks() {
        let ranges = IpRanges::parse_text("10.0.0.0/8,2001:db8::/32").unwrap();
        for (address, allowed) in [
            ("10.1.2.3", true),
            ("10.255.255.255", true),
            ("::ffff:10.9.9.9", true),
            ("11.0.0.0", false),
            ("127.0.0.1", false),
            ("2001:db8:1::5", true),
            ("2001:db9::1", false),
            ("::1", false),
            ("::a01:203", false),
        ] {
            assert_eq!(ranges.allows(ip(address)), allowed, "{address}");
        }
        assert!(
            IpRanges::default().allows(ip("203.0.113.1")),
            "empty: anywhere"
        );
    }
}
