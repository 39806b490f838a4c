//! Claims of a registry bearer token (docker token authentication spec).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use super::error::SignError;

/// Allowance for clock skew between this server and the registry: tokens are
/// valid from this long before they are issued.
const NOT_BEFORE_SKEW_SECS: i64 = 10;

/// One grant of a token: actions allowed on one resource.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// Resource type, e.g. `"repository"` or `"registry"`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name, e.g. `"group/project/image"` or `"catalog"`.
    pub name: String,
    /// Granted actions, e.g. `["pull", "push"]`; may be empty.
    pub actions: Vec<String>,
}

/// The claims of a registry token.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RegistryClaims {
    /// Issuer; must equal the registry's `auth.token.issuer`.
    pub iss: String,
    /// Subject: the authenticated account name.
    pub sub: String,
    /// Audience; must equal the registry's `auth.token.service`. Always a
    /// single JSON string, never an array.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token ID: 128 random bits, lowercase hex.
    pub jti: String,
    /// Granted access.
    pub access: Vec<AccessEntry>,
}

impl RegistryClaims {
    /// Claims issued at `now`, valid from `now - 10 s` (clock skew) to
    /// `now + ttl`, with a fresh random `jti`.
    ///
    /// # Errors
    ///
    /// [`SignError::Random`] when the system random number generator fails.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        audience: impl Into<String>,
        access: Vec<AccessEntry>,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Self, SignError> {
        let iat = now.timestamp();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Ok(RegistryClaims {
            iss: issuer.into(),
            sub: subject.into(),
            aud: audience.into(),
            exp: iat.saturating_add(ttl_secs),
            nbf: iat.saturating_sub(NOT_BEFORE_SKEW_SECS),
            iat,
            jti: random_jti()?,
            access,
        })
    }
}

/// 128 random bits as 32 lowercase hex characters.
fn random_jti() -> Result<String, SignError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SignError::Random)?;
    Ok(bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(now: DateTime<Utc>) -> RegistryClaims {
        RegistryClaims::new(
            "regauth",
            "alice",
            "registry.example.com",
            vec![AccessEntry {
                resource_type: "repository".into(),
                name: "group/app".into(),
                actions: vec!["pull".into()],
            }],
            now,
            Duration::from_secs(300),
        )
        .expect("claims")
    }

    #[test]
    fn times_and_jti() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("ts");
        let c = sample(now);
        assert_eq!(c.iat, 1_700_000_000);
        assert_eq!(c.nbf, 1_700_000_000 - 10);
        assert_eq!(c.exp, 1_700_000_300);
        assert_eq!(c.jti.len(), 32);
        assert!(c
            .jti
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(c.jti, sample(now).jti);
    }

    #[test]
    fn serialises_aud_as_string_and_access_type() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("ts");
        let v = serde_json::to_value(sample(now)).expect("json");
        assert!(v["aud"].is_string());
        assert_eq!(v["aud"], "registry.example.com");
        assert_eq!(
            v["access"],
            serde_json::json!([{"type":"repository","name":"group/app","actions":["pull"]}])
        );
        let back: RegistryClaims = serde_json::from_value(v).expect("roundtrip");
        assert_eq!(back.access[0].resource_type, "repository");
    }

    #[test]
    fn huge_ttl_saturates() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("ts");
        let c = RegistryClaims::new("i", "s", "a", vec![], now, Duration::MAX).expect("claims");
        assert_eq!(c.exp, i64::MAX);
    }
}
