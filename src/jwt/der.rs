//! The DER this module needs, through the RustCrypto crates (`der`, `spki`, `pkcs8`,
//! `x509-cert`) rather than by hand: the algorithm of a PKCS#8 `PrivateKeyInfo`, PKCS#1 RSA
//! keys wrapped into PKCS#8, `SubjectPublicKeyInfo`s for the two key types we sign with, and
//! the public key and validity of an X.509 certificate. The decoders are strict DER
//! (X.690 §10): non-canonical lengths, indefinite lengths and trailing bytes are refused.

use chrono::{DateTime, Utc};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::{Decode as _, Encode as _};
use pkcs8::PrivateKeyInfo;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;

/// rsaEncryption (RFC 8017).
pub(crate) const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// RSASSA-PSS (RFC 8017).
pub(crate) const OID_RSA_PSS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-ecPublicKey (RFC 5480).
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / P-256.
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 / P-384.
pub(crate) const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// secp521r1 / P-521.
pub(crate) const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
/// Ed25519 (RFC 8410).
pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// Ed448 (RFC 8410).
pub(crate) const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// The `AlgorithmIdentifier` of a PKCS#8 key: the algorithm and, for EC keys on a named
/// curve, the curve.
pub(crate) struct Pkcs8Algorithm {
    pub oid: ObjectIdentifier,
    pub param_oid: Option<ObjectIdentifier>,
}

/// Reads the algorithm of a PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey` (v1 or v2).
pub(crate) fn pkcs8_algorithm(pkcs8: &[u8]) -> Result<Pkcs8Algorithm, der::Error> {
    let info = PrivateKeyInfo::from_der(pkcs8)?;
    Ok(Pkcs8Algorithm {
        oid: info.algorithm.oid,
        param_oid: info.algorithm.parameters_oid().ok(),
    })
}

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
fn rsa_algorithm() -> AlgorithmIdentifierRef<'static> {
    AlgorithmIdentifierRef {
        oid: OID_RSA_ENCRYPTION,
        parameters: Some(AnyRef::NULL),
    }
}

/// Wraps a PKCS#1 `RSAPrivateKey` into a PKCS#8 `PrivateKeyInfo` (ring reads only PKCS#8).
pub(crate) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Result<Vec<u8>, der::Error> {
    PrivateKeyInfo::new(rsa_algorithm(), pkcs1).to_der()
}

/// `SubjectPublicKeyInfo` of an RSA key from its PKCS#1 `RSAPublicKey` DER.
pub(crate) fn rsa_spki(rsa_public_key_der: &[u8]) -> Result<Vec<u8>, der::Error> {
    SubjectPublicKeyInfoRef {
        algorithm: rsa_algorithm(),
        subject_public_key: BitStringRef::from_bytes(rsa_public_key_der)?,
    }
    .to_der()
}

/// `SubjectPublicKeyInfo` of a P-256 key from its uncompressed point.
pub(crate) fn p256_spki(uncompressed_point: &[u8]) -> Result<Vec<u8>, der::Error> {
    let curve = AnyRef::from(&OID_P256);
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(curve),
        },
        subject_public_key: BitStringRef::from_bytes(uncompressed_point)?,
    }
    .to_der()
}

/// What this module reads from an X.509 certificate.
pub(crate) struct CertificateInfo {
    /// The `SubjectPublicKeyInfo`, DER.
    pub spki: Vec<u8>,
    /// The public key bits inside it (PKCS#1 `RSAPublicKey` or an EC point).
    #[cfg_attr(not(test), allow(dead_code))]
    pub public_key: Vec<u8>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// `TBSCertificate`, DER (the signed bytes).
    #[cfg_attr(not(test), allow(dead_code))]
    pub tbs: Vec<u8>,
    /// The signature bits.
    #[cfg_attr(not(test), allow(dead_code))]
    pub signature: Vec<u8>,
}

/// Parses a DER certificate (RFC 5280), strictly.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<CertificateInfo, der::Error> {
    let cert = Certificate::from_der(der)?;
    let tbs = &cert.tbs_certificate;
    let spki = &tbs.subject_public_key_info;
    let time = |time: &x509_cert::time::Time| {
        let since_epoch = time.to_unix_duration();
        i64::try_from(since_epoch.as_secs())
            .ok()
            .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0))
            .ok_or_else(|| der::Error::from(der::ErrorKind::DateTime))
    };
    Ok(CertificateInfo {
        spki: spki.to_der()?,
        public_key: spki.subject_public_key.raw_bytes().to_vec(),
        not_before: time(&tbs.validity.not_before)?,
        not_after: time(&tbs.validity.not_after)?,
        tbs: tbs.to_der()?,
        signature: cert.signature.raw_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pkcs1_key_wrapped_into_pkcs8_reads_back_as_rsa() {
        let pkcs8 = pkcs1_to_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x00]).expect("encode");
        let algorithm = pkcs8_algorithm(&pkcs8).expect("decode");
        assert_eq!(algorithm.oid, OID_RSA_ENCRYPTION);
        assert_eq!(algorithm.param_oid, None);
    }

    #[test]
    fn a_p256_spki_names_the_curve() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let spki = p256_spki(&point).expect("encode");
        let decoded = SubjectPublicKeyInfoRef::from_der(&spki).expect("decode");
        assert_eq!(decoded.algorithm.oid, OID_EC_PUBLIC_KEY);
        assert_eq!(decoded.algorithm.parameters_oid().ok(), Some(OID_P256));
        assert_eq!(decoded.subject_public_key.raw_bytes(), point.as_slice());
    }

    #[test]
    fn non_canonical_der_lengths_are_refused() {
        // A valid PKCS#8 structure, then the same with the outer length in long form
        // (0x81 n where n < 128): BER allows it, DER does not.
        let pkcs8 = pkcs1_to_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x00]).expect("encode");
        assert!(pkcs8_algorithm(&pkcs8).is_ok());
        let length = pkcs8[1];
        assert!(length < 0x80);
        let mut long_form = vec![pkcs8[0], 0x81, length];
        long_form.extend_from_slice(&pkcs8[2..]);
        assert!(pkcs8_algorithm(&long_form).is_err());
        // Trailing bytes after the structure are refused too.
        let mut trailing = pkcs8.clone();
        trailing.push(0);
        assert!(pkcs8_algorithm(&trailing).is_err());
    }
}
