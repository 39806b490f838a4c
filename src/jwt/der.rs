//! The little DER this module needs: reading PKCS#8 `PrivateKeyInfo` and the
//! outer fields of an X.509 certificate, and writing a few SEQUENCEs. Not a
//! general ASN.1 parser: single-byte tags and definite lengths only, which is
//! all DER allows for the structures read here.

use chrono::{DateTime, NaiveDate, Utc};

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;

/// OID 1.2.840.113549.1.1.1 (rsaEncryption), content bytes.
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// OID 1.2.840.113549.1.1.10 (RSASSA-PSS).
pub(crate) const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// OID 1.2.840.10045.2.1 (id-ecPublicKey).
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 1.3.132.0.34 (secp384r1 / P-384).
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// OID 1.3.132.0.35 (secp521r1 / P-521).
pub(crate) const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// OID 1.3.101.112 (Ed25519).
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// OID 1.3.101.113 (Ed448).
pub(crate) const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];

/// One TLV read from the front of `input`: `(tag, content, whole TLV, rest)`.
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
    pub rest: &'a [u8],
}

/// Reads one TLV. `None` on truncated or non-DER input.
pub(crate) fn read_tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags are not used by the structures we read
    }
    let (&first_len, after_len) = after_tag.split_first()?;
    let (len, after_len) = if first_len < 0x80 {
        (usize::from(first_len), after_len)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n == 0 || n > 4 || after_len.len() < n {
            return None;
        }
        let (len_bytes, rest) = after_len.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if after_len.len() < len {
        return None;
    }
    let (content, rest) = after_len.split_at(len);
    let header_len = input.len() - after_len.len();
    let raw = input.get(..header_len + len)?;
    Some(Tlv {
        tag,
        content,
        raw,
        rest,
    })
}

/// Reads one TLV and checks its tag.
pub(crate) fn expect_tlv(input: &[u8], tag: u8) -> Option<Tlv<'_>> {
    read_tlv(input).filter(|t| t.tag == tag)
}

/// Encodes one TLV.
pub(crate) fn write_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let significant = bytes.get(skip..).unwrap_or_default();
            // At most size_of::<usize>() (8) length bytes.
            out.push(0x80 | (significant.len() & 0x7f) as u8);
            out.extend_from_slice(significant);
        }
    }
    out.extend_from_slice(content);
    out
}

/// `AlgorithmIdentifier` of a PKCS#8 `PrivateKeyInfo`: the algorithm OID and,
/// when the parameters are an OID (EC named curve), that OID.
pub(crate) struct Pkcs8Algorithm<'a> {
    pub oid: &'a [u8],
    pub param_oid: Option<&'a [u8]>,
}

/// Reads the algorithm of a PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey`.
pub(crate) fn pkcs8_algorithm(pkcs8: &[u8]) -> Option<Pkcs8Algorithm<'_>> {
    let outer = expect_tlv(pkcs8, TAG_SEQUENCE)?;
    let version = expect_tlv(outer.content, TAG_INTEGER)?;
    let alg_id = expect_tlv(version.rest, TAG_SEQUENCE)?;
    let oid = expect_tlv(alg_id.content, TAG_OID)?;
    let param_oid = expect_tlv(oid.rest, TAG_OID).map(|t| t.content);
    Some(Pkcs8Algorithm {
        oid: oid.content,
        param_oid,
    })
}

/// Wraps a PKCS#1 `RSAPrivateKey` into a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let mut body = write_tlv(TAG_INTEGER, &[0]);
    body.extend(rsa_algorithm_identifier());
    body.extend(write_tlv(TAG_OCTET_STRING, pkcs1));
    write_tlv(TAG_SEQUENCE, &body)
}

/// `SEQUENCE { rsaEncryption, NULL }`.
fn rsa_algorithm_identifier() -> Vec<u8> {
    let mut alg = write_tlv(TAG_OID, OID_RSA_ENCRYPTION);
    alg.extend(write_tlv(TAG_NULL, &[]));
    write_tlv(TAG_SEQUENCE, &alg)
}

/// `SubjectPublicKeyInfo` of an RSA key from its PKCS#1 `RSAPublicKey` DER.
pub(crate) fn rsa_spki(rsa_public_key_der: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(rsa_public_key_der.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(rsa_public_key_der);
    let mut body = rsa_algorithm_identifier();
    body.extend(write_tlv(TAG_BIT_STRING, &bits));
    write_tlv(TAG_SEQUENCE, &body)
}

/// `SubjectPublicKeyInfo` of a P-256 key from its uncompressed point.
pub(crate) fn p256_spki(uncompressed_point: &[u8]) -> Vec<u8> {
    let mut alg = write_tlv(TAG_OID, OID_EC_PUBLIC_KEY);
    alg.extend(write_tlv(TAG_OID, OID_P256));
    let mut bits = Vec::with_capacity(uncompressed_point.len() + 1);
    bits.push(0);
    bits.extend_from_slice(uncompressed_point);
    let mut body = write_tlv(TAG_SEQUENCE, &alg);
    body.extend(write_tlv(TAG_BIT_STRING, &bits));
    write_tlv(TAG_SEQUENCE, &body)
}

/// The outer fields of an X.509 certificate that this module looks at.
pub(crate) struct CertificateInfo<'a> {
    /// The `SubjectPublicKeyInfo`, whole TLV.
    pub spki: &'a [u8],
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// `TBSCertificate`, whole TLV (the signed bytes).
    #[cfg_attr(not(test), allow(dead_code))]
    pub tbs: &'a [u8],
    /// Signature BIT STRING content without the unused-bits byte.
    #[cfg_attr(not(test), allow(dead_code))]
    pub signature: &'a [u8],
}

/// Parses the outer structure of a certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }`,
/// `TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serial, signature,
/// issuer, validity, subject, subjectPublicKeyInfo, ... }`.
pub(crate) fn parse_certificate(der: &[u8]) -> Option<CertificateInfo<'_>> {
    let cert = expect_tlv(der, TAG_SEQUENCE)?;
    if !cert.rest.is_empty() {
        return None;
    }
    let tbs = expect_tlv(cert.content, TAG_SEQUENCE)?;
    let sig_alg = expect_tlv(tbs.rest, TAG_SEQUENCE)?;
    let sig = expect_tlv(sig_alg.rest, TAG_BIT_STRING)?;
    let (&unused_bits, signature) = sig.content.split_first()?;
    if unused_bits != 0 {
        return None;
    }

    let mut fields = tbs.content;
    if let Some(version) = expect_tlv(fields, TAG_CONTEXT_0) {
        fields = version.rest;
    }
    let serial = expect_tlv(fields, TAG_INTEGER)?;
    let inner_sig_alg = expect_tlv(serial.rest, TAG_SEQUENCE)?;
    let issuer = expect_tlv(inner_sig_alg.rest, TAG_SEQUENCE)?;
    let validity = expect_tlv(issuer.rest, TAG_SEQUENCE)?;
    let subject = expect_tlv(validity.rest, TAG_SEQUENCE)?;
    let spki = expect_tlv(subject.rest, TAG_SEQUENCE)?;

    let not_before = read_tlv(validity.content)?;
    let not_after = read_tlv(not_before.rest)?;
    Some(CertificateInfo {
        spki: spki.raw,
        not_before: parse_time(not_before.tag, not_before.content)?,
        not_after: parse_time(not_after.tag, not_after.content)?,
        tbs: tbs.raw,
        signature,
    })
}

/// Parses an X.509 `Time`: `UTCTime` `YYMMDDHHMMSSZ` (RFC 5280 pivot: `YY` < 50
/// is `20YY`) or `GeneralizedTime` `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, content: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(content).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> { digits.get(range)?.parse().ok() };
    let (year, rest_at) = match (tag, digits.len()) {
        (TAG_UTC_TIME, 12) => {
            let yy = num(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (TAG_GENERALIZED_TIME, 14) => (num(0..4)?, 4),
        _ => return None,
    };
    let at = |i: usize| num(rest_at + i..rest_at + i + 2);
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, at(0)?, at(2)?)?;
    let time = date.and_hms_opt(at(4)?, at(6)?, at(8)?)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_roundtrip_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let encoded = write_tlv(TAG_OCTET_STRING, &content);
            let tlv = read_tlv(&encoded).expect("tlv");
            assert_eq!(tlv.tag, TAG_OCTET_STRING);
            assert_eq!(tlv.content, content.as_slice());
            assert_eq!(tlv.raw, encoded.as_slice());
            assert!(tlv.rest.is_empty());
        }
        // long form for 128 is 0x81 0x80
        assert_eq!(&write_tlv(0x04, &[0; 128])[..3], &[0x04, 0x81, 0x80]);
    }

    #[test]
    fn truncated_tlv_is_rejected() {
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(read_tlv(&[0x30, 0x82, 0x01]).is_none());
        assert!(read_tlv(&[]).is_none());
    }

    #[test]
    fn times_parse_with_rfc5280_pivot() {
        let t = parse_time(TAG_UTC_TIME, b"491231235959Z").expect("utc");
        assert_eq!(t.to_rfc3339(), "2049-12-31T23:59:59+00:00");
        let t = parse_time(TAG_UTC_TIME, b"500101000000Z").expect("utc");
        assert_eq!(t.to_rfc3339(), "1950-01-01T00:00:00+00:00");
        let t = parse_time(TAG_GENERALIZED_TIME, b"21261029023820Z").expect("gen");
        assert_eq!(t.to_rfc3339(), "2126-10-29T02:38:20+00:00");
        assert!(parse_time(TAG_UTC_TIME, b"21261029023820Z").is_none());
        assert!(parse_time(TAG_UTC_TIME, b"491331235959Z").is_none());
    }
}
