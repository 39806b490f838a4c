//! HTTPS for the realm: clients send deploy-token secrets to it. rustls with the ring
//! provider; the certificate chain and private key come from PEM files (`tls_certificate`,
//! `tls_key`) and are re-read on SIGHUP. The server's config never changes: its certificate
//! resolver hands out whichever [`CertifiedKey`] is current, swapped in one step, so open
//! connections keep going and new handshakes get the new certificate. A new pair that does not
//! load (missing file, bad PEM, key not matching the certificate) leaves the old one in place.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The current certificate and key, replaced on reload.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCertificate {
    /// Loads the pair once; a start with files that do not load fails.
    pub async fn load(files: &TlsFiles) -> Result<ReloadingCertificate, TlsError> {
        let key = load_pair(files).await?;
        Ok(ReloadingCertificate {
            files: files.clone(),
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Re-reads the files; on failure the current pair stays and the error is returned.
    pub async fn reload(&self) -> Result<(), TlsError> {
        let key = Arc::new(load_pair(&self.files).await?);
        // A poisoned lock still holds a valid Arc: replace it all the same.
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = key;
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server config: safe default protocol versions (TLS 1.2 and 1.3), no client
/// certificates, HTTP/1.1 (the only protocol regauth serves).
pub fn server_config(resolver: Arc<ReloadingCertificate>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path).await.map_err(|error| TlsError::Read {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

async fn load_pair(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let chain_pem = read(&files.certificate).await?;
    let key_pem = read(&files.key).await?;
    parse_pair(&chain_pem, &key_pem, files)
}

/// The chain (leaf first) and the key, checked to belong together.
fn parse_pair(
    chain_pem: &[u8],
    key_pem: &[u8],
    files: &TlsFiles,
) -> Result<CertifiedKey, TlsError> {
    let invalid = |path: &Path, message: String| TlsError::Invalid {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(&files.certificate, format!("not PEM certificates: {error}")))?;
    if chain.is_empty() {
        return Err(invalid(
            &files.certificate,
            "holds no CERTIFICATE block".into(),
        ));
    }
    // The error names the file, never its content.
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| invalid(&files.key, "holds no readable private key (PEM)".into()))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| invalid(&files.key, "is not an RSA, ECDSA or Ed25519 key".into()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| {
        invalid(
            &files.key,
            format!(
                "does not match the certificate in {}",
                files.certificate.display()
            ),
        )
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn files() -> TlsFiles {
        TlsFiles {
            certificate: "cert.pem".into(),
            key: "key.pem".into(),
        }
    }

    #[test]
    fn a_matching_pair_loads() {
        let (cert, key) = pair("localhost");
        let loaded = parse_pair(cert.as_bytes(), key.as_bytes(), &files()).unwrap();
        assert_eq!(loaded.cert.len(), 1);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_files() {
        let (cert, _) = pair("localhost");
        let (_, other_key) = pair("localhost");
        let error = parse_pair(cert.as_bytes(), other_key.as_bytes(), &files())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("key.pem") && error.contains("cert.pem"),
            "{error}"
        );
    }

    #[test]
    fn empty_or_garbage_files_are_refused_without_echoing_them() {
        let (cert, key) = pair("localhost");
        let error = parse_pair(b"", key.as_bytes(), &files())
            .unwrap_err()
            .to_string();
        assert!(error.contains("cert.pem"), "{error}");
        let error = parse_pair(cert.as_bytes(), b"SECRET-KEY-MATERIAL", &files())
            .unwrap_err()
            .to_string();
        assert!(error.contains("key.pem"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
    }
}
