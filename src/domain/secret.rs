//! Deploy-token secrets: generated from the OS CSPRNG with a recognisable prefix (so secret
//! scanners find leaked ones), shown once, stored only as a SHA-256 digest. A random secret of
//! ≥128 bits needs no slow password hash, and a digest can be looked up by a unique index.

use std::fmt;

use base64::Engine as _;
use ring::rand::SecureRandom as _;

/// Random bytes per secret: 24 bytes = 192 bits, 32 base64url characters.
const SECRET_RANDOM_BYTES: usize = 24;

/// A plain secret as the user sees it once. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// Generates a fresh secret: `prefix` + 32 base64url characters from the OS CSPRNG.
    pub fn generate(prefix: &str) -> Result<TokenSecret, ring::error::Unspecified> {
        let mut bytes = [0u8; SECRET_RANDOM_BYTES];
        ring::rand::SystemRandom::new().fill(&mut bytes)?;
        let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Ok(TokenSecret(format!("{prefix}{random}")))
    }

    /// Wraps a secret presented by a client.
    pub fn from_presented(secret: String) -> TokenSecret {
        TokenSecret(secret)
    }

    /// The plain text, for the one place that shows it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> SecretDigest {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in digest.as_ref() {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        SecretDigest(hex)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Lowercase hex SHA-256 of a secret: what the database stores and indexes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest(String);

impl SecretDigest {
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_has_the_prefix_and_192_random_bits() {
        let secret = TokenSecret::generate("gldt-").unwrap();
        let text = secret.expose();
        assert!(text.starts_with("gldt-"));
        assert_eq!(text.len(), "gldt-".len() + 32);
        assert_ne!(TokenSecret::generate("gldt-").unwrap(), secret);
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_whole_secret() {
        // printf %s abc | sha256sum
        let digest = TokenSecret::from_presented("abc".into()).digest();
        assert_eq!(
            digest.as_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret_or_its_digest() {
        let secret = TokenSecret::from_presented("gldt-supersecret".into());
        assert!(!format!("{secret:?}").contains("supersecret"));
        assert!(!format!("{:?}", secret.digest()).contains(secret.digest().as_hex()));
    }
}
