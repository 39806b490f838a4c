//! Error types of the `jwt` module.

use std::path::PathBuf;

/// Why a key or certificate could not be loaded, generated or written.
///
/// Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file or directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not valid PEM.
    #[error("invalid PEM in {what}: {reason}")]
    Pem {
        /// "private key" or "certificate".
        what: &'static str,
        /// Parser message.
        reason: String,
    },
    /// The key is of a kind or in a format this module does not support.
    #[error("unsupported private key: {0}")]
    Unsupported(String),
    /// The key is in a supported format but could not be parsed.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The certificate's public key is not the private key's public key.
    #[error("the certificate's public key does not match the private key")]
    CertificateMismatch,
    /// A `<stem>.key` file has no `<stem>.crt` beside it.
    #[error(
        "key file {} has no certificate: expected {}",
        key_path.display(),
        cert_path.display()
    )]
    MissingCertificate {
        /// The key file found.
        key_path: PathBuf,
        /// The certificate file that is missing.
        cert_path: PathBuf,
    },
    /// The same key appears twice in a key ring.
    #[error("duplicate signing key (kid {kid})")]
    DuplicateKey {
        /// libtrust key ID of the duplicated key.
        kid: String,
    },
    /// No key at all: an empty key directory or an empty list.
    #[error("no signing key found (expected <name>.key with <name>.crt)")]
    NoKeys,
    /// Every key is staged (published, not signing): one must be activated.
    #[error(
        "every key is staged (private/<name>.staged): activate one with `regauth keys activate`"
    )]
    AllStaged,
    /// Loading one file of a key directory failed.
    #[error("{}: {reason}", path.display())]
    File {
        /// The key file concerned.
        path: PathBuf,
        /// What went wrong with it.
        reason: Box<KeyError>,
    },
    /// Key or certificate generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

impl KeyError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        KeyError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn in_file(path: impl Into<PathBuf>, reason: KeyError) -> Self {
        KeyError::File {
            path: path.into(),
            reason: Box::new(reason),
        }
    }
}

/// Why a token could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The claims could not be serialised to JSON.
    #[error("cannot serialise JWT claims: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The signature primitive failed.
    #[error("signing failed")]
    Crypto,
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}
