//! One signing key: parsing, identifiers (libtrust key ID, RFC 7638
//! thumbprint), public JWK and JWS signing.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde::Serialize;

use super::der;
use super::error::{KeyError, SignError};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// JWS signature algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256, signature as raw `r || s` (64 bytes).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

crate::every_variant_listed!(KeyAlgorithm);

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 2] = [KeyAlgorithm::Es256, KeyAlgorithm::Rs256];

    /// The name in settings (`key_algorithm`) and flags (`--alg`): `es256` or `rs256`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The JWS `alg` name: `"ES256"` or `"RS256"`.
    pub fn jws_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::Rs256 => "RS256",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jws_name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;

    /// Parses `es256` or `rs256`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "es256" => Ok(KeyAlgorithm::Es256),
            "rs256" => Ok(KeyAlgorithm::Rs256),
            "eddsa" | "ed25519" => Err(KeyError::Unsupported(format!(
                "algorithm {s:?}: Ed25519/EdDSA is not accepted by docker registry 2.8; use es256 or rs256"
            ))),
            _ => Err(KeyError::Unsupported(format!(
                "algorithm {s:?}: expected es256 or rs256"
            ))),
        }
    }
}

/// How a token's JWS header identifies the key that signed it (setting `token_header`).
///
/// Registry 3.x looks at `x5c` first whenever the header carries one and then requires the
/// chain to reach its `rootcertbundle`; only without `x5c` does it look the `kid` up among
/// the keys of its `jwks` file (and the thumbprints of the bundle's certificates). Registry
/// 2.8 accepts `x5c`, or a `kid` equal to a bundle key's libtrust key ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum TokenHeader {
    /// `{"alg","typ","kid":<libtrust key ID>,"x5c":[<certificate>]}`: registry 2.8 and 3.x
    /// trusting regauth through `rootcertbundle`.
    #[default]
    X5c,
    /// `{"alg","typ","kid":<RFC 7638 thumbprint>}`, no `x5c`: registry 3.x trusting regauth
    /// through `jwks` (or `rootcertbundle`). Registry 2.8 refuses these tokens.
    Jwks,
}

impl TokenHeader {
    /// The setting's value: `"x5c"` or `"jwks"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for TokenHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenHeader {
    type Err = String;

    /// Parses `x5c` or `jwks`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x5c" => Ok(TokenHeader::X5c),
            "jwks" => Ok(TokenHeader::Jwks),
            _ => Err(format!("{s:?}: expected x5c or jwks")),
        }
    }
}

/// The ring key pair, parsed once.
enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key with its self-signed certificate.
///
/// Everything derived from the key (SPKI, key IDs, JWK, the encoded JWS
/// header) is computed once at construction. `Debug` shows only public
/// identifiers.
pub struct SigningKey {
    algorithm: KeyAlgorithm,
    signer: Signer,
    rng: SystemRandom,
    spki_der: Vec<u8>,
    libtrust_kid: String,
    thumbprint: String,
    jwk: serde_json::Value,
    cert_der: Vec<u8>,
    cert_pem: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    /// The header form [`SigningKey::sign_jwt`] writes.
    header: TokenHeader,
    /// base64url(header JSON) followed by '.', the prefix of every token: `x5c` form.
    x5c_header_prefix: String,
    /// The same for the `jwks` form.
    jwks_header_prefix: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("libtrust_kid", &self.libtrust_kid)
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// JWS protected header; fields in the order they are written.
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<[&'a str; 1]>,
}

/// base64url of the header JSON followed by '.'.
fn header_prefix(header: &JwsHeader<'_>) -> Result<String, KeyError> {
    let header_json = serde_json::to_vec(header)
        .map_err(|e| KeyError::InvalidKey(format!("cannot encode JWS header: {e}")))?;
    let mut prefix = URL_SAFE_NO_PAD.encode(header_json);
    prefix.push('.');
    Ok(prefix)
}

impl SigningKey {
    /// Loads a private key and its certificate, both PEM.
    ///
    /// The key may be PKCS#8 (`PRIVATE KEY`: EC P-256 or RSA) or PKCS#1
    /// (`RSA PRIVATE KEY`); the algorithm follows from the key. `EC
    /// PARAMETERS` and `CERTIFICATE` blocks in the key text are ignored. The
    /// first `CERTIFICATE` block of `cert_pem` must carry the key's public key.
    ///
    /// # Errors
    ///
    /// [`KeyError::Pem`] for unreadable PEM, [`KeyError::Unsupported`] for SEC1,
    /// encrypted, Ed25519, non-P-256 or small RSA keys, [`KeyError::InvalidKey`],
    /// [`KeyError::InvalidCertificate`], [`KeyError::CertificateMismatch`].
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let pkcs8 = private_key_pkcs8_from_pem(key_pem)?;
        let cert_der = certificate_der_from_pem(cert_pem)?;
        Self::from_pkcs8_der(&pkcs8, cert_der)
    }

    /// Builds a key from PKCS#8 DER and certificate DER.
    pub(crate) fn from_pkcs8_der(pkcs8: &[u8], cert_der: Vec<u8>) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let algorithm = detect_algorithm(pkcs8)?;
        let (signer, spki_der, jwk_members) = match algorithm {
            KeyAlgorithm::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
                    .map_err(|e| KeyError::InvalidKey(format!("EC P-256 PKCS#8: {e}")))?;
                let point = kp.public_key().as_ref();
                let (x, y) = match point {
                    [0x04, coords @ ..] if coords.len() == 64 => coords.split_at(32),
                    _ => {
                        return Err(KeyError::InvalidKey(
                            "unexpected EC public key encoding".into(),
                        ))
                    }
                };
                let members = vec![
                    ("crv", "P-256".to_owned()),
                    ("kty", "EC".to_owned()),
                    ("x", URL_SAFE_NO_PAD.encode(x)),
                    ("y", URL_SAFE_NO_PAD.encode(y)),
                ];
                let spki = der::p256_spki(point)
                    .map_err(|e| KeyError::InvalidKey(format!("EC public key: {e}")))?;
                (Signer::Ec(kp), spki, members)
            }
            KeyAlgorithm::Rs256 => {
                let kp = RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|e| KeyError::InvalidKey(format!("RSA: {e}")))?;
                let bits = kp.public().modulus_len() * 8;
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::Unsupported(format!(
                        "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
                    )));
                }
                let components: ring::rsa::PublicKeyComponents<Vec<u8>> = kp.public().into();
                let members = vec![
                    ("e", URL_SAFE_NO_PAD.encode(&components.e)),
                    ("kty", "RSA".to_owned()),
                    ("n", URL_SAFE_NO_PAD.encode(&components.n)),
                ];
                let spki = der::rsa_spki(kp.public().as_ref())
                    .map_err(|e| KeyError::InvalidKey(format!("RSA public key: {e}")))?;
                (Signer::Rsa(kp), spki, members)
            }
        };

        let cert = der::parse_certificate(&cert_der).map_err(|e| {
            KeyError::InvalidCertificate(format!("not a DER X.509 certificate ({e})"))
        })?;
        if cert.spki != spki_der {
            return Err(KeyError::CertificateMismatch);
        }
        let (not_before, not_after) = (cert.not_before, cert.not_after);

        let libtrust_kid = libtrust_key_id(&spki_der);
        let member_refs: Vec<(&str, &str)> =
            jwk_members.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let thumbprint = rfc7638_thumbprint(&member_refs);

        let mut jwk = serde_json::Map::new();
        for (k, v) in &jwk_members {
            jwk.insert((*k).to_owned(), serde_json::Value::String(v.clone()));
        }
        jwk.insert("kid".into(), thumbprint.clone().into());
        jwk.insert("alg".into(), algorithm.jws_name().into());
        jwk.insert("use".into(), "sig".into());

        let x5c = STANDARD.encode(&cert_der);
        let x5c_header_prefix = header_prefix(&JwsHeader {
            alg: algorithm.jws_name(),
            typ: "JWT",
            kid: &libtrust_kid,
            x5c: Some([&x5c]),
        })?;
        let jwks_header_prefix = header_prefix(&JwsHeader {
            alg: algorithm.jws_name(),
            typ: "JWT",
            kid: &thumbprint,
            x5c: None,
        })?;

        let cert_pem = pem::encode_config(
            &pem::Pem::new("CERTIFICATE", cert_der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );

        let key = SigningKey {
            algorithm,
            signer,
            rng,
            spki_der,
            libtrust_kid,
            thumbprint,
            jwk: serde_json::Value::Object(jwk),
            cert_der,
            cert_pem,
            not_before,
            not_after,
            header: TokenHeader::X5c,
            x5c_header_prefix,
            jwks_header_prefix,
        };
        // A damaged RSA private part (one changed base64 character in a CRT value, found by
        // tests/fuzz.rs) still loads, but every signature then fails: refuse it at load, not
        // at the first token request.
        key.sign_jwt(&serde_json::json!({})).map_err(|_| {
            KeyError::InvalidKey(
                "the private key does not produce valid signatures (is the file damaged?)".into(),
            )
        })?;
        Ok(key)
    }

    /// This key, writing `header` form JWS headers from now on.
    pub fn with_token_header(mut self, header: TokenHeader) -> Self {
        self.header = header;
        self
    }

    /// The header form this key writes.
    pub fn token_header(&self) -> TokenHeader {
        self.header
    }

    /// The JWS algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// libtrust key ID (`XXXX:XXXX:...`, 12 groups), the JWS header `kid`.
    pub fn libtrust_kid(&self) -> &str {
        &self.libtrust_kid
    }

    /// RFC 7638 JWK thumbprint (base64url SHA-256), the `kid` in the JWKS.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// DER `SubjectPublicKeyInfo` of the public key.
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The certificate as one PEM `CERTIFICATE` block (LF line endings).
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate DER (what `x5c` carries).
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Start of the certificate's validity period.
    pub fn certificate_not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// End of the certificate's validity period. Registries reject tokens whose
    /// `x5c` certificate has expired, so callers should warn well before it.
    pub fn certificate_not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Public JWK: key members plus `kid` (RFC 7638 thumbprint), `alg` and
    /// `use: "sig"`.
    pub fn jwk(&self) -> serde_json::Value {
        self.jwk.clone()
    }

    /// Signs `claims` as a compact JWS with header
    /// `{"alg","typ":"JWT","kid":<libtrust kid>,"x5c":[<cert>]}` (form [`TokenHeader::X5c`])
    /// or `{"alg","typ":"JWT","kid":<RFC 7638 thumbprint>}` (form [`TokenHeader::Jwks`]).
    ///
    /// # Errors
    ///
    /// [`SignError::Serialize`] when `claims` do not serialise to JSON,
    /// [`SignError::Crypto`] when the signature primitive fails.
    pub fn sign_jwt<C: Serialize + ?Sized>(&self, claims: &C) -> Result<String, SignError> {
        let claims_json = serde_json::to_vec(claims)?;
        let header_prefix = match self.header {
            TokenHeader::X5c => &self.x5c_header_prefix,
            TokenHeader::Jwks => &self.jwks_header_prefix,
        };
        let mut token =
            String::with_capacity(header_prefix.len() + claims_json.len() * 4 / 3 + 8 + 350);
        token.push_str(header_prefix);
        URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.signer {
            Signer::Ec(kp) => kp
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| SignError::Crypto),
            Signer::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public().modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| SignError::Crypto)?;
                Ok(sig)
            }
        }
    }
}

/// Finds the private key block of `key_pem` and returns PKCS#8 DER.
fn private_key_pkcs8_from_pem(key_pem: &str) -> Result<Vec<u8>, KeyError> {
    let blocks = pem::parse_many(key_pem).map_err(|e| KeyError::Pem {
        what: "private key",
        reason: e.to_string(),
    })?;
    let mut keys = blocks
        .into_iter()
        .filter(|b| !matches!(b.tag(), "EC PARAMETERS" | "CERTIFICATE"));
    let block = keys.next().ok_or_else(|| KeyError::Pem {
        what: "private key",
        reason: "no PRIVATE KEY block found".into(),
    })?;
    if keys.next().is_some() {
        return Err(KeyError::Pem {
            what: "private key",
            reason: "more than one private key block".into(),
        });
    }
    match block.tag() {
        "PRIVATE KEY" => Ok(block.into_contents()),
        "RSA PRIVATE KEY" => der::pkcs1_to_pkcs8(block.contents())
            .map_err(|e| KeyError::InvalidKey(format!("RSA PRIVATE KEY: {e}"))),
        "EC PRIVATE KEY" => Err(KeyError::Unsupported(
            "EC PRIVATE KEY (SEC1) is not supported; convert with: \
             openssl pkcs8 -topk8 -nocrypt -in old.key -out new.key"
                .into(),
        )),
        "ENCRYPTED PRIVATE KEY" => Err(KeyError::Unsupported(
            "encrypted keys are not supported; decrypt with: \
             openssl pkcs8 -topk8 -nocrypt -in old.key -out new.key"
                .into(),
        )),
        "OPENSSH PRIVATE KEY" => Err(KeyError::Unsupported(
            "OpenSSH keys are not supported; convert with: \
             ssh-keygen -p -m PKCS8 -f KEY (on a copy)"
                .into(),
        )),
        other => Err(KeyError::Unsupported(format!(
            "PEM block {other:?}; expected PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY"
        ))),
    }
}

/// The DER of the first `CERTIFICATE` block.
fn certificate_der_from_pem(cert_pem: &str) -> Result<Vec<u8>, KeyError> {
    let blocks = pem::parse_many(cert_pem).map_err(|e| KeyError::Pem {
        what: "certificate",
        reason: e.to_string(),
    })?;
    blocks
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .ok_or_else(|| KeyError::Pem {
            what: "certificate",
            reason: "no CERTIFICATE block found".into(),
        })
}

/// Reads the algorithm from PKCS#8 and rejects what we cannot sign with.
fn detect_algorithm(pkcs8: &[u8]) -> Result<KeyAlgorithm, KeyError> {
    let alg = der::pkcs8_algorithm(pkcs8)
        .map_err(|e| KeyError::InvalidKey(format!("not a DER PKCS#8 PrivateKeyInfo ({e})")))?;
    match alg.oid {
        oid if oid == der::OID_RSA_ENCRYPTION => Ok(KeyAlgorithm::Rs256),
        oid if oid == der::OID_EC_PUBLIC_KEY => match alg.param_oid {
            Some(curve) if curve == der::OID_P256 => Ok(KeyAlgorithm::Es256),
            Some(curve) if curve == der::OID_P384 => Err(KeyError::Unsupported(
                "EC curve P-384 (ES384) is not supported; use a P-256 (prime256v1) key".into(),
            )),
            Some(curve) if curve == der::OID_P521 => Err(KeyError::Unsupported(
                "EC curve P-521 (ES512) is not supported; use a P-256 (prime256v1) key".into(),
            )),
            _ => Err(KeyError::Unsupported(
                "EC key on an unsupported or explicit curve; use a P-256 (prime256v1) key".into(),
            )),
        },
        oid if oid == der::OID_ED25519 || oid == der::OID_ED448 => Err(KeyError::Unsupported(
            "Ed25519/Ed448 (EdDSA) keys are not supported: docker registry 2.8 rejects EdDSA \
             tokens; use an ES256 (P-256) or RS256 (RSA >= 2048 bit) key"
                .into(),
        )),
        oid if oid == der::OID_RSA_PSS => Err(KeyError::Unsupported(
            "RSASSA-PSS keys are not supported; use a plain rsaEncryption key (RS256)".into(),
        )),
        _ => Err(KeyError::Unsupported(
            "unknown key algorithm; expected EC P-256 or RSA".into(),
        )),
    }
}

/// libtrust key ID of a public key: SHA-256 of the DER `SubjectPublicKeyInfo`,
/// first 240 bits, base32 (RFC 4648, no padding), 12 groups of 4 joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    let bytes = digest.as_ref().get(..30).unwrap_or_default();
    let mut chars = Vec::with_capacity(48);
    // 30 bytes = 6 blocks of 5 bytes = 6 * 8 base32 characters, no padding.
    for block in bytes.chunks(5) {
        let mut buf = [0u8; 8];
        buf[3..3 + block.len()].copy_from_slice(block);
        let value = u64::from_be_bytes(buf);
        for i in (0..8).rev() {
            let index = ((value >> (i * 5)) & 0x1f) as usize;
            chars.push(char::from(ALPHABET[index]));
        }
    }
    let mut out = String::with_capacity(59);
    for (i, group) in chars.chunks(4).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.extend(group.iter());
    }
    out
}

/// RFC 7638 JWK thumbprint: SHA-256 over the JSON object of the required
/// members (EC: `crv`, `kty`, `x`, `y`; RSA: `e`, `kty`, `n`) in
/// lexicographic order without whitespace, base64url without padding.
///
/// `members` are `(name, string value)` pairs in any order.
pub fn rfc7638_thumbprint(members: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut json = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::Value::from(*name).to_string());
        json.push(':');
        json.push_str(&serde_json::Value::from(*value).to_string());
    }
    json.push('}');
    let digest = ring::digest::digest(&ring::digest::SHA256, json.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::testdata as td;

    fn spki_from_pub_pem(pem_text: &str) -> Vec<u8> {
        let block = pem::parse(pem_text).expect("pem");
        assert_eq!(block.tag(), "PUBLIC KEY");
        block.into_contents()
    }

    #[test]
    fn libtrust_kid_matches_shell_computed_ec_vector() {
        let spki = spki_from_pub_pem(td::EC_PUB_PEM);
        assert_eq!(libtrust_key_id(&spki), td::EC_LIBTRUST_KID);
    }

    #[test]
    fn libtrust_kid_matches_shell_computed_rsa_vector() {
        let spki = spki_from_pub_pem(td::RSA_PUB_PEM);
        assert_eq!(libtrust_key_id(&spki), td::RSA_LIBTRUST_KID);
    }

    /// Regression from tests/fuzz.rs: one base64 character of the RSA key's private part
    /// changed ('2' → 'A' at byte 1147) loaded, and then every signature failed.
    #[test]
    fn a_damaged_private_key_that_cannot_sign_is_refused_at_load() {
        let mut bytes = td::RSA_PKCS8_KEY.as_bytes().to_vec();
        assert_eq!(bytes[1147], b'2');
        bytes[1147] = b'A';
        let damaged = String::from_utf8(bytes).unwrap();
        let error = SigningKey::from_pem(&damaged, td::RSA_CRT)
            .expect_err("a key that cannot sign must not load")
            .to_string();
        assert!(
            error.contains("does not produce valid signatures"),
            "{error}"
        );
        assert!(SigningKey::from_pem(td::RSA_PKCS8_KEY, td::RSA_CRT).is_ok());
    }

    #[test]
    fn libtrust_kid_shape() {
        let kid = libtrust_key_id(b"anything");
        assert_eq!(kid.len(), 59);
        assert_eq!(kid.split(':').count(), 12);
        assert!(kid.split(':').all(|g| g.len() == 4
            && g.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
    }

    #[test]
    fn rfc7638_rsa_example_from_the_rfc() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = [("kty", "RSA"), ("n", n), ("e", "AQAB")];
        assert_eq!(
            rfc7638_thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc7638_ec_vector_computed_with_python() {
        let members = [
            ("y", "bGzpQ0CGX9-EfwIkOkzy1lR5bRsQMPW8HHBOy5Cfi-E"),
            ("x", "194qI2G-hPNWgVY81FFmkRiXWdeFnKOw_hbVxBODzjU"),
            ("kty", "EC"),
            ("crv", "P-256"),
        ];
        assert_eq!(rfc7638_thumbprint(&members), td::EC_THUMBPRINT);
    }

    #[test]
    fn openssl_ec_key_and_cert_load() {
        let key = SigningKey::from_pem(td::EC_PKCS8_KEY, td::EC_CRT).expect("load");
        assert_eq!(key.algorithm(), KeyAlgorithm::Es256);
        assert_eq!(key.public_key_spki_der(), spki_from_pub_pem(td::EC_PUB_PEM));
        assert_eq!(key.libtrust_kid(), td::EC_LIBTRUST_KID);
        assert_eq!(key.thumbprint(), td::EC_THUMBPRINT);
        let jwk = key.jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["x"], "194qI2G-hPNWgVY81FFmkRiXWdeFnKOw_hbVxBODzjU");
        assert_eq!(jwk["kid"], td::EC_THUMBPRINT);
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        // openssl wrote notAfter as GeneralizedTime (year 2126)
        assert_eq!(
            key.certificate_not_after().to_rfc3339(),
            "2126-10-29T02:38:20+00:00"
        );
        assert_eq!(
            key.certificate_not_before().to_rfc3339(),
            "2026-11-22T02:38:20+00:00"
        );
    }

    #[test]
    fn openssl_rsa_pkcs8_and_pkcs1_keys_load() {
        let spki = spki_from_pub_pem(td::RSA_PUB_PEM);
        for pem_text in [td::RSA_PKCS8_KEY, td::RSA_PKCS1_KEY] {
            let key = SigningKey::from_pem(pem_text, td::RSA_CRT).expect("load");
            assert_eq!(key.algorithm(), KeyAlgorithm::Rs256);
            assert_eq!(key.public_key_spki_der(), spki.as_slice());
            assert_eq!(key.libtrust_kid(), td::RSA_LIBTRUST_KID);
            assert_eq!(key.thumbprint(), td::RSA_THUMBPRINT);
            assert_eq!(key.jwk()["e"], "AQAB");
            assert_eq!(key.jwk()["kid"], td::RSA_THUMBPRINT);
        }
    }

    #[test]
    fn jwk_is_accepted_by_jsonwebtoken() {
        for (k, c) in [
            (td::EC_PKCS8_KEY, td::EC_CRT),
            (td::RSA_PKCS8_KEY, td::RSA_CRT),
        ] {
            let key = SigningKey::from_pem(k, c).expect("load");
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(key.jwk()).expect("jsonwebtoken parses our JWK");
            assert_eq!(jwk.common.key_id.as_deref(), Some(key.thumbprint()));
        }
    }

    #[test]
    fn ec_key_followed_by_ec_parameters_block_loads() {
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            td::EC_PKCS8_KEY
        );
        assert!(SigningKey::from_pem(&text, td::EC_CRT).is_ok());
    }

    #[test]
    fn mismatched_certificate_is_rejected() {
        let err = SigningKey::from_pem(td::EC_PKCS8_KEY, td::RSA_CRT).expect_err("mismatch");
        assert!(matches!(err, KeyError::CertificateMismatch), "{err}");
        let err = SigningKey::from_pem(td::RSA_PKCS1_KEY, td::EC_CRT).expect_err("mismatch");
        assert!(matches!(err, KeyError::CertificateMismatch), "{err}");
    }

    #[test]
    fn sec1_ec_key_is_rejected_with_conversion_hint() {
        let err = SigningKey::from_pem(td::EC_SEC1_KEY, td::EC_CRT).expect_err("sec1");
        let msg = err.to_string();
        assert!(
            msg.contains("EC PRIVATE KEY (SEC1) is not supported"),
            "{msg}"
        );
        assert!(msg.contains("openssl pkcs8 -topk8 -nocrypt"), "{msg}");
    }

    #[test]
    fn ed25519_key_is_rejected_with_clear_message() {
        let err = SigningKey::from_pem(td::ED25519_KEY, td::EC_CRT).expect_err("ed25519");
        let msg = err.to_string();
        assert!(matches!(err, KeyError::Unsupported(_)), "{msg}");
        assert!(msg.contains("Ed25519"), "{msg}");
        assert!(msg.contains("registry 2.8"), "{msg}");
        assert!("ed25519".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn garbage_inputs_are_rejected() {
        assert!(matches!(
            SigningKey::from_pem("", td::EC_CRT),
            Err(KeyError::Pem { .. })
        ));
        assert!(matches!(
            SigningKey::from_pem(td::EC_PKCS8_KEY, td::EC_PKCS8_KEY),
            Err(KeyError::Pem { .. })
        ));
        let fake_cert = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            SigningKey::from_pem(td::EC_PKCS8_KEY, fake_cert),
            Err(KeyError::InvalidCertificate(_))
        ));
        let two = format!("{}{}", td::EC_PKCS8_KEY, td::RSA_PKCS8_KEY);
        assert!(SigningKey::from_pem(&two, td::EC_CRT).is_err());
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAQID\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let msg = SigningKey::from_pem(enc, td::EC_CRT)
            .expect_err("encrypted")
            .to_string();
        assert!(msg.contains("encrypted"), "{msg}");
    }

    #[test]
    fn a_certificate_with_a_non_canonical_length_is_refused() {
        let key = SigningKey::from_pem(td::EC_PKCS8_KEY, td::EC_CRT).expect("load");
        let der = pem::parse(td::EC_CRT).expect("pem").into_contents();
        // The outer SEQUENCE of the test certificate has a two-byte long-form length (0x82).
        assert_eq!(&der[..2], &[0x30, 0x82]);
        // Same value, one redundant leading zero byte: valid BER, invalid DER.
        let mut padded = vec![0x30, 0x83, 0x00];
        padded.extend_from_slice(&der[2..]);
        let reencoded = pem::encode(&pem::Pem::new("CERTIFICATE", padded));
        let error = SigningKey::from_pem(td::EC_PKCS8_KEY, &reencoded)
            .expect_err("non-canonical DER")
            .to_string();
        assert!(error.contains("invalid certificate"), "{error}");
        // The canonical encoding loads, with the same key.
        let again = SigningKey::from_pem(td::EC_PKCS8_KEY, td::EC_CRT).expect("load");
        assert_eq!(again.libtrust_kid(), key.libtrust_kid());
    }

    #[test]
    fn debug_output_has_no_private_material() {
        let key = SigningKey::from_pem(td::EC_PKCS8_KEY, td::EC_CRT).expect("load");
        let dbg = format!("{key:?}");
        assert!(dbg.contains(td::EC_LIBTRUST_KID), "{dbg}");
        let der = pem::parse(td::EC_PKCS8_KEY).expect("pem").into_contents();
        // The 32-byte private scalar sits at offset 36 of this PKCS#8 encoding.
        let scalar = &der[36..68];
        for needle in [
            URL_SAFE_NO_PAD.encode(scalar),
            STANDARD.encode(scalar),
            format!("{:?}", scalar),
            scalar
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ] {
            assert!(!dbg.contains(&needle), "{dbg}");
        }
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
        assert!(!dbg.contains("MIGHAgEA"), "{dbg}");
    }

    #[test]
    fn algorithm_parse_and_display() {
        assert_eq!(
            "ES256".parse::<KeyAlgorithm>().ok(),
            Some(KeyAlgorithm::Es256)
        );
        assert_eq!(
            "rs256".parse::<KeyAlgorithm>().ok(),
            Some(KeyAlgorithm::Rs256)
        );
        assert_eq!(
            "Rs256".parse::<KeyAlgorithm>().ok(),
            Some(KeyAlgorithm::Rs256)
        );
        assert!("hs256".parse::<KeyAlgorithm>().is_err());
        assert_eq!(KeyAlgorithm::Es256.to_string(), "ES256");
        assert_eq!(KeyAlgorithm::Rs256.to_string(), "RS256");
    }

    #[test]
    fn signing_key_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningKey>();
    }
}
