//! Who is on the other end of a request: the TCP peer, unless that peer is one of the
//! configured `trusted_proxies`; then the right-most address in `X-Forwarded-For` that is not
//! itself a trusted proxy (what nginx's `real_ip_recursive` does). Anyone can send
//! `X-Forwarded-For`, so it is believed only from proxies the operator named. The one answer
//! is used by the access log, the audit trail and rate limits alike.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpRequest};

use crate::state::AppState;

use crate::domain::address_range::canonical;
pub use crate::domain::address_range::Cidr;

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

/// The client address of a request, by the server's `trusted_proxies`.
pub fn of_request(request: &HttpRequest) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| &state.settings.trusted_proxies);
    Some(match trusted {
        Some(trusted) => resolve_from_headers(trusted, peer, request.headers()),
        None => canonical(peer),
    })
}

/// [`TrustedProxies::resolve`] with the `X-Forwarded-For` headers of `headers`.
pub fn resolve_from_headers(trusted: &TrustedProxies, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    trusted.resolve(
        peer,
        headers
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok()),
    )
}

/// The client address as text, for the audit trail.
pub fn text_of_request(request: &HttpRequest) -> Option<String> {
    of_request(request).map(|address| address.to_string())
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
