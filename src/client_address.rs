//! Who is on the other end of a request: the TCP peer, unless that peer is one of the
//! configured `trusted_proxies`; then the right-most address in `X-Forwarded-For` that is not
//! itself a trusted proxy (what nginx's `real_ip_recursive` does). Anyone can send
//! `X-Forwarded-For`, so it is believed only from proxies the operator named. The one answer
//! is used by the access log, the audit trail and rate limits alike. The rule itself is
//! `config::TrustedProxies::resolve` (pure); this is its request glue.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpRequest};

use crate::config::TrustedProxies;
use crate::domain::address_range::canonical;
use crate::state::AppState;

/// The client address of a request, by the server's `trusted_proxies`.
pub fn of_request(request: &HttpRequest) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| &state.settings.server.trusted_proxies);
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
