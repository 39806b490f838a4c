//! The key that seals the secrets of `gitlab-deploy-token` tokens at rest (AES-256-GCM,
//! `ring::aead`), so that a CI system can be handed `CI_DEPLOY_PASSWORD`. Every other token's
//! secret exists only as a SHA-256 digest and can never be recovered.
//!
//! The key is 32 random bytes, stored hex-encoded in the file named by `ci_secret_key_file`
//! (default `<keys_dir>/ci/ci-secret.aes256`, mode 0600 in a 0700 folder apart from the signing
//! keys; `<keys_dir>/ci-secret.aes256` where an older version made it), generated on first start like the signing
//! keys. A sealed value is `v1.<key id>.<base64(nonce || ciphertext || tag)>`: the key id
//! (first 8 bytes of SHA-256 of the key, hex) tells a replaced key apart from a damaged value,
//! and the token's digest is the additional authenticated data, so a sealed value moved to
//! another row does not open.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Format version of sealed values.
const VERSION: &str = "v1";
/// Key length of AES-256.
const KEY_LEN: usize = 32;

/// Why a key could not be loaded or a value not be opened. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum CiSecretError {
    #[error("ci_secret_key_file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "the stored CI secret was sealed with another ci_secret_key_file key (id {stored}, the current key is {current}); \
         create a new gitlab-deploy-token"
    )]
    OtherKey { stored: String, current: String },
    #[error("the stored CI secret does not open with the current ci_secret_key_file key (damaged or moved); create a new gitlab-deploy-token")]
    Undecryptable,
    #[error("the system random generator failed")]
    Random,
}

/// The loaded key. `Debug` shows only its id.
pub struct CiSecretKey {
    key: LessSafeKey,
    id: String,
    rng: SystemRandom,
}

impl fmt::Debug for CiSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiSecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl CiSecretKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<CiSecretKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        Some(CiSecretKey {
            key: LessSafeKey::new(unbound),
            id: hex(&digest.as_ref()[..8]),
            rng: SystemRandom::new(),
        })
    }

    /// Loads the key from `path`; when the file does not exist, generates one there first
    /// (parent directories created, mode 0600). Returns the key and whether it was generated.
    ///
    /// # Errors
    ///
    /// [`CiSecretError::KeyFile`] naming the file for an unreadable file, one that does not
    /// hold 64 hex digits, or one that cannot be written.
    pub fn load_or_generate(path: &Path) -> Result<(CiSecretKey, bool), CiSecretError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                refuse_world_access(path)?;
                Ok((Self::parse(path, &text)?, false))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok((Self::generate(path)?, true))
            }
            Err(error) => Err(key_file_error(path, error.to_string())),
        }
    }

    /// Writes a new random key to `path`, which must not exist yet.
    ///
    /// # Errors
    ///
    /// [`CiSecretError::KeyFile`] when the file exists or cannot be written.
    pub fn generate(path: &Path) -> Result<CiSecretKey, CiSecretError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CiSecretError::Random)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // A new folder for the key is the owner's alone.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder
                .create(parent)
                .map_err(|e| key_file_error(path, e.to_string()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| key_file_error(path, e.to_string()))?;
        file.write_all(format!("{}\n", hex(&bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| key_file_error(path, e.to_string()))?;
        Self::from_bytes(&bytes).ok_or(CiSecretError::Random)
    }

    fn parse(path: &Path, text: &str) -> Result<CiSecretKey, CiSecretError> {
        let text = text.trim();
        let bytes = unhex(text).filter(|b| b.len() == KEY_LEN).ok_or_else(|| {
            key_file_error(
                path,
                "must hold 64 hex digits (32 bytes); make one with `regauth keys ci-secret`".into(),
            )
        })?;
        Self::from_bytes(&bytes).ok_or_else(|| key_file_error(path, "not an AES-256 key".into()))
    }

    /// The key id written into sealed values.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `secret`, bound to `digest_hex` (the token's digest).
    ///
    /// # Errors
    ///
    /// [`CiSecretError::Random`] when no nonce can be drawn.
    pub fn seal(&self, secret: &str, digest_hex: &str) -> Result<String, CiSecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| CiSecretError::Random)?;
        let mut in_out = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(digest_hex.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| CiSecretError::Random)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&in_out);
        Ok(format!("{VERSION}.{}.{}", self.id, STANDARD.encode(blob)))
    }

    /// Opens a value made by [`CiSecretKey::seal`] for the token with `digest_hex`.
    ///
    /// # Errors
    ///
    /// [`CiSecretError::OtherKey`] when it was sealed under another key,
    /// [`CiSecretError::Undecryptable`] when it is damaged or belongs to another token.
    pub fn open(&self, sealed: &str, digest_hex: &str) -> Result<String, CiSecretError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CiSecretError::Undecryptable);
        };
        if key_id != self.id {
            return Err(CiSecretError::OtherKey {
                stored: key_id.to_owned(),
                current: self.id.clone(),
            });
        }
        let blob = STANDARD
            .decode(data)
            .map_err(|_| CiSecretError::Undecryptable)?;
        if blob.len() < NONCE_LEN {
            return Err(CiSecretError::Undecryptable);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| CiSecretError::Undecryptable)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(digest_hex.as_bytes()), &mut in_out)
            .map_err(|_| CiSecretError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CiSecretError::Undecryptable)
    }
}

/// The default key file: `<keys_dir>/ci/ci-secret.aes256`, a folder of its own apart from
/// the signing keys (and from what a registry reads); `<keys_dir>/ci-secret.aes256` when an
/// older version made it there. Not `.key`: every `*.key` of the keys directory is loaded as
/// a signing key.
pub fn default_key_file(keys_dir: &Path) -> PathBuf {
    let older = keys_dir.join("ci-secret.aes256");
    if older.exists() {
        older
    } else {
        keys_dir.join("ci").join("ci-secret.aes256")
    }
}

/// A key that any user of the machine may read (or write) opens every sealed CI secret: refused,
/// as ssh refuses such a private key. Group access is the operator's choice.
fn refuse_world_access(path: &Path) -> Result<(), CiSecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|error| key_file_error(path, error.to_string()))?
            .permissions()
            .mode();
        if mode & 0o006 != 0 {
            return Err(key_file_error(
                path,
                format!(
                    "is accessible to every user of the machine (mode {:04o}); run `chmod 600 {}` \
                     (Kubernetes: mount the secret with defaultMode 0400)",
                    mode & 0o7777,
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn key_file_error(path: &Path, reason: String) -> CiSecretError {
    CiSecretError::KeyFile {
        path: path.display().to_string(),
        reason,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CiSecretKey {
        CiSecretKey::from_bytes(&[7u8; 32]).expect("key")
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_digest() {
        let key = key();
        let sealed = key.seal("gldt-abc", "d1").expect("seal");
        assert!(sealed.starts_with(&format!("v1.{}.", key.id())));
        assert!(!sealed.contains("gldt-abc"));
        assert_eq!(key.open(&sealed, "d1").expect("open"), "gldt-abc");
        // Another row's digest: refused.
        assert!(matches!(
            key.open(&sealed, "d2"),
            Err(CiSecretError::Undecryptable)
        ));
        // Another key: refused, naming both key ids and no secret.
        let other = CiSecretKey::from_bytes(&[8u8; 32]).expect("key");
        let error = other.open(&sealed, "d1").expect_err("other key");
        assert!(matches!(error, CiSecretError::OtherKey { .. }));
        assert!(!error.to_string().contains("gldt-"));
        // Same id forged onto a value sealed under another key: still refused.
        let forged = other
            .seal("gldt-abc", "d1")
            .expect("seal")
            .replace(other.id(), key.id());
        assert!(matches!(
            key.open(&forged, "d1"),
            Err(CiSecretError::Undecryptable)
        ));
        // Two seals of the same secret differ (random nonce).
        assert_ne!(sealed, key.seal("gldt-abc", "d1").expect("seal"));
        assert!(!format!("{key:?}").contains("0707"));
    }

    #[test]
    fn the_key_file_is_generated_once_with_mode_0600_and_bad_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/ci-secret.aes256");
        let (first, generated) = CiSecretKey::load_or_generate(&path).expect("generate");
        assert!(generated);
        let (second, generated) = CiSecretKey::load_or_generate(&path).expect("load");
        assert!(!generated);
        assert_eq!(first.id(), second.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(CiSecretKey::generate(&path).is_err(), "never overwritten");
        std::fs::write(&path, "not hex").expect("write");
        let error = CiSecretKey::load_or_generate(&path).expect_err("bad file");
        let message = error.to_string();
        assert!(message.contains("ci_secret_key_file"), "{message}");
        assert!(message.contains("64 hex digits"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_other_users_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci-secret.aes256");
        CiSecretKey::generate(&path).unwrap();
        for (mode, refused) in [(0o644, true), (0o602, true), (0o640, false), (0o600, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let loaded = CiSecretKey::load_or_generate(&path);
            assert_eq!(loaded.is_err(), refused, "mode {mode:o}");
            if let Err(error) = loaded {
                assert!(error.to_string().contains("chmod 600"), "{error}");
            }
        }
    }
}
