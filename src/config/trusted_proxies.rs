//! The `trusted_proxies` setting and the one rule for believing `X-Forwarded-For`: only from
//! a peer the operator named, walking from the right (what nginx's `real_ip_recursive` does).
//! Pure; `client_address` applies it to requests.

use std::net::IpAddr;

use crate::domain::address_range::{canonical, Cidr};

/// The `trusted_proxies` setting: empty by default (no forwarded header is believed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| Cidr::parse(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(address))
    }

    /// The client address given the TCP peer and the `X-Forwarded-For` values in the order
    /// received (several headers are one list). Walking from the right, each trusted hop
    /// vouches for the address to its left; the first untrusted one is the client. A value
    /// that is not an address stops the walk at the last hop that vouched for it.
    pub fn resolve<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                return client;
            };
            client = canonical(address);
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|socket| socket.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_trusted() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.resolve(ip("198.51.100.9"), ["1.2.3.4"]),
            ip("198.51.100.9")
        );
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            trusted.resolve(ip("198.51.100.9"), ["1.2.3.4"]),
            ip("198.51.100.9"),
            "an untrusted peer cannot forge its address"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged 6.6.6.6; the outer proxy 192.168.1.1 appended the real client,
        // the inner proxy 10.0.0.2 appended 192.168.1.1, and connected to us.
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), ["6.6.6.6, 203.0.113.7, 192.168.1.1"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), ["6.6.6.6", "203.0.113.7:5555"]),
            ip("203.0.113.7"),
            "several headers are one list; ports are dropped"
        );
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), ["[2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), std::iter::empty::<&str>()),
            ip("10.0.0.2"),
            "no header: the proxy itself"
        );
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), ["10.0.0.5, 10.0.0.4"]),
            ip("10.0.0.5"),
            "all trusted: the left-most"
        );
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), ["203.0.113.7, garbage, 10.0.0.3"]),
            ip("10.0.0.3"),
            "garbage stops the walk at the hop that vouched for it"
        );
    }
}
