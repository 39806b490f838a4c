//! `/-/forward-auth`, the answer to a reverse proxy in front of git and package servers:
//! which headers carry the original request, and GitLab's external authorization switch.

use serde::{Deserialize, Serialize};

use super::{invalid, SettingsError};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Refuse deploy tokens for git and package requests (`/-/forward-auth`); the container
    /// registry is unaffected.
    external_authorization: bool,
    /// Headers carrying the original URI to `/-/forward-auth` (comma list); those present must
    /// agree, else 403.
    forward_auth_uri_headers: String,
    /// Headers carrying the original method (comma list, must agree); without one the request
    /// is refused (403) and the proxy's configuration error logged: nginx's `auth_request`
    /// sub-request is a GET whatever the original method.
    forward_auth_method_headers: String,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            external_authorization: false,
            forward_auth_uri_headers: "X-Original-URI,X-Forwarded-Uri".into(),
            forward_auth_method_headers: "X-Original-Method,X-Forwarded-Method".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuthSettings {
    /// GitLab's external authorization switch: deploy tokens are refused for git and
    /// package operations (`/-/forward-auth`); the container registry is unaffected.
    pub external_authorization: bool,
    /// Headers that carry the original request URI to `/-/forward-auth`; those present must
    /// carry the same value.
    pub uri_headers: Vec<String>,
    /// Headers that carry the original method; without one, the sub-request's own method
    /// (nginx's `auth_request` keeps the original method).
    pub method_headers: Vec<String>,
}

impl Raw {
    pub(super) fn validate(self) -> Result<ForwardAuthSettings, SettingsError> {
        let uri_headers = header_list("forward_auth_uri_headers", &self.forward_auth_uri_headers)?;
        let method_headers = header_list(
            "forward_auth_method_headers",
            &self.forward_auth_method_headers,
        )?;
        if uri_headers.is_empty() {
            return Err(invalid(
                "forward_auth_uri_headers",
                "name at least one header, such as X-Original-URI",
            ));
        }
        Ok(ForwardAuthSettings {
            external_authorization: self.external_authorization,
            uri_headers,
            method_headers,
        })
    }
}

/// A comma-separated list of HTTP header names (RFC 9110 tokens), blanks ignored.
fn header_list(name: &'static str, text: &str) -> Result<Vec<String>, SettingsError> {
    text.split(',')
        .map(str::trim)
        .filter(|header| !header.is_empty())
        .map(|header| {
            let valid = header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if valid {
                Ok(header.to_owned())
            } else {
                Err(invalid(
                    name,
                    format!("{header:?} is not an HTTP header name"),
                ))
            }
        })
        .collect()
}
