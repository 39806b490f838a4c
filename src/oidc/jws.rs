//! The compact JWS of an OIDC ID token, checked in the order of the workload-identity issue:
//! header (`alg` RS256 or ES256, a `kid`), `iss` read before anything is trusted (to pick the
//! keys), the signature, then the time claims. Pure: keys and the clock are passed in.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Larger tokens are refused unread: real ones are 1-3 KiB (GitLab's with every claim).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How far `nbf` and `iat` may lie in the future (clock skew between issuer and regauth).
pub const LEEWAY_SECONDS: i64 = 60;

/// Why a token was not accepted. Logged and counted; never told to the client, which gets
/// one answer for all (so that an attacker cannot learn which check failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Rejection {
    Oversized,
    Malformed,
    /// `alg` other than RS256 / ES256 (`none`, HS256, ...).
    Algorithm,
    #[strum(serialize = "missing_kid")]
    MissingKeyId,
    UnknownIssuer,
    #[strum(serialize = "unknown_kid")]
    UnknownKey,
    BadSignature,
    #[strum(serialize = "missing_exp")]
    MissingExpiry,
    Expired,
    NotYetValid,
    Audience,
    Conditions,
    /// No policy of that username, or the policy trusts another issuer.
    NoPolicy,
    /// The issuer's keys could not be fetched (an outage of the issuer, not of the client).
    IssuerUnavailable,
    /// Exchange mode: the token's `jti` was already exchanged.
    Replayed,
}

impl Rejection {
    pub const ALL: [Rejection; 15] = [
        Rejection::Oversized,
        Rejection::Malformed,
        Rejection::Algorithm,
        Rejection::MissingKeyId,
        Rejection::UnknownIssuer,
        Rejection::UnknownKey,
        Rejection::BadSignature,
        Rejection::MissingExpiry,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::Audience,
        Rejection::Conditions,
        Rejection::NoPolicy,
        Rejection::IssuerUnavailable,
        Rejection::Replayed,
    ];

    /// The metric label and the log word.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
}

/// A token split and decoded, nothing trusted yet.
#[derive(Clone)]
pub struct UnverifiedToken {
    pub algorithm: Algorithm,
    pub key_id: String,
    /// `iss` as the token claims it: only used to pick the keys.
    pub issuer: String,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl std::fmt::Debug for UnverifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

fn base64url(segment: &str) -> Result<Vec<u8>, Rejection> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::Malformed)
}

/// Whether `text` has the shape of a compact JWS (three base64url parts, a JSON header):
/// a password of that shape goes down the federation path, anything else is a deploy token.
pub fn looks_like_jws(text: &str) -> bool {
    let mut parts = text.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let base64url_chars = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    // `{"` in base64url: every JSON header starts so.
    header.starts_with("eyJ")
        && !payload.is_empty()
        && [header, payload, signature]
            .iter()
            .all(|part| base64url_chars(part))
}

impl UnverifiedToken {
    /// Step 1 and 2 of the verification order: size, shape, header, then `iss`.
    pub fn parse(text: &str) -> Result<UnverifiedToken, Rejection> {
        if text.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Oversized);
        }
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let header: Header =
            serde_json::from_slice(&base64url(header)?).map_err(|_| Rejection::Malformed)?;
        let algorithm = match header.alg.as_deref() {
            Some("RS256") => Algorithm::Rs256,
            Some("ES256") => Algorithm::Es256,
            _ => return Err(Rejection::Algorithm),
        };
        let key_id = header
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or(Rejection::MissingKeyId)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&base64url(payload)?).map_err(|_| Rejection::Malformed)?;
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(Rejection::Malformed)?
            .to_owned();
        let signature = base64url(signature)?;
        let signing_input = text[..text.len() - signature_len(text)].to_owned();
        Ok(UnverifiedToken {
            algorithm,
            key_id,
            issuer,
            claims,
            signing_input,
            signature,
        })
    }

    /// Step 3: the signature, with the issuer's key of this `kid`. On success the claims
    /// become readable.
    pub fn verify(self, key: &VerifyingKey) -> Result<VerifiedClaims, Rejection> {
        use ring::signature::{self, UnparsedPublicKey};
        let message = self.signing_input.as_bytes();
        let valid = match (&key.material, self.algorithm) {
            (KeyMaterial::Rsa { n, e }, Algorithm::Rs256) => {
                signature::RsaPublicKeyComponents { n, e }
                    .verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        message,
                        &self.signature,
                    )
                    .is_ok()
            }
            (KeyMaterial::P256 { point }, Algorithm::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, &self.signature)
                    .is_ok()
            }
            // A key of another type than the header claims: never verify across types.
            _ => false,
        };
        if !valid {
            return Err(Rejection::BadSignature);
        }
        Ok(VerifiedClaims {
            issuer: self.issuer,
            claims: Value::Object(self.claims),
        })
    }
}

/// `.signature`'s length, including the dot.
fn signature_len(text: &str) -> usize {
    text.rfind('.').map(|dot| text.len() - dot).unwrap_or(0)
}

/// The claims of a token whose signature was verified; the time claims not yet.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub issuer: String,
    /// A JSON object.
    pub claims: Value,
}

fn numeric_date(value: Option<&Value>) -> Option<i64> {
    value.and_then(|value| {
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|seconds| seconds as i64))
    })
}

impl VerifiedClaims {
    /// Step 4: `exp` required and not passed; `nbf` and `iat` not ahead of `now` by more
    /// than the leeway. Answers the expiry.
    pub fn check_time(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, Rejection> {
        let exp = numeric_date(self.claims.get("exp")).ok_or(Rejection::MissingExpiry)?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or(Rejection::Malformed)?;
        if now >= expires_at {
            return Err(Rejection::Expired);
        }
        let latest = now.timestamp() + LEEWAY_SECONDS;
        for claim in ["nbf", "iat"] {
            if numeric_date(self.claims.get(claim)).is_some_and(|at| at > latest) {
                return Err(Rejection::NotYetValid);
            }
        }
        Ok(expires_at)
    }

    /// Step 5: `aud` is, or contains, `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
            _ => false,
        }
    }

    pub fn text(&self, claim: &str) -> Option<&str> {
        self.claims.get(claim).and_then(Value::as_str)
    }

    pub fn as_value(&self) -> &Value {
        &self.claims
    }
}

/// A public key of an issuer, from its JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub key_id: String,
    pub material: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// Big-endian modulus and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed point `04 || x || y`.
    P256 { point: Vec<u8> },
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Value>,
}

/// The signing keys of a JWKS document (RFC 7517) that regauth can use: RSA and P-256
/// keys with a `kid`; encryption keys, symmetric keys and other curves are skipped.
pub fn parse_jwks(document: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let set: JwkSet =
        serde_json::from_slice(document).map_err(|error| format!("not a JWKS: {error}"))?;
    let mut keys = Vec::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if jwk.usage.as_deref().is_some_and(|usage| usage != "sig") {
            continue;
        }
        let Some(key_id) = jwk.kid.filter(|kid| !kid.is_empty()) else {
            continue;
        };
        let decode = |field: &Option<String>| {
            field
                .as_deref()
                .and_then(|text| base64url(text).ok())
                .filter(|bytes| !bytes.is_empty())
        };
        let material = match (jwk.kty.as_deref(), jwk.alg.as_deref()) {
            (Some("RSA"), None | Some("RS256")) => match (decode(&jwk.n), decode(&jwk.e)) {
                (Some(n), Some(e)) => KeyMaterial::Rsa { n, e },
                _ => continue,
            },
            (Some("EC"), None | Some("ES256")) if jwk.crv.as_deref() == Some("P-256") => {
                match (decode(&jwk.x), decode(&jwk.y)) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = Vec::with_capacity(65);
                        point.push(4);
                        point.extend_from_slice(&x);
                        point.extend_from_slice(&y);
                        KeyMaterial::P256 { point }
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        keys.push(VerifyingKey { key_id, material });
    }
    Ok(keys)
}

crate::every_variant_listed!(Rejection);

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn token(header: Value, claims: Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            encode(&header),
            encode(&claims),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn only_rs256_and_es256_pass_the_header() {
        let claims = serde_json::json!({"iss": "https://i.example"});
        for alg in ["none", "HS256", "RS512", "PS256", "ES384"] {
            let text = token(
                serde_json::json!({"alg": alg, "kid": "k"}),
                claims.clone(),
                b"s",
            );
            assert_eq!(
                UnverifiedToken::parse(&text).unwrap_err(),
                Rejection::Algorithm,
                "{alg}"
            );
        }
        let text = token(serde_json::json!({"alg": "RS256"}), claims.clone(), b"s");
        assert_eq!(
            UnverifiedToken::parse(&text).unwrap_err(),
            Rejection::MissingKeyId
        );
        let text = token(
            serde_json::json!({"alg": "ES256", "kid": "k"}),
            claims,
            b"s",
        );
        let parsed = UnverifiedToken::parse(&text).unwrap();
        assert_eq!(parsed.issuer, "https://i.example");
        assert_eq!(parsed.key_id, "k");
    }

    #[test]
    fn oversized_and_malformed_tokens_are_refused() {
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            UnverifiedToken::parse(&huge).unwrap_err(),
            Rejection::Oversized
        );
        assert_eq!(
            UnverifiedToken::parse("a.b").unwrap_err(),
            Rejection::Malformed
        );
        assert_eq!(
            UnverifiedToken::parse("a.b.c.d").unwrap_err(),
            Rejection::Malformed
        );
        assert_eq!(
            UnverifiedToken::parse("!!.b.c").unwrap_err(),
            Rejection::Malformed
        );
    }

    #[test]
    fn jws_shape_is_told_from_deploy_token_secrets() {
        assert!(looks_like_jws("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"));
        assert!(!looks_like_jws("gldt-abcdefghijklmnop"));
        assert!(!looks_like_jws("eyJ.x"));
        assert!(!looks_like_jws("eyJa.b.c d"));
        assert!(!looks_like_jws("regauth-rt-abc.def.ghi"));
    }

    fn verified(claims: Value) -> VerifiedClaims {
        VerifiedClaims {
            issuer: "i".into(),
            claims,
        }
    }

    #[test]
    fn time_claims_follow_the_leeway() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(
            verified(serde_json::json!({})).check_time(now),
            Err(Rejection::MissingExpiry)
        );
        assert_eq!(
            verified(serde_json::json!({"exp": 1_000_000})).check_time(now),
            Err(Rejection::Expired)
        );
        assert!(verified(
            serde_json::json!({"exp": 1_000_001, "nbf": 1_000_060, "iat": 1_000_060})
        )
        .check_time(now)
        .is_ok());
        assert_eq!(
            verified(serde_json::json!({"exp": 1_000_900, "nbf": 1_000_061})).check_time(now),
            Err(Rejection::NotYetValid)
        );
        assert_eq!(
            verified(serde_json::json!({"exp": 1_000_900, "iat": 1_000_100})).check_time(now),
            Err(Rejection::NotYetValid)
        );
    }

    #[test]
    fn audience_is_a_string_or_a_list() {
        assert!(verified(serde_json::json!({"aud": "a"})).has_audience("a"));
        assert!(verified(serde_json::json!({"aud": ["b", "a"]})).has_audience("a"));
        assert!(!verified(serde_json::json!({"aud": ["b"]})).has_audience("a"));
        assert!(!verified(serde_json::json!({})).has_audience("a"));
        assert!(!verified(serde_json::json!({"aud": "ab"})).has_audience("a"));
    }

    #[test]
    fn jwks_keeps_usable_signing_keys_only() {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let document = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": b64(&[1, 2, 3]), "e": b64(&[1, 0, 1])},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[1]), "e": b64(&[3])},
            {"kty": "oct", "kid": "h", "k": b64(b"secret")},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": b64(&[7; 32]), "y": b64(&[8; 32])},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": b64(&[7; 48]), "y": b64(&[8; 48])},
            {"kty": "RSA", "n": b64(&[1]), "e": b64(&[3])},
            "garbage"
        ]});
        let keys = parse_jwks(document.to_string().as_bytes()).unwrap();
        let ids: Vec<&str> = keys.iter().map(|key| key.key_id.as_str()).collect();
        assert_eq!(ids, ["r", "e"]);
        assert!(parse_jwks(b"{}").is_err());
    }
}
