//! Test vectors made with the OpenSSL CLI; see `testdata/README.md`.

pub(crate) const EC_PKCS8_KEY: &str = include_str!("testdata/ec_pkcs8.key");
pub(crate) const EC_SEC1_KEY: &str = include_str!("testdata/ec_sec1.key");
pub(crate) const EC_CRT: &str = include_str!("testdata/ec.crt");
pub(crate) const EC_PUB_PEM: &str = include_str!("testdata/ec.pub.pem");
pub(crate) const RSA_PKCS8_KEY: &str = include_str!("testdata/rsa_pkcs8.key");
pub(crate) const RSA_PKCS1_KEY: &str = include_str!("testdata/rsa_pkcs1.key");
pub(crate) const RSA_CRT: &str = include_str!("testdata/rsa.crt");
pub(crate) const RSA_PUB_PEM: &str = include_str!("testdata/rsa.pub.pem");
pub(crate) const ED25519_KEY: &str = include_str!("testdata/ed25519.key");

/// `sha256sum | head -c 30 | base32`, regrouped (see README).
pub(crate) const EC_LIBTRUST_KID: &str =
    "YV6J:TNUP:3UQD:TMVM:TN36:QQWE:5PUS:LVD6:4223:2WMB:E7QF:JCQF";
pub(crate) const RSA_LIBTRUST_KID: &str =
    "CYQC:SP6M:SWBD:QR4S:2FTS:GZ7M:CZEO:UQMF:CXAH:7WLG:LXNT:3VGE";

/// RFC 7638 thumbprints computed with python3 json + hashlib + base64.
pub(crate) const EC_THUMBPRINT: &str = "W2IwIIiW4vTac6VvflNyamjxjsyLfjJPr81AhqzfcAo";
pub(crate) const RSA_THUMBPRINT: &str = "IvYTfuFveq_iJrJ14Wo8N6p1FIbcwLkIMZgB-UMiTyU";
