//! The secrets regauth issues, their kinds and their format (WIRE-FORMATS.md §2(d)).
//!
//! Format v2, for every secret made from now on: `<prefix><body><check>`, where `body` is 32
//! base62 characters (190 random bits) and `check` the CRC32 of `prefix ‖ body` in 6 base62
//! characters, GitHub's layout. A scanner matches a kind with one regular expression and tells
//! a real token from a look-alike offline; regauth refuses a malformed or wrong-checksum secret
//! before any database lookup. The prefix is the kind's own (`gldt-`, `glpat-`, `regauth-rt-`),
//! or, with `token_instance_prefix` set, `<instance>dt-`, `<instance>pat-`, `<instance>rt-`, as
//! GitLab's instance prefixes do, so leaks of one instance's tokens can be routed to it.
//!
//! Format v1 (before): `<prefix>` + 32 base64url characters, no checksum. Those secrets keep
//! working: they are told apart by their length. A secret with no prefix regauth knows (made
//! under an older `token_prefix`) is looked up as before.
//!
//! The prefixes below must never change: tokens in the wild carry them.

use ring::rand::SecureRandom as _;

use super::TokenSecret;

/// Every kind of secret regauth issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount)]
pub enum TokenKind {
    DeployToken,
    PersonalAccessToken,
    RefreshToken,
    /// The short-lived credential the token exchange (workload identity) mints.
    WorkloadCredential,
}

impl TokenKind {
    pub const ALL: [TokenKind; 4] = [
        TokenKind::DeployToken,
        TokenKind::PersonalAccessToken,
        TokenKind::RefreshToken,
        TokenKind::WorkloadCredential,
    ];

    /// Each kind's names in one row. Never change a prefix or a code: tokens in the wild
    /// carry them.
    const fn names(self) -> KindNames {
        match self {
            TokenKind::DeployToken => KindNames {
                name: "deploy_token",
                default_prefix: "gldt-",
                instance_code: "dt-",
            },
            TokenKind::PersonalAccessToken => KindNames {
                name: "personal_access_token",
                default_prefix: "glpat-",
                instance_code: "pat-",
            },
            TokenKind::RefreshToken => KindNames {
                name: "refresh_token",
                default_prefix: "regauth-rt-",
                instance_code: "rt-",
            },
            TokenKind::WorkloadCredential => KindNames {
                name: "workload_credential",
                default_prefix: "regauth-wl-",
                instance_code: "wt-",
            },
        }
    }

    /// The prefix without an instance prefix (deploy tokens: unless `token_prefix` says
    /// otherwise).
    pub const fn default_prefix(self) -> &'static str {
        self.names().default_prefix
    }

    /// The type code after an instance prefix (`acme-dt-`).
    pub const fn instance_code(self) -> &'static str {
        self.names().instance_code
    }

    /// The name in API answers (`POST /api/v4/admin/token`).
    pub const fn as_str(self) -> &'static str {
        self.names().name
    }
}

/// What a kind is called and how its secrets begin.
struct KindNames {
    /// In API answers and the audit trail.
    name: &'static str,
    /// Without an instance prefix.
    default_prefix: &'static str,
    /// After an instance prefix.
    instance_code: &'static str,
}

const BODY_CHARS: usize = 32;
const CHECK_CHARS: usize = 6;
const V1_BODY_CHARS: usize = 32;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Longer than any secret regauth makes: refused before anything else looks at it.
const MAX_SECRET_BYTES: usize = 256;

/// The prefixes in force: the deploy-token prefix (`token_prefix`) and the instance prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFormats {
    deploy_prefix: String,
    instance_prefix: Option<String>,
    /// Every prefix regauth recognises with its kind, longest first (`acme-dt-` before a
    /// deploy prefix `acme-`), made once: `shape` runs on every request.
    recognised: Vec<(String, TokenKind)>,
}

impl Default for TokenFormats {
    fn default() -> Self {
        TokenFormats::new(TokenKind::DeployToken.default_prefix(), None)
    }
}

/// What a presented secret looks like, before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A v2 secret of this kind with a valid checksum.
    Valid(TokenKind),
    /// A v1 secret of this kind (no checksum to check).
    Legacy(TokenKind),
    /// No prefix regauth knows: perhaps made under an older `token_prefix`; looked up as is.
    Unknown,
    /// Carries a prefix regauth knows but is not one of its secrets (wrong length, characters
    /// or checksum), or is no plausible secret at all: refused without a lookup.
    Malformed,
}

impl TokenFormats {
    pub fn new(deploy_prefix: &str, instance_prefix: Option<&str>) -> TokenFormats {
        let mut formats = TokenFormats {
            deploy_prefix: deploy_prefix.to_owned(),
            instance_prefix: instance_prefix
                .filter(|prefix| !prefix.is_empty())
                .map(str::to_owned),
            recognised: Vec::new(),
        };
        let mut recognised: Vec<(String, TokenKind)> = TokenKind::ALL
            .iter()
            .flat_map(|&kind| {
                [
                    (formats.prefix(kind), kind),
                    (formats.legacy_prefix(kind).to_owned(), kind),
                ]
            })
            .collect();
        recognised.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        recognised.dedup();
        formats.recognised = recognised;
        formats
    }

    /// The prefix new secrets of `kind` get.
    pub fn prefix(&self, kind: TokenKind) -> String {
        match &self.instance_prefix {
            Some(instance) => format!("{instance}{}", kind.instance_code()),
            None => self.legacy_prefix(kind).to_owned(),
        }
    }

    fn legacy_prefix(&self, kind: TokenKind) -> &str {
        match kind {
            TokenKind::DeployToken => &self.deploy_prefix,
            other => other.default_prefix(),
        }
    }

    /// A fresh v2 secret of `kind`.
    pub fn generate(&self, kind: TokenKind) -> Result<TokenSecret, ring::error::Unspecified> {
        let prefix = self.prefix(kind);
        let body = random_base62(BODY_CHARS)?;
        let check = base62_fixed(crc_of(&prefix, &body), CHECK_CHARS);
        Ok(TokenSecret::from_presented(format!(
            "{prefix}{body}{check}"
        )))
    }

    /// What `presented` is, judged on its text alone.
    pub fn shape(&self, presented: &str) -> Shape {
        if presented.is_empty()
            || presented.len() > MAX_SECRET_BYTES
            || !presented.bytes().all(|b| b.is_ascii_graphic())
        {
            return Shape::Malformed;
        }
        for (prefix, kind) in &self.recognised {
            let kind = *kind;
            let Some(rest) = presented.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if rest.len() == BODY_CHARS + CHECK_CHARS && rest.bytes().all(is_base62) {
                let (body, check) = rest.split_at(BODY_CHARS);
                // Compared as numbers: no string is made on the token endpoint's path.
                return if base62_value(check) == Some(u64::from(crc_of(prefix, body))) {
                    Shape::Valid(kind)
                } else {
                    Shape::Malformed
                };
            }
            if rest.len() == V1_BODY_CHARS
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Shape::Legacy(kind);
            }
            return Shape::Malformed;
        }
        Shape::Unknown
    }

    /// The kind whose prefix `presented` carries, judged on the prefix alone (no checksum):
    /// what routes a secret to its kind's check, which then judges the whole text once.
    pub fn kind_by_prefix(&self, presented: &str) -> Option<TokenKind> {
        self.recognised
            .iter()
            .find(|(prefix, _)| presented.starts_with(prefix.as_str()))
            .map(|(_, kind)| *kind)
    }

    /// Whether `text` begins with the prefix of one of this instance's secrets (an empty
    /// `token_prefix` is no prefix): a username that does is a pasted secret.
    pub fn has_known_prefix(&self, text: &str) -> bool {
        self.recognised
            .iter()
            .any(|(prefix, _)| !prefix.is_empty() && text.starts_with(prefix.as_str()))
    }

    /// Whether a presented secret may be looked up as a secret of `kind`: not malformed and
    /// not recognisably another kind.
    pub fn may_be(&self, presented: &str, kind: TokenKind) -> bool {
        match self.shape(presented) {
            Shape::Valid(found) | Shape::Legacy(found) => found == kind,
            Shape::Unknown => true,
            Shape::Malformed => false,
        }
    }

    /// Every secret of this instance's v2 format that `text` holds, in order (scanner output,
    /// a chat log, a report body): each found by its prefix and checked.
    pub fn find_in(&self, text: &str) -> Vec<(TokenKind, String)> {
        let mut found = Vec::new();
        let mut at = 0;
        'scan: while at < text.len() {
            for (prefix, _) in &self.recognised {
                if text[at..].starts_with(prefix.as_str()) {
                    let tail = &text[at + prefix.len()..];
                    let length = tail
                        .bytes()
                        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                        .count();
                    let candidate = &text[at..at + prefix.len() + length];
                    if let Shape::Valid(kind) | Shape::Legacy(kind) = self.shape(candidate) {
                        found.push((kind, candidate.to_owned()));
                        at += candidate.len();
                        continue 'scan;
                    }
                }
            }
            at += text[at..].chars().next().map_or(1, char::len_utf8);
        }
        found
    }

    /// The regular expression of v2 secrets of `kind`, for gitleaks, GitHub custom patterns
    /// and trufflehog.
    pub fn regex(&self, kind: TokenKind) -> String {
        let prefix: String = self
            .prefix(kind)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    format!("\\{c}")
                }
            })
            .collect();
        format!("{prefix}[0-9A-Za-z]{{{}}}", BODY_CHARS + CHECK_CHARS)
    }
}

fn is_base62(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

/// `count` base62 characters from the OS CSPRNG (rejection sampling: no bias).
fn random_base62(count: usize) -> Result<String, ring::error::Unspecified> {
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(count);
    let mut buffer = [0u8; 64];
    while out.len() < count {
        rng.fill(&mut buffer)?;
        for byte in buffer {
            // 248 = 4 × 62: bytes above would favour the first characters.
            if byte < 248 && out.len() < count {
                out.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    Ok(out)
}

/// The CRC32 of `prefix ‖ body`, which the check characters encode.
fn crc_of(prefix: &str, body: &str) -> u32 {
    !crc32_update(crc32_update(!0, prefix.as_bytes()), body.as_bytes())
}

/// The number base62 `text` spells (most significant first); `None` for another character.
fn base62_value(text: &str) -> Option<u64> {
    text.bytes().try_fold(0u64, |value, byte| {
        let digit = BASE62.iter().position(|&c| c == byte)?;
        Some(value * 62 + digit as u64)
    })
}

/// `value` in base62, most significant first, left-padded with `0` to `width` characters.
fn base62_fixed(mut value: u32, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// CRC-32 (IEEE 802.3, as zlib and GitHub's tokens use it).
pub fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(!0, bytes)
}

fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    crc
}

crate::every_variant_listed!(TokenKind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_crc() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_prefix_routes_a_secret_to_its_kind_without_judging_the_rest() {
        let formats = TokenFormats::new("gldt-", Some("acme-"));
        assert_eq!(
            formats.kind_by_prefix("acme-wt-anything"),
            Some(TokenKind::WorkloadCredential)
        );
        assert_eq!(
            formats.kind_by_prefix("regauth-wl-anything"),
            Some(TokenKind::WorkloadCredential),
            "made before the instance prefix was set"
        );
        assert_eq!(
            formats.kind_by_prefix("acme-dt-x"),
            Some(TokenKind::DeployToken)
        );
        assert_eq!(formats.kind_by_prefix("plain-secret"), None);
    }

    #[test]
    fn prefixes_never_change_and_never_collide() {
        // Pinned: tokens in the wild carry these.
        let formats = TokenFormats::default();
        assert_eq!(formats.prefix(TokenKind::DeployToken), "gldt-");
        assert_eq!(formats.prefix(TokenKind::PersonalAccessToken), "glpat-");
        assert_eq!(formats.prefix(TokenKind::RefreshToken), "regauth-rt-");
        assert_eq!(formats.prefix(TokenKind::WorkloadCredential), "regauth-wl-");
        let acme = TokenFormats::new("gldt-", Some("acme-"));
        assert_eq!(acme.prefix(TokenKind::DeployToken), "acme-dt-");
        assert_eq!(acme.prefix(TokenKind::PersonalAccessToken), "acme-pat-");
        assert_eq!(acme.prefix(TokenKind::RefreshToken), "acme-rt-");
        assert_eq!(acme.prefix(TokenKind::WorkloadCredential), "acme-wt-");
        for formats in [formats, acme] {
            let prefixes: Vec<String> = TokenKind::ALL.iter().map(|&k| formats.prefix(k)).collect();
            for (i, a) in prefixes.iter().enumerate() {
                for (j, b) in prefixes.iter().enumerate() {
                    assert!(i == j || !a.starts_with(b.as_str()), "{a} and {b} collide");
                }
            }
        }
    }

    #[test]
    fn a_new_secret_has_prefix_body_and_checksum_and_is_recognised() {
        for formats in [
            TokenFormats::default(),
            TokenFormats::new("gldt-", Some("acme-")),
        ] {
            for kind in TokenKind::ALL {
                let secret = formats.generate(kind).unwrap();
                let text = secret.expose();
                let prefix = formats.prefix(kind);
                assert!(text.starts_with(&prefix), "{text}");
                assert_eq!(text.len(), prefix.len() + 38);
                assert_eq!(formats.shape(text), Shape::Valid(kind), "{text}");
                assert!(formats.may_be(text, kind));
                for other in TokenKind::ALL.into_iter().filter(|&k| k != kind) {
                    assert!(!formats.may_be(text, other));
                }
                // One character changed: the checksum says so.
                let mut bytes = text.as_bytes().to_vec();
                let at = prefix.len() + 3;
                bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
                let altered = String::from_utf8(bytes).unwrap();
                assert_eq!(formats.shape(&altered), Shape::Malformed, "{altered}");
            }
        }
    }

    #[test]
    fn older_secrets_are_still_recognised_and_junk_is_not() {
        let formats = TokenFormats::new("gldt-", Some("acme-"));
        let v1 = TokenSecret::generate("gldt-").unwrap();
        assert_eq!(
            formats.shape(v1.expose()),
            Shape::Legacy(TokenKind::DeployToken)
        );
        let v1_pat = TokenSecret::generate("glpat-").unwrap();
        assert_eq!(
            formats.shape(v1_pat.expose()),
            Shape::Legacy(TokenKind::PersonalAccessToken)
        );
        assert_eq!(
            formats.shape("oldprefix-abcdefghijklmnopqrstuvwxyz012345"),
            Shape::Unknown
        );
        for junk in [
            "gldt-short",
            "gldt-wrong-guess",
            "glpat-wrong",
            "acme-dt-x",
            "",
            "a b",
            "gldt-é",
        ] {
            assert_eq!(formats.shape(junk), Shape::Malformed, "{junk:?}");
        }
        assert_eq!(formats.shape(&"x".repeat(300)), Shape::Malformed);
    }

    #[test]
    fn secrets_are_found_in_surrounding_text_and_the_regex_matches_them() {
        let formats = TokenFormats::new("gldt-", Some("acme-"));
        let deploy = formats.generate(TokenKind::DeployToken).unwrap();
        let pat = formats.generate(TokenKind::PersonalAccessToken).unwrap();
        let text = format!(
            "Finding: {{\"Secret\": \"{}\"}}\nline 2 mentions {} and acme-dt-notarealtoken",
            deploy.expose(),
            pat.expose()
        );
        assert_eq!(
            formats.find_in(&text),
            vec![
                (TokenKind::DeployToken, deploy.expose().to_owned()),
                (TokenKind::PersonalAccessToken, pat.expose().to_owned()),
            ]
        );
        assert_eq!(
            formats.regex(TokenKind::DeployToken),
            "acme\\-dt\\-[0-9A-Za-z]{38}"
        );
    }
}
