//! Deploy-token secrets: generated from the OS CSPRNG with a recognisable prefix (so secret
//! scanners find leaked ones), shown once, stored only as a SHA-256 digest. A random secret of
//! ≥128 bits needs no slow password hash, and a digest can be looked up by a unique index.

use std::fmt;

use base64::Engine as _;
use ring::rand::SecureRandom as _;

use super::token_format::{TokenFormats, TokenKind};

/// Random bytes per secret: 24 bytes = 192 bits, 32 base64url characters.
const SECRET_RANDOM_BYTES: usize = 24;

/// A plain secret as the user sees it once. `Debug` and `Display` never print it, it has no
/// `==` (compare digests, or use [`constant_time_eq`]), and its memory is wiped when dropped.
#[derive(Clone)]
pub struct TokenSecret(String);

impl Drop for TokenSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Whether two secrets (CSRF tokens, pre-shared tokens, digests) are equal, looking at every
/// byte whatever the first difference, so the time taken tells nothing. Different lengths
/// are unequal (a length is no secret); empty never matches.
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    !expected.is_empty() && bool::from(expected.ct_eq(presented))
}

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

/// The start of a JWT: `eyJ`, a base64url `{"`.
const JWT_PREFIX: &str = "eyJ";

/// Whether text a client sent where a name belongs (a username) looks like a secret: it starts
/// with a known token prefix (the built-in ones, or one of this instance's `formats`:
/// `token_prefix`, `token_instance_prefix`), or it is a long run of base64-like characters
/// with all three character classes and high entropy, as a pasted random secret is and a
/// chosen name is not. Such text is never logged or stored.
pub fn looks_like_secret(text: &str, formats: &TokenFormats) -> bool {
    let text = text.trim();
    if formats.has_known_prefix(text)
        || text.starts_with(JWT_PREFIX)
        // Every kind regauth issues, by its built-in prefix.
        || TokenKind::ALL
            .iter()
            .any(|kind| text.starts_with(kind.default_prefix()))
    {
        return true;
    }
    if text.chars().count() < 20
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=' | '.'))
    {
        return false;
    }
    let classes = [
        text.chars().any(|c| c.is_ascii_uppercase()),
        text.chars().any(|c| c.is_ascii_lowercase()),
        text.chars().any(|c| c.is_ascii_digit()),
    ];
    classes.iter().all(|&present| present) && shannon_bits_per_char(text) >= 3.8
}

fn shannon_bits_per_char(text: &str) -> f64 {
    let mut counts = [0u32; 128];
    let mut total = 0u32;
    for byte in text.bytes().filter(u8::is_ascii) {
        counts[usize::from(byte)] += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = f64::from(total);
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / total;
            -p * p.log2()
        })
        .sum()
}

/// What may be logged or stored for a username a client sent: the name itself, or, when it
/// looks like a secret, a short digest of it (enough to group repeated attempts, useless to
/// anyone reading the log).
pub fn username_for_records<'a>(
    text: &'a str,
    formats: &TokenFormats,
) -> std::borrow::Cow<'a, str> {
    if looks_like_secret(text, formats) {
        let digest = TokenSecret::from_presented(text.to_owned()).digest();
        let short = digest.as_hex().get(..16).unwrap_or_default();
        std::borrow::Cow::Owned(format!("secret-like:sha256:{short}"))
    } else {
        std::borrow::Cow::Borrowed(text)
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
        assert_ne!(TokenSecret::generate("gldt-").unwrap().expose(), text);
    }

    #[test]
    fn secrets_compare_equal_only_whole_and_never_empty() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cret", b"s3crets"));
        assert!(
            !constant_time_eq(b"", b""),
            "an unset secret matches nothing"
        );
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

    #[test]
    fn a_secret_in_the_username_position_is_recognised_and_a_name_is_not() {
        let formats = TokenFormats::new("acme_", Some("acme-"));
        for secret in [
            TokenSecret::generate("gldt-").unwrap().expose().to_owned(),
            TokenSecret::generate("").unwrap().expose().to_owned(),
            "glpat-abc".to_owned(),
            "regauth-rt-xyz".to_owned(),
            "regauth-wl-xyz".to_owned(),
            "eyJhbGciOiJSUzI1NiJ9.e30.sig".to_owned(),
            "acme-dt-anything".to_owned(),
            "acme_anything".to_owned(),
        ] {
            assert!(looks_like_secret(&secret, &formats), "{secret}");
            let recorded = username_for_records(&secret, &formats);
            assert!(recorded.starts_with("secret-like:sha256:"), "{recorded}");
            assert!(!recorded.contains(&secret));
        }
        for name in [
            "gitlab+deploy-token-12345",
            "ci-deployer",
            "root",
            "Release-Bot-2026",
            "k8s-pull-secret-production",
            "Jane.Doe@example.com",
        ] {
            assert!(!looks_like_secret(name, &formats), "{name}");
            assert_eq!(username_for_records(name, &formats), name);
        }
    }

    #[test]
    fn an_empty_token_prefix_makes_no_name_a_secret() {
        let formats = TokenFormats::new("", None);
        assert!(!looks_like_secret("ci-deployer", &formats));
        assert!(looks_like_secret("gldt-anything", &formats));
    }
}
