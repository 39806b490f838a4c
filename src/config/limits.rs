//! Time and size limits that keep slow or numerous clients from holding the server.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, Seconds, SettingsError};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Seconds a client may take to send the request line and headers (1–300); then 408 and
    /// closed.
    request_head_timeout: Seconds,
    /// Seconds a client may take to send a body a route reads (1–300); then 408 and closed.
    request_body_timeout: Seconds,
    /// Seconds a TLS handshake may take (1–60), shorter than the head deadline: a connection
    /// that never starts its handshake holds one of `max_connection_rate` slots until then.
    tls_handshake_timeout: Seconds,
    /// Seconds an idle keep-alive connection stays open (`0`: no keep-alive).
    keep_alive: Seconds,
    /// Seconds the server waits for a client to close after the server ended a connection.
    client_disconnect_timeout: Seconds,
    /// Open connections per process (split evenly over the worker threads); beyond it new
    /// connections wait in the listen backlog.
    max_connections: usize,
    /// TLS handshakes in progress per process (split over the workers).
    max_connection_rate: usize,
    /// Largest `POST /jwt/auth` form in bytes (1024–1048576); larger: 413.
    token_body_limit: usize,
    /// Largest management API body in bytes (1024–1048576); larger: 413.
    api_body_limit: usize,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            request_head_timeout: Seconds(5),
            request_body_timeout: Seconds(10),
            tls_handshake_timeout: Seconds(3),
            keep_alive: Seconds(5),
            client_disconnect_timeout: Seconds(1),
            max_connections: 4096,
            max_connection_rate: 256,
            token_body_limit: 16 * 1024,
            api_body_limit: 16 * 1024,
        }
    }
}

/// Time and size limits for client connections (all per server process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send the request line and headers (and a TLS handshake).
    pub request_head_timeout: Duration,
    /// How long a client may take to send a request body, once its handler reads it.
    pub request_body_timeout: Duration,
    /// How long a TLS handshake may take. Shorter than the head deadline: a handshake slot
    /// (`max_connection_rate` per process) held by a connection that sends nothing keeps a real
    /// client waiting until it ends.
    pub tls_handshake_timeout: Duration,
    /// How long an idle keep-alive connection stays open (zero: no keep-alive).
    pub keep_alive: Duration,
    /// How long the server waits for a client to close after the server ended the connection.
    pub client_disconnect_timeout: Duration,
    /// Open connections, all workers together.
    pub max_connections: usize,
    /// TLS handshakes in progress, all workers together.
    pub max_connection_rate: usize,
    /// The largest `POST /jwt/auth` form body, in bytes.
    pub token_body_limit: usize,
    /// The largest management API body, in bytes.
    pub api_body_limit: usize,
}

impl Raw {
    pub(super) fn validate(self) -> Result<ConnectionLimits, SettingsError> {
        let request_head_timeout =
            self.request_head_timeout
                .within("request_head_timeout", 1, 300, "")?;
        let request_body_timeout =
            self.request_body_timeout
                .within("request_body_timeout", 1, 300, "")?;
        let tls_handshake_timeout =
            self.tls_handshake_timeout
                .within("tls_handshake_timeout", 1, 60, "")?;
        let keep_alive = self.keep_alive.within("keep_alive", 0, 3600, "")?;
        let client_disconnect_timeout =
            self.client_disconnect_timeout
                .within("client_disconnect_timeout", 0, 60, "")?;
        for (name, value, low, high) in [
            ("max_connections", self.max_connections, 1, 1_000_000),
            ("max_connection_rate", self.max_connection_rate, 1, 100_000),
            ("token_body_limit", self.token_body_limit, 1024, 1024 * 1024),
            ("api_body_limit", self.api_body_limit, 1024, 1024 * 1024),
        ] {
            if !(low..=high).contains(&value) {
                return Err(invalid(
                    name,
                    format!("{value} is out of range: between {low} and {high}"),
                ));
            }
        }
        Ok(ConnectionLimits {
            request_head_timeout,
            request_body_timeout,
            tls_handshake_timeout,
            keep_alive,
            client_disconnect_timeout,
            max_connections: self.max_connections,
            max_connection_rate: self.max_connection_rate,
            token_body_limit: self.token_body_limit,
            api_body_limit: self.api_body_limit,
        })
    }
}
