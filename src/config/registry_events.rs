//! `registry_events_secret`: the `Authorization` header value the registry's notification
//! endpoint sends (`notifications.endpoints[].headers`), as GitLab checks it. Kept as its
//! SHA-256 only, so that neither a `Debug` print nor a log line can show it, and compared in
//! constant time.

/// The shortest secret accepted: a guessable header would let anyone write the trail.
const MIN_LENGTH: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct RegistryEventsSecret {
    digest: [u8; 32],
}

impl RegistryEventsSecret {
    /// The setting's value; `Err` with the reason when it cannot be an HTTP header value or
    /// is too short.
    pub fn parse(value: &str) -> Result<RegistryEventsSecret, String> {
        if value.len() < MIN_LENGTH {
            return Err(format!(
                "must be at least {MIN_LENGTH} characters (it is the whole Authorization header the registry sends, e.g. \"Bearer <random>\")"
            ));
        }
        if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(
                "may hold only printable ASCII and spaces (it is an HTTP header value)".into(),
            );
        }
        Ok(RegistryEventsSecret {
            digest: sha256(value.as_bytes()),
        })
    }

    /// Whether a presented `Authorization` header is the secret: the digests are compared
    /// with every byte looked at, so the time taken does not tell how much of it was right.
    pub fn matches(&self, presented: &[u8]) -> bool {
        crate::domain::secret::constant_time_eq(&self.digest, &sha256(presented))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl std::fmt::Debug for RegistryEventsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryEventsSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_header_matches() {
        let secret = RegistryEventsSecret::parse("Bearer 0123456789abcdef").unwrap();
        assert!(secret.matches(b"Bearer 0123456789abcdef"));
        for wrong in [
            &b"Bearer 0123456789abcdeF"[..],
            b"Bearer 0123456789abcdef ",
            b"0123456789abcdef",
            b"",
        ] {
            assert!(!secret.matches(wrong));
        }
        assert_eq!(format!("{secret:?}"), "RegistryEventsSecret(<redacted>)");
    }

    #[test]
    fn short_or_unprintable_secrets_are_refused() {
        assert!(RegistryEventsSecret::parse("short").is_err());
        assert!(RegistryEventsSecret::parse("Bearer 0123456789\nabcdef").is_err());
    }
}
