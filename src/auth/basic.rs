//! HTTP Basic credentials (RFC 7617), as `docker login` and friends send them.

use base64::Engine as _;

use crate::domain::TokenSecret;

/// A username and a secret from an `Authorization: Basic` header. The secret is wrapped so
/// that it cannot reach a log through `Debug`.
#[derive(Debug)]
pub struct BasicCredentials {
    pub username: String,
    pub secret: TokenSecret,
}

impl BasicCredentials {
    /// Parses the header value; `None` when it is not Basic or is malformed.
    pub fn from_header(value: &str) -> Option<BasicCredentials> {
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        // The username cannot hold ':', the password can (RFC 7617).
        let (username, password) = decoded.split_once(':')?;
        if username.is_empty() || password.is_empty() {
            return None;
        }
        Some(BasicCredentials {
            username: username.to_owned(),
            secret: TokenSecret::from_presented(password.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(plain: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(plain)
        )
    }

    #[test]
    fn a_basic_header_yields_username_and_secret() {
        let credentials =
            BasicCredentials::from_header(&header("gitlab+deploy-token-1:gldt-a:b")).unwrap();
        assert_eq!(credentials.username, "gitlab+deploy-token-1");
        assert_eq!(credentials.secret.expose(), "gldt-a:b");
    }

    #[test]
    fn other_schemes_and_garbage_are_not_credentials() {
        assert!(BasicCredentials::from_header("Bearer abc").is_none());
        assert!(BasicCredentials::from_header("Basic !!!").is_none());
        assert!(BasicCredentials::from_header(&header("no-colon")).is_none());
        assert!(BasicCredentials::from_header(&header("user:")).is_none());
        assert!(BasicCredentials::from_header(&header(":secret")).is_none());
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let value = header("u:p").replacen("Basic", "basic", 1);
        assert!(BasicCredentials::from_header(&value).is_some());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let credentials = BasicCredentials::from_header(&header("u:topsecret")).unwrap();
        assert!(!format!("{credentials:?}").contains("topsecret"));
    }
}
