//! Token signing for container registries (CNCF distribution / docker-registry
//! 2.8 and 3.x).
//!
//! The registry's `auth.token` configuration trusts tokens through a
//! certificate bundle (`rootcertbundle`, 2.8 and 3.x) or a JWK set (`jwks`,
//! 3.x only). The JWS header comes in one of two forms ([`TokenHeader`],
//! setting `token_header`):
//!
//! * `x5c` (default): the header carries `x5c` (the self-signed certificate of
//!   the signing key, standard base64 DER), which the registry checks against
//!   the PEM bundle written by [`generate_key`] (`<dir>/bundle.crt`), and
//!   `kid` = the libtrust key ID ([`libtrust_key_id`]) that 2.8 expects.
//!   Registry 3.x verifies `x5c` whenever it is present, so a 3.x registry
//!   trusting a JWKS alone refuses this form.
//! * `jwks`: no `x5c`; `kid` = the RFC 7638 thumbprint that [`KeyRing::jwks`]
//!   lists (and that 3.x also derives from the bundle's certificates). Registry
//!   2.8 refuses this form: it knows only libtrust key IDs.
//!
//! Supported algorithms are ES256 (ECDSA P-256, raw `r||s` signature) and RS256
//! (RSA PKCS#1 v1.5 with SHA-256, keys of at least 2048 bits). Ed25519 is
//! rejected because registry 2.8 refuses `EdDSA` tokens.
//!
//! Keys are parsed once into `ring` key pairs when loaded; signing a token is a
//! JSON serialisation plus one signature. We build the JWS ourselves instead of
//! calling `jsonwebtoken::encode`, whose backends re-parse the key on each call.
//!
//! Key rotation: [`generate_key`] adds a new `<stem>.key`/`<stem>.crt` pair to
//! the key directory and rewrites `bundle.crt` with the certificates of all
//! keys; [`KeyRing`] signs with the newest key (stems are UTC timestamps and
//! sort by age) and publishes all of them. Retire a key by deleting its two
//! files and calling [`write_certificate_bundle`].

mod claims;
mod der;
mod error;
mod key;
mod keyring;

#[cfg(test)]
mod distribution3;
#[cfg(test)]
mod testdata;

pub use claims::{AccessEntry, RegistryClaims};
pub use error::{KeyError, SignError};
pub use key::{libtrust_key_id, rfc7638_thumbprint, KeyAlgorithm, SigningKey, TokenHeader};
pub use keyring::{
    activate_staged_keys, generate_key, generate_key_with, load_or_generate, open_up_key_dir,
    write_certificate_bundle, write_jwks_file, GeneratedKey, KeyRing, KeyRingChange, SharedKeyRing,
    BUNDLE_FILE_NAME, JWKS_FILE_NAME, PRIVATE_DIR_NAME,
};
