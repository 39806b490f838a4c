//! Test-only: verifies a registry token the way CNCF distribution v3.1.1 does
//! (`registry/auth/token/accesscontroller.go` `newAccessController` and `token.go`
//! `VerifySigningKey`, `Verify`), so that the two header forms are pinned against what a 3.x
//! registry accepts with a `rootcertbundle`, a `jwks` file, or both.
//!
//! The trust set-up: every bundle certificate is a root, and its public key is trusted under
//! its RFC 7638 thumbprint; every key of the JWK set is trusted under its `kid`. A token whose
//! header carries `x5c` must chain to a root ("x509: certificate signed by unknown
//! authority" otherwise), whatever the JWK set holds; only without `x5c` is the `kid` looked
//! up among the trusted keys. The signature is then checked with the header's `alg`, which
//! must fit the key's type; then `iss`, `aud` and `exp`/`nbf` with 60 s leeway.

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
};

use super::der as jwt_der;
use super::key::rfc7638_thumbprint;

/// Leeway on `exp` and `nbf`, as distribution's `token.Leeway`.
const LEEWAY_SECS: i64 = 60;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Uncompressed P-256 point `04 || x || y`.
    EcP256(Vec<u8>),
    /// Big-endian modulus and exponent, no leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl PublicKey {
    fn from_spki(spki: &[u8]) -> Result<PublicKey, String> {
        use ::der::Decode as _;
        let info = spki::SubjectPublicKeyInfoRef::from_der(spki).map_err(|e| e.to_string())?;
        let key = info.subject_public_key.raw_bytes();
        if info.algorithm.oid == jwt_der::OID_EC_PUBLIC_KEY {
            Ok(PublicKey::EcP256(key.to_vec()))
        } else if info.algorithm.oid == jwt_der::OID_RSA_ENCRYPTION {
            use rsa::pkcs1::DecodeRsaPublicKey as _;
            use rsa::traits::PublicKeyParts as _;
            let rsa = rsa::RsaPublicKey::from_pkcs1_der(key).map_err(|e| e.to_string())?;
            Ok(PublicKey::Rsa {
                n: rsa.n().to_bytes_be(),
                e: rsa.e().to_bytes_be(),
            })
        } else {
            Err("unsupported SPKI algorithm".into())
        }
    }

    /// go-jose `JSONWebKey.Public()` of a JWK set entry.
    fn from_jwk(jwk: &serde_json::Value) -> Result<PublicKey, String> {
        let member = |name: &str| -> Result<Vec<u8>, String> {
            let text = jwk[name].as_str().ok_or(format!("JWK without {name}"))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|e| format!("JWK {name}: {e}"))
        };
        match jwk["kty"].as_str() {
            Some("EC") if jwk["crv"] == "P-256" => {
                let mut point = vec![0x04];
                point.extend(member("x")?);
                point.extend(member("y")?);
                Ok(PublicKey::EcP256(point))
            }
            Some("RSA") => Ok(PublicKey::Rsa {
                n: member("n")?,
                e: member("e")?,
            }),
            other => Err(format!("unsupported JWK kty {other:?}")),
        }
    }

    /// distribution's `GetJWKThumbprint`: RFC 7638 over the required members.
    fn thumbprint(&self) -> String {
        match self {
            PublicKey::EcP256(point) => {
                let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
                let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
                rfc7638_thumbprint(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)])
            }
            PublicKey::Rsa { n, e } => {
                let n = URL_SAFE_NO_PAD.encode(n);
                let e = URL_SAFE_NO_PAD.encode(e);
                rfc7638_thumbprint(&[("e", &e), ("kty", "RSA"), ("n", &n)])
            }
        }
    }

    /// Verifies a JWS signature with the header's algorithm; a key of the wrong type for
    /// the algorithm fails, as in go-jose.
    fn verify_jws(&self, alg: &str, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let ok = match (alg, self) {
            ("ES256", PublicKey::EcP256(point)) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            ("RS256", PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            (alg, _) => {
                return Err(format!(
                    "go-jose/go-jose: algorithm {alg} does not fit the key"
                ))
            }
        };
        ok.then_some(())
            .ok_or_else(|| "go-jose/go-jose: error in cryptographic primitive".into())
    }

    /// Whether `cert` carries a signature of this (root) key over its TBS bytes.
    fn signed(&self, cert: &jwt_der::CertificateInfo) -> bool {
        let alg: &dyn VerificationAlgorithm = match self {
            PublicKey::EcP256(_) => &ECDSA_P256_SHA256_ASN1,
            PublicKey::Rsa { .. } => &RSA_PKCS1_2048_8192_SHA256,
        };
        match self {
            PublicKey::EcP256(point) => UnparsedPublicKey::new(alg, point)
                .verify(&cert.tbs, &cert.signature)
                .is_ok(),
            PublicKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, &cert.tbs, &cert.signature)
                .is_ok(),
        }
    }
}

/// What `auth.token` of a 3.x registry is configured to trust.
pub(crate) struct Distribution3 {
    issuer: String,
    service: String,
    /// Root certificates (DER) with their public keys.
    roots: Vec<(Vec<u8>, PublicKey)>,
    trusted_keys: HashMap<String, PublicKey>,
}

impl Distribution3 {
    /// `rootcertbundle` (PEM) and/or `jwks` (the JWK set document).
    pub(crate) fn new(
        issuer: &str,
        service: &str,
        rootcertbundle: Option<&str>,
        jwks: Option<&serde_json::Value>,
    ) -> Result<Distribution3, String> {
        let mut roots = Vec::new();
        let mut trusted_keys = HashMap::new();
        for block in
            pem::parse_many(rootcertbundle.unwrap_or_default()).map_err(|e| e.to_string())?
        {
            let cert = jwt_der::parse_certificate(block.contents())
                .map_err(|e| format!("bad bundle certificate: {e}"))?;
            let key = PublicKey::from_spki(&cert.spki)?;
            trusted_keys.insert(key.thumbprint(), key.clone());
            roots.push((block.contents().to_vec(), key));
        }
        let jwk_keys = jwks.map(|set| set["keys"].as_array().cloned().unwrap_or_default());
        if roots.is_empty() && jwk_keys.as_ref().is_none_or(Vec::is_empty) {
            return Err("token auth requires at least one token signing key".into());
        }
        for jwk in jwk_keys.unwrap_or_default() {
            let kid = jwk["kid"].as_str().unwrap_or_default().to_owned();
            trusted_keys.insert(kid, PublicKey::from_jwk(&jwk)?);
        }
        Ok(Distribution3 {
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            roots,
            trusted_keys,
        })
    }

    /// The registry's verdict on `token` at `now`: the claims, or the reason it logs.
    pub(crate) fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, claims_b64, signature_b64] = parts[..] else {
            return Err("malformed token".into());
        };
        let decode = |part: &str| -> Result<serde_json::Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| "malformed token")?;
            serde_json::from_slice(&bytes).map_err(|_| "malformed token".into())
        };
        let header = decode(header_b64)?;
        let claims = decode(claims_b64)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| "malformed token")?;
        let alg = header["alg"].as_str().ok_or("malformed token")?;

        let key = self
            .signing_key(&header, now)
            .map_err(|reason| format!("failed to verify token: {reason}"))?;
        key.verify_jws(
            alg,
            format!("{header_b64}.{claims_b64}").as_bytes(),
            &signature,
        )?;

        if claims["iss"] != self.issuer.as_str() {
            return Err(format!("token from untrusted issuer: {}", claims["iss"]));
        }
        let audience_ok = match &claims["aud"] {
            serde_json::Value::String(aud) => *aud == self.service,
            serde_json::Value::Array(auds) => auds.iter().any(|a| *a == self.service.as_str()),
            _ => false,
        };
        if !audience_ok {
            return Err(format!(
                "token intended for another audience: {}",
                claims["aud"]
            ));
        }
        let now = now.timestamp();
        if now > claims["exp"].as_i64().unwrap_or(0) + LEEWAY_SECS {
            return Err("token not to be used after its expiry".into());
        }
        if now < claims["nbf"].as_i64().unwrap_or(0) - LEEWAY_SECS {
            return Err("token not to be used before nbf".into());
        }
        Ok(claims)
    }

    /// `VerifySigningKey`: `x5c` first; only when it is missing, `jwk`, then `kid`.
    fn signing_key(
        &self,
        header: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<PublicKey, String> {
        if let Some(chain) = header.get("x5c") {
            let leaf_b64 = chain[0].as_str().ok_or("x5c: malformed")?;
            let leaf_der = STANDARD.decode(leaf_b64).map_err(|e| format!("x5c: {e}"))?;
            let leaf = jwt_der::parse_certificate(&leaf_der)
                .map_err(|e| format!("x509: malformed certificate: {e}"))?;
            if now < leaf.not_before || now > leaf.not_after {
                return Err("x509: certificate has expired or is not yet valid".into());
            }
            let chains_to_root = self
                .roots
                .iter()
                .any(|(root_der, root_key)| *root_der == leaf_der || root_key.signed(&leaf));
            if !chains_to_root {
                return Err("x509: certificate signed by unknown authority".into());
            }
            return PublicKey::from_spki(&leaf.spki);
        }
        if header.get("jwk").is_some() {
            return Err("jwk headers are not produced by regauth".into());
        }
        match header["kid"].as_str() {
            Some(kid) if !kid.is_empty() => self
                .trusted_keys
                .get(kid)
                .cloned()
                .ok_or_else(|| format!("token signed by untrusted key with ID: {kid:?}")),
            _ => Err("invalid token".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{
        generate_key, AccessEntry, KeyAlgorithm, KeyRing, RegistryClaims, SigningKey, TokenHeader,
    };

    const ISSUER: &str = "regauth-test";
    const SERVICE: &str = "container_registry";

    fn claims() -> RegistryClaims {
        RegistryClaims::new(
            ISSUER,
            "gitlab+deploy-token-1",
            SERVICE,
            vec![AccessEntry {
                resource_type: "repository".into(),
                name: "acme/web".into(),
                actions: vec!["pull".into()],
            }],
            Utc::now(),
            std::time::Duration::from_secs(300),
        )
        .expect("claims")
    }

    fn header(token: &str) -> serde_json::Value {
        let first = token.split('.').next().expect("header part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).expect("b64")).expect("json")
    }

    /// A key directory with `algs` generated oldest first; the ring in `form`.
    fn ring(algs: &[KeyAlgorithm], form: TokenHeader) -> (tempfile::TempDir, KeyRing) {
        let dir = tempfile::tempdir().expect("tempdir");
        for alg in algs {
            generate_key(dir.path(), *alg, ISSUER).expect("generate");
        }
        let ring = KeyRing::load_dir(dir.path())
            .expect("load")
            .with_token_header(form);
        (dir, ring)
    }

    /// The three trust set-ups of a 3.x registry, from the files regauth writes.
    fn setups(dir: &std::path::Path) -> [(&'static str, Distribution3); 3] {
        let bundle = std::fs::read_to_string(dir.join("bundle.crt")).expect("bundle.crt");
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("jwks.json")).expect("jwks.json"))
                .expect("jwks json");
        [
            (
                "bundle only",
                Distribution3::new(ISSUER, SERVICE, Some(&bundle), None).expect("bundle"),
            ),
            (
                "jwks only",
                Distribution3::new(ISSUER, SERVICE, None, Some(&jwks)).expect("jwks"),
            ),
            (
                "both",
                Distribution3::new(ISSUER, SERVICE, Some(&bundle), Some(&jwks)).expect("both"),
            ),
        ]
    }

    #[test]
    fn x5c_form_header_carries_the_bundle_certificate_and_the_libtrust_kid() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::Rs256] {
            let (dir, ring) = ring(&[alg], TokenHeader::X5c);
            let key = ring.signing_key();
            let header = header(&key.sign_jwt(&claims()).expect("sign"));
            assert_eq!(header["alg"], alg.jws_name());
            assert_eq!(header["typ"], "JWT");
            assert_eq!(header["kid"], key.libtrust_kid());
            let x5c = STANDARD
                .decode(header["x5c"][0].as_str().expect("x5c"))
                .expect("x5c b64");
            let bundle = std::fs::read_to_string(dir.path().join("bundle.crt")).expect("bundle");
            let bundle_ders: Vec<Vec<u8>> = pem::parse_many(&bundle)
                .expect("pem")
                .into_iter()
                .map(|b| b.contents().to_vec())
                .collect();
            assert_eq!(bundle_ders, [x5c]);
        }
    }

    #[test]
    fn jwks_form_header_has_no_x5c_and_names_a_key_of_the_jwks_document() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::Rs256] {
            let (dir, ring) = ring(&[alg], TokenHeader::Jwks);
            let key = ring.signing_key();
            let header = header(&key.sign_jwt(&claims()).expect("sign"));
            assert_eq!(
                header
                    .as_object()
                    .map(|h| h.keys().cloned().collect::<Vec<_>>()),
                Some(vec!["alg".to_owned(), "kid".to_owned(), "typ".to_owned()]),
                "{header}"
            );
            assert_eq!(header["alg"], alg.jws_name());
            let jwks: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.path().join("jwks.json")).expect("jwks.json"),
            )
            .expect("json");
            assert_eq!(jwks, ring.jwks());
            let listed = jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .find(|k| k["kid"] == header["kid"])
                .expect("the header kid is listed in the JWKS");
            assert_eq!(listed["alg"], alg.jws_name());
            assert_eq!(header["kid"], key.thumbprint());
            // The same kid is what 3.x derives from the bundle certificate.
            let cert = jwt_der::parse_certificate(key.certificate_der()).expect("cert");
            assert_eq!(
                PublicKey::from_spki(&cert.spki).expect("spki").thumbprint(),
                key.thumbprint()
            );
        }
    }

    #[test]
    fn registry3_refuses_x5c_tokens_when_it_trusts_a_jwks_alone() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::Rs256] {
            let (dir, ring) = ring(&[alg], TokenHeader::X5c);
            let token = ring.signing_key().sign_jwt(&claims()).expect("sign");
            for (setup, registry) in setups(dir.path()) {
                let verdict = registry.verify(&token, Utc::now());
                if setup == "jwks only" {
                    let reason = verdict.expect_err("refused");
                    assert!(
                        reason.contains("x509: certificate signed by unknown authority"),
                        "{reason}"
                    );
                } else {
                    let claims = verdict.unwrap_or_else(|e| panic!("{alg} {setup}: {e}"));
                    assert_eq!(claims["access"][0]["name"], "acme/web");
                }
            }
        }
    }

    #[test]
    fn registry3_accepts_jwks_tokens_with_a_jwks_a_bundle_or_both() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::Rs256] {
            let (dir, ring) = ring(&[alg], TokenHeader::Jwks);
            let token = ring.signing_key().sign_jwt(&claims()).expect("sign");
            for (setup, registry) in setups(dir.path()) {
                let claims = registry
                    .verify(&token, Utc::now())
                    .unwrap_or_else(|e| panic!("{alg} {setup}: {e}"));
                assert_eq!(claims["sub"], "gitlab+deploy-token-1");
            }
        }
    }

    #[test]
    fn after_rotation_tokens_of_the_old_and_the_new_key_verify_in_both_forms() {
        for form in [TokenHeader::X5c, TokenHeader::Jwks] {
            let (dir, ring) = ring(&[KeyAlgorithm::Rs256, KeyAlgorithm::Es256], form);
            assert_eq!(
                ring.signing_key().algorithm(),
                KeyAlgorithm::Es256,
                "newest signs"
            );
            let [old, new] = ring.keys() else {
                panic!("two keys")
            };
            for key in [old, new] {
                let token = key.sign_jwt(&claims()).expect("sign");
                for (setup, registry) in setups(dir.path()) {
                    let verdict = registry.verify(&token, Utc::now());
                    if form == TokenHeader::X5c && setup == "jwks only" {
                        assert!(verdict.is_err());
                    } else {
                        verdict.unwrap_or_else(|e| panic!("{form} {setup}: {e}"));
                    }
                }
            }
        }
    }

    #[test]
    fn a_retired_key_or_a_foreign_key_is_refused_by_every_setup() {
        for form in [TokenHeader::X5c, TokenHeader::Jwks] {
            let (dir, _) = ring(&[KeyAlgorithm::Es256], form);
            let (_other_dir, other) = ring(&[KeyAlgorithm::Es256], form);
            let token = other.signing_key().sign_jwt(&claims()).expect("sign");
            for (setup, registry) in setups(dir.path()) {
                let reason = registry
                    .verify(&token, Utc::now())
                    .expect_err("a key the registry does not know");
                let expected = match (form, setup) {
                    (TokenHeader::X5c, _) => "certificate signed by unknown authority",
                    (TokenHeader::Jwks, _) => "token signed by untrusted key with ID",
                };
                assert!(reason.contains(expected), "{form} {setup}: {reason}");
            }
        }
    }

    #[test]
    fn the_verifier_checks_signature_algorithm_issuer_and_audience() {
        let (dir, ring) = ring(&[KeyAlgorithm::Es256], TokenHeader::Jwks);
        let key: &SigningKey = ring.signing_key();
        let token = key.sign_jwt(&claims()).expect("sign");
        let [_, (_, registry), _] = setups(dir.path());
        // Tampered payload.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1].push('A');
        assert!(registry.verify(&parts.join("."), Utc::now()).is_err());
        // The header's alg must fit the key type.
        let mut h = header(&token);
        h["alg"] = "RS256".into();
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            token.split_once('.').expect("dot").1
        );
        let reason = registry.verify(&forged, Utc::now()).expect_err("alg");
        assert!(reason.contains("does not fit"), "{reason}");
        // Another issuer or audience.
        let other = Distribution3::new("other", SERVICE, None, Some(&ring.jwks())).expect("new");
        assert!(other
            .verify(&token, Utc::now())
            .expect_err("iss")
            .contains("untrusted issuer"));
        let other = Distribution3::new(ISSUER, "other", None, Some(&ring.jwks())).expect("new");
        assert!(other
            .verify(&token, Utc::now())
            .expect_err("aud")
            .contains("another audience"));
        // Expired beyond the leeway.
        let later = Utc::now() + chrono::Duration::seconds(300 + 61);
        assert!(registry.verify(&token, later).is_err());
    }
}
