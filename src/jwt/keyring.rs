//! The set of signing keys in a key directory, key generation and the
//! certificate bundle for the registry's `rootcertbundle`.
//!
//! Layout: the key directory (0755) holds what a registry running as another user reads:
//! `bundle.crt`, `jwks.json` and each key's `<stem>.crt` (0644). Private keys live in
//! `private/` (0700), `<stem>.key` (0600). A key with a `private/<stem>.staged` marker is
//! published (bundle, JWKS) but does not sign yet: staged rotation publishes a key, lets the
//! registries load it, then activates it. `<stem>.key` files directly in the key directory
//! (the layout of older versions) are still loaded.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::error::KeyError;
use super::key::{KeyAlgorithm, SigningKey, TokenHeader};

/// File name of the certificate bundle written into the key directory.
pub const BUNDLE_FILE_NAME: &str = "bundle.crt";

/// File name of the JWK set written next to the bundle (registry 3.x `jwks`).
pub const JWKS_FILE_NAME: &str = "jwks.json";

/// The directory of private keys under the key directory.
pub const PRIVATE_DIR_NAME: &str = "private";

/// `private/<stem>.staged`: the key is published but does not sign yet.
const STAGED_EXTENSION: &str = "staged";

/// Prefix of generated key file stems.
const STEM_PREFIX: &str = "regauth-";

/// How long generated certificates are valid before "now" (clock skew).
const CERT_BACKDATE_SECS: i64 = 24 * 60 * 60;
/// How long generated certificates stay valid: 10 years.
const CERT_LIFETIME_SECS: i64 = 3653 * 24 * 60 * 60;
/// RSA modulus size of generated keys.
const GENERATED_RSA_BITS: usize = 2048;

/// Signing keys ordered oldest to newest: the newest that is not staged signs, all are
/// published.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// Index of the signing key in `keys`.
    signing: usize,
}

impl KeyRing {
    /// Loads every `<stem>.key` of `dir` with its `<stem>.crt`, ordered by
    /// stem (generated stems are UTC timestamps, so this is by age; a `-NNN`
    /// suffix sorts after its base stem).
    ///
    /// Other files, including `bundle.crt` and certificates without a key, are
    /// ignored. A `.key` without its `.crt` is an error naming both files; an
    /// error in one pair names its key file.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`], [`KeyError::MissingCertificate`], [`KeyError::File`]
    /// (a pair that does not load, or a duplicate key), [`KeyError::NoKeys`].
    pub fn load_dir(dir: &Path) -> Result<KeyRing, KeyError> {
        let private = dir.join(PRIVATE_DIR_NAME);
        let mut key_files: Vec<(OsString, PathBuf)> = Vec::new();
        for folder in [dir, private.as_path()] {
            let entries = match fs::read_dir(folder) {
                Ok(entries) => entries,
                // A key directory of the older layout has no private/.
                Err(e) if folder == private && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(KeyError::io("read directory", folder, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| KeyError::io("read directory", folder, e))?;
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "key") && path.is_file() {
                    // Sort by stem, not file name: "X.key" must precede "X-001.key"
                    // although '.' > '-'.
                    let stem = path.file_stem().map(OsString::from).unwrap_or_default();
                    key_files.push((stem, path));
                }
            }
        }
        key_files.sort();

        let mut keys = Vec::with_capacity(key_files.len());
        let mut signing = None;
        for (stem, key_path) in key_files {
            // The certificate is public: beside the bundle, whichever folder holds the key.
            let cert_path = dir.join(&stem).with_extension("crt");
            let key = load_pair(&key_path, &cert_path).map_err(|e| match e {
                e @ KeyError::MissingCertificate { .. } => e,
                other => KeyError::in_file(&key_path, other),
            })?;
            if let Some(dup) = keys
                .iter()
                .find(|k: &&SigningKey| k.libtrust_kid() == key.libtrust_kid())
            {
                return Err(KeyError::in_file(
                    &key_path,
                    KeyError::DuplicateKey {
                        kid: dup.libtrust_kid().to_owned(),
                    },
                ));
            }
            if !private
                .join(&stem)
                .with_extension(STAGED_EXTENSION)
                .exists()
            {
                signing = Some(keys.len());
            }
            keys.push(key);
        }
        let mut ring = KeyRing::from_keys(keys)?;
        ring.signing = signing.ok_or(KeyError::AllStaged)?;
        Ok(ring)
    }

    /// A key ring of `keys`, given oldest first. Fails on an empty list or
    /// when a key appears twice.
    ///
    /// # Errors
    ///
    /// [`KeyError::NoKeys`], [`KeyError::DuplicateKey`].
    pub fn from_keys(keys: Vec<SigningKey>) -> Result<KeyRing, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys
                .iter()
                .skip(i + 1)
                .any(|other| other.libtrust_kid() == key.libtrust_kid())
            {
                return Err(KeyError::DuplicateKey {
                    kid: key.libtrust_kid().to_owned(),
                });
            }
        }
        Ok(KeyRing {
            signing: keys.len() - 1,
            keys,
        })
    }

    /// This ring, every key writing `header` form JWS headers.
    pub fn with_token_header(self, header: TokenHeader) -> KeyRing {
        KeyRing {
            keys: self
                .keys
                .into_iter()
                .map(|key| key.with_token_header(header))
                .collect(),
            signing: self.signing,
        }
    }

    /// The key that signs new tokens: the newest that is not staged.
    pub fn signing_key(&self) -> &SigningKey {
        // Invariant: the constructors reject an empty list and keep `signing` in range.
        &self.keys[self.signing]
    }

    /// The keys published but not signing yet (staged), oldest first.
    pub fn staged_keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().skip(self.signing + 1)
    }

    /// All keys, oldest first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The JWK set of all keys: `{"keys":[...]}`, oldest first, for
    /// `GET /.well-known/jwks.json` and registry 3.x's `jwks` option.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(SigningKey::jwk).collect::<Vec<_>>() })
    }

    /// The certificates of all keys, concatenated PEM `CERTIFICATE` blocks:
    /// the content of the registry's `rootcertbundle`.
    pub fn certificate_bundle_pem(&self) -> String {
        self.keys.iter().map(SigningKey::certificate_pem).collect()
    }
}

/// The key ring a running server uses, replaced whole when `SIGHUP` reloads the key
/// directory; a request holds the ring it started with.
#[derive(Debug)]
pub struct SharedKeyRing {
    current: std::sync::RwLock<std::sync::Arc<KeyRing>>,
}

impl SharedKeyRing {
    pub fn new(ring: KeyRing) -> SharedKeyRing {
        SharedKeyRing {
            current: std::sync::RwLock::new(std::sync::Arc::new(ring)),
        }
    }

    /// The ring now in use.
    pub fn current(&self) -> std::sync::Arc<KeyRing> {
        // A panic while holding the lock cannot leave a half-replaced Arc behind.
        match self.current.read() {
            Ok(ring) => std::sync::Arc::clone(&ring),
            Err(poisoned) => std::sync::Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `ring` in use; returns the one it replaces.
    pub fn replace(&self, ring: KeyRing) -> std::sync::Arc<KeyRing> {
        let ring = std::sync::Arc::new(ring);
        match self.current.write() {
            Ok(mut current) => std::mem::replace(&mut *current, ring),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), ring),
        }
    }
}

/// What a reload changed, for the log line: key ids added to and removed from the published
/// set, and the signing key before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub signing_before: String,
    pub signing_after: String,
    pub staged: Vec<String>,
}

impl KeyRingChange {
    pub fn between(before: &KeyRing, after: &KeyRing) -> KeyRingChange {
        let kids = |ring: &KeyRing| -> Vec<String> {
            ring.keys()
                .iter()
                .map(|k| k.libtrust_kid().to_owned())
                .collect()
        };
        let (old, new) = (kids(before), kids(after));
        KeyRingChange {
            added: new.iter().filter(|k| !old.contains(k)).cloned().collect(),
            removed: old.iter().filter(|k| !new.contains(k)).cloned().collect(),
            signing_before: before.signing_key().libtrust_kid().to_owned(),
            signing_after: after.signing_key().libtrust_kid().to_owned(),
            staged: after
                .staged_keys()
                .map(|k| k.libtrust_kid().to_owned())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.signing_before == self.signing_after
    }
}

impl std::fmt::Display for KeyRingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return write!(
                f,
                "signing keys unchanged (signing with {})",
                self.signing_after
            );
        }
        if self.signing_before == self.signing_after {
            write!(f, "still signing with {}", self.signing_after)?;
        } else {
            write!(
                f,
                "now signing with {} (was {})",
                self.signing_after, self.signing_before
            )?;
        }
        if !self.added.is_empty() {
            write!(f, "; published {}", self.added.join(", "))?;
        }
        if !self.removed.is_empty() {
            write!(f, "; retired {}", self.removed.join(", "))?;
        }
        if !self.staged.is_empty() {
            write!(
                f,
                "; staged (published, not signing) {}",
                self.staged.join(", ")
            )?;
        }
        Ok(())
    }
}

fn load_pair(key_path: &Path, cert_path: &Path) -> Result<SigningKey, KeyError> {
    let key_pem = fs::read_to_string(key_path).map_err(|e| KeyError::io("read", key_path, e))?;
    let cert_pem = match fs::read_to_string(cert_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::MissingCertificate {
                key_path: key_path.to_owned(),
                cert_path: cert_path.to_owned(),
            })
        }
        Err(e) => return Err(KeyError::io("read", cert_path, e)),
    };
    SigningKey::from_pem(&key_pem, &cert_pem)
}

/// Files written by [`generate_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The new private key, PKCS#8 PEM, mode 0600 on Unix.
    pub key_path: PathBuf,
    /// The new key's self-signed certificate, PEM.
    pub cert_path: PathBuf,
    /// The rewritten bundle of all certificates of the directory.
    pub bundle_path: PathBuf,
}

/// Generates a key and its self-signed certificate into `dir` (created if
/// missing), then rewrites `<dir>/bundle.crt` with the certificates of all
/// keys in `dir`.
///
/// Files are `<dir>/regauth-<UTC yyyymmddThhmmssZ>.key` (PKCS#8 PEM, mode 0600
/// on Unix) and `.crt`; an existing stem gets a `-NNN` suffix, so no file is
/// ever overwritten. The certificate has CN = `common_name` and is valid from
/// one day ago for ten years.
///
/// Rotation: generate a new key; the registry must reload the bundle (which
/// then holds both certificates) before the new key's tokens reach it.
///
/// # Errors
///
/// [`KeyError::Io`] when the directory or a file cannot be written,
/// [`KeyError::Generate`], or any error of [`KeyRing::load_dir`] while
/// rewriting the bundle (the new key stays in place then).
pub fn generate_key(
    dir: &Path,
    alg: KeyAlgorithm,
    common_name: &str,
) -> Result<GeneratedKey, KeyError> {
    generate_key_with(dir, alg, common_name, false)
}

/// [`generate_key`]; a `staged` key is published at once but signs only once activated
/// ([`activate_staged_keys`]).
///
/// # Errors
///
/// As [`generate_key`].
pub fn generate_key_with(
    dir: &Path,
    alg: KeyAlgorithm,
    common_name: &str,
    staged: bool,
) -> Result<GeneratedKey, KeyError> {
    create_dir(dir)?;
    let now = Utc::now();
    let pkcs8 = generate_pkcs8(alg)?;
    let cert_der = self_signed_certificate(&pkcs8, alg, common_name, now)?;
    // Validate the pair exactly as it will be loaded before writing anything.
    let key = SigningKey::from_pkcs8_der(&pkcs8, cert_der)?;

    let key_pem = pem_lf("PRIVATE KEY", pkcs8);
    let (key_path, cert_path) = write_new_pair(dir, now, &key_pem, key.certificate_pem(), staged)?;
    let bundle_path = write_certificate_bundle(dir)?;
    Ok(GeneratedKey {
        key_path,
        cert_path,
        bundle_path,
    })
}

/// Loads `dir`; when it holds no key yet (or does not exist), generates one
/// first and returns its files too.
///
/// # Errors
///
/// Any error of [`KeyRing::load_dir`] other than an empty or missing
/// directory (broken keys are reported, never replaced), or of [`generate_key`].
pub fn load_or_generate(
    dir: &Path,
    alg: KeyAlgorithm,
    common_name: &str,
) -> Result<(KeyRing, Option<GeneratedKey>), KeyError> {
    match KeyRing::load_dir(dir) {
        Ok(ring) => Ok((ring, None)),
        Err(KeyError::NoKeys) => generate_then_load(dir, alg, common_name),
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            generate_then_load(dir, alg, common_name)
        }
        Err(e) => Err(e),
    }
}

fn generate_then_load(
    dir: &Path,
    alg: KeyAlgorithm,
    common_name: &str,
) -> Result<(KeyRing, Option<GeneratedKey>), KeyError> {
    let generated = generate_key(dir, alg, common_name)?;
    Ok((KeyRing::load_dir(dir)?, Some(generated)))
}

/// Rewrites `<dir>/bundle.crt` and `<dir>/jwks.json` (each atomically, via a
/// temporary file and rename) with the certificates, respectively the public
/// JWKs, of all keys in `dir`; returns the bundle's path. Call after removing a
/// retired key.
///
/// # Errors
///
/// Any error of [`KeyRing::load_dir`]; [`KeyError::Io`] when writing fails.
pub fn write_certificate_bundle(dir: &Path) -> Result<PathBuf, KeyError> {
    let ring = KeyRing::load_dir(dir)?;
    let bundle_path = dir.join(BUNDLE_FILE_NAME);
    write_atomically(&bundle_path, ring.certificate_bundle_pem().as_bytes())?;
    write_jwks_file(dir, &ring)?;
    Ok(bundle_path)
}

/// Writes `<dir>/jwks.json` with the JWK set of `ring` unless it already holds exactly
/// that; returns its path.
///
/// # Errors
///
/// [`KeyError::Io`] when writing fails.
pub fn write_jwks_file(dir: &Path, ring: &KeyRing) -> Result<PathBuf, KeyError> {
    let path = dir.join(JWKS_FILE_NAME);
    let mut document = serde_json::to_vec_pretty(&ring.jwks())
        .map_err(|e| KeyError::InvalidKey(format!("cannot encode the JWK set: {e}")))?;
    document.push(b'\n');
    if fs::read(&path).is_ok_and(|existing| existing == document) {
        return Ok(path);
    }
    write_atomically(&path, &document)?;
    Ok(path)
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let name = path.file_name().map(OsString::from).unwrap_or_default();
    let mut tmp_name = OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp_path = path.with_file_name(tmp_name);
    // Public material: readable by a registry running as another user.
    let result = create_new_file(&tmp_path, contents, 0o644)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                fs::remove_file(&tmp_path)?;
                create_new_file(&tmp_path, contents, 0o644)
            } else {
                Err(e)
            }
        })
        .map_err(|e| KeyError::io("write", &tmp_path, e))
        .and_then(|()| set_mode(&tmp_path, 0o644))
        .and_then(|()| fs::rename(&tmp_path, path).map_err(|e| KeyError::io("write", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// The key directory (0755: a registry running as another user reads its public files) and
/// its `private/` (0700).
fn create_dir(dir: &Path) -> Result<(), KeyError> {
    for (path, mode) in [(dir.to_owned(), 0o755), (dir.join(PRIVATE_DIR_NAME), 0o700)] {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let existed = path.is_dir();
        builder
            .create(&path)
            .map_err(|e| KeyError::io("create directory", &path, e))?;
        if !existed {
            // The mode asked for, whatever the umask.
            set_mode(&path, mode)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| KeyError::io("change the mode of", path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Older versions created the key directory 0700, so a registry running as another user
/// could not read `bundle.crt`. Makes such a directory 0755 (the private keys in it are
/// 0600); returns whether it changed it.
///
/// # Errors
///
/// [`KeyError::Io`] when the mode cannot be read or set.
pub fn open_up_key_dir(dir: &Path) -> Result<bool, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = fs::metadata(dir).map_err(|e| KeyError::io("read", dir, e))?;
        if metadata.permissions().mode() & 0o777 == 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| KeyError::io("change the mode of", dir, e))?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes every staged marker: the newest key signs from the next load (`SIGHUP` or a
/// restart). Returns the stems activated.
///
/// # Errors
///
/// [`KeyError::Io`] when `private/` cannot be read or a marker removed.
pub fn activate_staged_keys(dir: &Path) -> Result<Vec<String>, KeyError> {
    let private = dir.join(PRIVATE_DIR_NAME);
    let entries = match fs::read_dir(&private) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(KeyError::io("read directory", &private, e)),
    };
    let mut activated = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| KeyError::io("read directory", &private, e))?
            .path();
        if path.extension().is_some_and(|ext| ext == STAGED_EXTENSION) {
            fs::remove_file(&path).map_err(|e| KeyError::io("remove", &path, e))?;
            if let Some(stem) = path.file_stem() {
                activated.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    activated.sort();
    Ok(activated)
}

fn generate_pkcs8(alg: KeyAlgorithm) -> Result<Vec<u8>, KeyError> {
    match alg {
        KeyAlgorithm::Es256 => {
            let rng = SystemRandom::new();
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map(|doc| doc.as_ref().to_vec())
                .map_err(|_| KeyError::Generate("ECDSA P-256 key generation failed".into()))
        }
        KeyAlgorithm::Rs256 => {
            use rsa::pkcs8::EncodePrivateKey as _;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, GENERATED_RSA_BITS)
                .map_err(|e| KeyError::Generate(format!("RSA key generation: {e}")))?;
            key.to_pkcs8_der()
                .map(|doc| doc.as_bytes().to_vec())
                .map_err(|e| KeyError::Generate(format!("RSA PKCS#8 encoding: {e}")))
        }
    }
}

fn self_signed_certificate(
    pkcs8: &[u8],
    alg: KeyAlgorithm,
    common_name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, KeyError> {
    let gen_err = |what: &str, e: rcgen::Error| KeyError::Generate(format!("{what}: {e}"));
    let sign_alg = match alg {
        KeyAlgorithm::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::Rs256 => &rcgen::PKCS_RSA_SHA256,
    };
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.into(), sign_alg)
        .map_err(|e| gen_err("certificate key", e))?;

    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| gen_err("certificate", e))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + unix_duration(now.timestamp().saturating_sub(CERT_BACKDATE_SECS))?;
    params.not_after = epoch + unix_duration(now.timestamp().saturating_add(CERT_LIFETIME_SECS))?;
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut serial)
        .map_err(|_| KeyError::Generate("system random number generator failed".into()))?;
    serial[0] &= 0x7f; // positive INTEGER
    serial[0] |= 0x40; // and no leading zero byte
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));

    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| gen_err("self-signed certificate", e))?;
    Ok(cert.der().to_vec())
}

/// Time since the Unix epoch, to offset rcgen's `time::OffsetDateTime` without
/// depending on the `time` crate directly.
fn unix_duration(unix_secs: i64) -> Result<std::time::Duration, KeyError> {
    u64::try_from(unix_secs)
        .map(std::time::Duration::from_secs)
        .map_err(|_| KeyError::Generate("certificate date before 1970".into()))
}

fn pem_lf(tag: &str, der: Vec<u8>) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Writes `<stem>.key` then `<stem>.crt` under the first free stem; neither
/// file may exist beforehand (`create_new`), so nothing is overwritten.
fn write_new_pair(
    dir: &Path,
    now: DateTime<Utc>,
    key_pem: &str,
    cert_pem: &str,
    staged: bool,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let private = dir.join(PRIVATE_DIR_NAME);
    let base = format!("{STEM_PREFIX}{}", now.format("%Y%m%dT%H%M%SZ"));
    for attempt in 0..1000u32 {
        let stem = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}-{attempt:03}")
        };
        let key_path = private.join(format!("{stem}.key"));
        let cert_path = dir.join(format!("{stem}.crt"));
        if cert_path.exists() || dir.join(format!("{stem}.key")).exists() {
            continue;
        }
        // The marker first: a staged key must never sign, not even for a moment.
        let marker = private.join(format!("{stem}.{STAGED_EXTENSION}"));
        if staged {
            create_new_file(&marker, b"", 0o600).map_err(|e| KeyError::io("create", &marker, e))?;
        }
        match create_new_file(&key_path, key_pem.as_bytes(), 0o600) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if staged {
                    let _ = fs::remove_file(&marker);
                }
                continue;
            }
            Err(e) => return Err(KeyError::io("create", &key_path, e)),
        }
        if let Err(e) = create_new_file(&cert_path, cert_pem.as_bytes(), 0o644)
            .map_err(|e| KeyError::io("create", &cert_path, e))
            .and_then(|()| set_mode(&cert_path, 0o644))
        {
            let _ = fs::remove_file(&key_path);
            if staged {
                let _ = fs::remove_file(&marker);
            }
            return Err(e);
        }
        return Ok((key_path, cert_path));
    }
    Err(KeyError::Generate(format!(
        "no free file name for {base}.key in {}",
        dir.display()
    )))
}

fn create_new_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{der, testdata as td, AccessEntry, RegistryClaims};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};

    fn claims() -> RegistryClaims {
        RegistryClaims::new(
            "regauth",
            "alice",
            "registry.test",
            vec![AccessEntry {
                resource_type: "repository".into(),
                name: "team/app".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
            Utc::now(),
            std::time::Duration::from_secs(300),
        )
        .expect("claims")
    }

    /// Verifies `token` against `key` with ring and returns (header, claims).
    fn verify(token: &str, key: &SigningKey) -> (serde_json::Value, serde_json::Value) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("sig b64");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("h b64")).expect("h");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("c b64")).expect("c");

        // Verify with the public key taken from the certificate, not from us.
        let cert = der::parse_certificate(key.certificate_der()).expect("cert");
        let public_key = cert.public_key.as_slice();
        match key.algorithm() {
            KeyAlgorithm::Es256 => {
                assert_eq!(sig.len(), 64, "raw r||s");
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
                    .verify(signed.as_bytes(), &sig)
                    .expect("ES256 signature verifies");
            }
            KeyAlgorithm::Rs256 => {
                assert_eq!(sig.len(), 256);
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
                    .verify(signed.as_bytes(), &sig)
                    .expect("RS256 signature verifies");
            }
        }
        // A modified payload must not verify.
        let tampered = format!("{}.{}x", parts[0], parts[1]);
        let alg: &dyn ring::signature::VerificationAlgorithm = match key.algorithm() {
            KeyAlgorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            KeyAlgorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
        };
        assert!(UnparsedPublicKey::new(alg, public_key)
            .verify(tampered.as_bytes(), &sig)
            .is_err());
        (header, claims)
    }

    fn check_generated(alg: KeyAlgorithm) {
        let dir = tempfile::tempdir().expect("tempdir");
        let keydir = dir.path().join("keys/nested");
        let generated = generate_key(&keydir, alg, "regauth-test").expect("generate");
        assert!(generated.key_path.starts_with(&keydir));
        let stem = generated
            .key_path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("stem");
        assert!(
            stem.starts_with("regauth-") && stem.ends_with('Z') && stem.len() == 24,
            "{stem}"
        );
        assert_eq!(
            generated.cert_path,
            keydir.join(stem).with_extension("crt"),
            "the certificate is public, beside the bundle"
        );
        assert_eq!(generated.bundle_path, keydir.join("bundle.crt"));
        let key_text = fs::read_to_string(&generated.key_path).expect("key");
        assert!(key_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&generated.key_path)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let ring = KeyRing::load_dir(&keydir).expect("load");
        assert_eq!(ring.keys().len(), 1);
        let key = ring.signing_key();
        assert_eq!(key.algorithm(), alg);
        assert_eq!(
            fs::read_to_string(&generated.bundle_path).expect("bundle"),
            key.certificate_pem()
        );

        let before = Utc::now().timestamp();
        let token = key.sign_jwt(&claims()).expect("sign");
        let (header, body) = verify(&token, key);
        assert_eq!(header["alg"], alg.to_string());
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], key.libtrust_kid());
        assert_eq!(header.as_object().map(|o| o.len()), Some(4), "{header}");
        let x5c = header["x5c"].as_array().expect("x5c array");
        assert_eq!(x5c.len(), 1);
        let x5c0 = x5c[0].as_str().expect("x5c string");
        assert!(!x5c0.contains('-') && !x5c0.contains('_'));
        assert_eq!(
            STANDARD.decode(x5c0).expect("std b64"),
            key.certificate_der()
        );

        assert!(body["aud"].is_string());
        assert_eq!(body["aud"], "registry.test");
        assert_eq!(body["access"][0]["type"], "repository");
        let (nbf, iat, exp) = (
            body["nbf"].as_i64().expect("nbf"),
            body["iat"].as_i64().expect("iat"),
            body["exp"].as_i64().expect("exp"),
        );
        assert!(nbf < iat && iat < exp, "{body}");
        assert!((iat - before).abs() <= 5);

        // jsonwebtoken reads our header too.
        let parsed = jsonwebtoken::decode_header(&token).expect("jsonwebtoken header");
        assert_eq!(parsed.kid.as_deref(), Some(key.libtrust_kid()));
        assert_eq!(parsed.x5c.as_ref().map(Vec::len), Some(1));

        check_certificate(key, "regauth-test");
    }

    /// Plain Rust checks of a generated certificate: dates, CN, self-signature.
    fn check_certificate(key: &SigningKey, cn: &str) {
        let now = Utc::now();
        let nb = key.certificate_not_before();
        let na = key.certificate_not_after();
        let day = chrono::Duration::days(1);
        assert!((now - day - nb).num_seconds().abs() < 60, "not_before {nb}");
        assert!(
            (na - (now + chrono::Duration::days(3653)))
                .num_seconds()
                .abs()
                < 60,
            "not_after {na}"
        );
        let der_bytes = key.certificate_der();
        assert!(der_bytes.windows(cn.len()).any(|w| w == cn.as_bytes()));
        let cert = der::parse_certificate(der_bytes).expect("cert");
        assert_eq!(cert.spki, key.public_key_spki_der());
        let alg: &dyn ring::signature::VerificationAlgorithm = match key.algorithm() {
            KeyAlgorithm::Es256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(alg, &cert.public_key)
            .verify(&cert.tbs, &cert.signature)
            .expect("certificate self-signature verifies");
        // The bundle must hold only CERTIFICATE blocks.
        let blocks = pem::parse_many(key.certificate_pem()).expect("pem");
        assert!(blocks.iter().all(|b| b.tag() == "CERTIFICATE"));
    }

    #[test]
    fn generate_es256_load_sign_verify() {
        check_generated(KeyAlgorithm::Es256);
    }

    #[test]
    fn generate_rs256_load_sign_verify() {
        check_generated(KeyAlgorithm::Rs256);
    }

    #[test]
    fn openssl_rsa_key_signs_verifiable_tokens() {
        let key = SigningKey::from_pem(td::RSA_PKCS1_KEY, td::RSA_CRT).expect("load");
        let token = key.sign_jwt(&claims()).expect("sign");
        let (header, _) = verify(&token, &key);
        assert_eq!(header["kid"], td::RSA_LIBTRUST_KID);
    }

    #[test]
    fn key_without_certificate_is_rejected_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.key"), td::EC_PKCS8_KEY).expect("write");
        fs::write(dir.path().join("a.crt"), td::EC_CRT).expect("write");
        fs::write(dir.path().join("b.key"), td::RSA_PKCS8_KEY).expect("write");
        let err = KeyRing::load_dir(dir.path()).expect_err("missing crt");
        assert!(matches!(err, KeyError::MissingCertificate { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("b.key") && msg.contains("b.crt"), "{msg}");
    }

    #[test]
    fn bad_pair_error_names_the_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("x.key"), td::EC_PKCS8_KEY).expect("write");
        fs::write(dir.path().join("x.crt"), td::RSA_CRT).expect("write");
        let msg = KeyRing::load_dir(dir.path())
            .expect_err("mismatch")
            .to_string();
        assert!(
            msg.contains("x.key") && msg.contains("does not match"),
            "{msg}"
        );
    }

    #[test]
    fn empty_directory_has_no_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("bundle.crt"), td::EC_CRT).expect("write");
        assert!(matches!(
            KeyRing::load_dir(dir.path()),
            Err(KeyError::NoKeys)
        ));
        assert!(matches!(
            KeyRing::from_keys(Vec::new()),
            Err(KeyError::NoKeys)
        ));
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        for stem in ["a", "b"] {
            fs::write(dir.path().join(format!("{stem}.key")), td::EC_PKCS8_KEY).expect("write");
            fs::write(dir.path().join(format!("{stem}.crt")), td::EC_CRT).expect("write");
        }
        let msg = KeyRing::load_dir(dir.path()).expect_err("dup").to_string();
        assert!(msg.contains("b.key") && msg.contains("duplicate"), "{msg}");
    }

    #[test]
    fn keyring_orders_by_stem_and_newest_signs() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A suffixed stem is newer than its base stem ('-' < '.' in file names
        // would order them the other way).
        fs::write(
            dir.path().join("regauth-20240101T000000Z-001.key"),
            td::RSA_PKCS1_KEY,
        )
        .expect("w");
        fs::write(
            dir.path().join("regauth-20240101T000000Z-001.crt"),
            td::RSA_CRT,
        )
        .expect("w");
        fs::write(
            dir.path().join("regauth-20240101T000000Z.key"),
            td::EC_PKCS8_KEY,
        )
        .expect("w");
        fs::write(dir.path().join("regauth-20240101T000000Z.crt"), td::EC_CRT).expect("w");
        let ring = KeyRing::load_dir(dir.path()).expect("load");
        let kids: Vec<&str> = ring.keys().iter().map(SigningKey::libtrust_kid).collect();
        assert_eq!(kids, [td::EC_LIBTRUST_KID, td::RSA_LIBTRUST_KID]);
        assert_eq!(ring.signing_key().libtrust_kid(), td::RSA_LIBTRUST_KID);
        let jwks = ring.jwks();
        let listed: Vec<&str> = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert_eq!(listed, [td::EC_THUMBPRINT, td::RSA_THUMBPRINT]);
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).expect("JwkSet");
        assert!(set.find(td::RSA_THUMBPRINT).is_some());
    }

    #[test]
    fn rotation_newest_generated_key_signs_and_both_are_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = generate_key(dir.path(), KeyAlgorithm::Es256, "regauth").expect("first");
        let second = generate_key(dir.path(), KeyAlgorithm::Es256, "regauth").expect("second");
        assert_ne!(first.key_path, second.key_path);
        assert!(first.key_path.exists() && second.key_path.exists());

        let ring = KeyRing::load_dir(dir.path()).expect("load");
        assert_eq!(ring.keys().len(), 2);
        let newest = ring.signing_key();
        let second_key = SigningKey::from_pem(
            &fs::read_to_string(&second.key_path).expect("r"),
            &fs::read_to_string(&second.cert_path).expect("r"),
        )
        .expect("second key");
        assert_eq!(newest.libtrust_kid(), second_key.libtrust_kid());

        let token = newest.sign_jwt(&claims()).expect("sign");
        let (header, _) = verify(&token, newest);
        assert_eq!(header["kid"], second_key.libtrust_kid());

        let jwks = ring.jwks();
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
        for key in ring.keys() {
            assert!(jwks["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kid"] == key.thumbprint()));
        }
        let bundle = fs::read_to_string(&second.bundle_path).expect("bundle");
        assert_eq!(bundle, ring.certificate_bundle_pem());
        let blocks = pem::parse_many(&bundle).expect("pem");
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|b| b.tag() == "CERTIFICATE"));
        let ders: Vec<&[u8]> = blocks.iter().map(pem::Pem::contents).collect();
        for key in ring.keys() {
            assert!(ders.contains(&key.certificate_der()));
        }
    }

    #[test]
    fn generate_never_overwrites_an_existing_stem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let stem = format!("regauth-{}", now.format("%Y%m%dT%H%M%SZ"));
        fs::write(dir.path().join(format!("{stem}.key")), td::EC_PKCS8_KEY).expect("w");
        fs::write(dir.path().join(format!("{stem}-001.crt")), td::EC_CRT).expect("w");
        fs::write(dir.path().join(format!("{stem}-002.key")), td::EC_PKCS8_KEY).expect("w");
        fs::create_dir(dir.path().join(PRIVATE_DIR_NAME)).expect("private");
        let (key_path, _) =
            write_new_pair(dir.path(), now, "KEY", "CERT", false).expect("write pair");
        assert_eq!(
            key_path.parent(),
            Some(dir.path().join(PRIVATE_DIR_NAME).as_path())
        );
        assert_eq!(
            key_path.file_name().and_then(|n| n.to_str()),
            Some(format!("{stem}-003.key").as_str())
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(format!("{stem}.key"))).expect("r"),
            td::EC_PKCS8_KEY
        );
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn public_material_is_readable_by_others_private_keys_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let generated = generate_key(&keys, KeyAlgorithm::Es256, "regauth").expect("generate");
        assert_eq!(mode_of(&keys), 0o755);
        assert_eq!(mode_of(&keys.join(PRIVATE_DIR_NAME)), 0o700);
        assert_eq!(
            generated.key_path.parent(),
            Some(keys.join(PRIVATE_DIR_NAME).as_path())
        );
        assert_eq!(mode_of(&generated.key_path), 0o600);
        assert_eq!(mode_of(&generated.cert_path), 0o644);
        assert_eq!(mode_of(&generated.bundle_path), 0o644);
        assert_eq!(mode_of(&keys.join(JWKS_FILE_NAME)), 0o644);

        // A directory an older version made 0700 is opened up once.
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(open_up_key_dir(&keys).expect("open up"));
        assert_eq!(mode_of(&keys), 0o755);
        assert!(!open_up_key_dir(&keys).expect("again"));
    }

    #[test]
    fn keys_of_the_older_layout_still_load_beside_new_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.key"), td::EC_PKCS8_KEY).expect("w");
        fs::write(dir.path().join("a.crt"), td::EC_CRT).expect("w");
        let generated = generate_key(dir.path(), KeyAlgorithm::Es256, "regauth").expect("gen");
        let ring = KeyRing::load_dir(dir.path()).expect("load");
        assert_eq!(ring.keys().len(), 2);
        let newest = SigningKey::from_pem(
            &fs::read_to_string(&generated.key_path).expect("r"),
            &fs::read_to_string(&generated.cert_path).expect("r"),
        )
        .expect("pair");
        assert_eq!(ring.signing_key().libtrust_kid(), newest.libtrust_kid());
    }

    #[test]
    fn a_staged_key_is_published_and_signs_only_once_activated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = generate_key(dir.path(), KeyAlgorithm::Es256, "regauth").expect("first");
        // Stems are by the second: the staged key must sort after the first.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let staged =
            generate_key_with(dir.path(), KeyAlgorithm::Es256, "regauth", true).expect("staged");
        let kid_of = |generated: &GeneratedKey| {
            SigningKey::from_pem(
                &fs::read_to_string(&generated.key_path).expect("r"),
                &fs::read_to_string(&generated.cert_path).expect("r"),
            )
            .expect("pair")
            .libtrust_kid()
            .to_owned()
        };
        let ring = KeyRing::load_dir(dir.path()).expect("load");
        assert_eq!(ring.keys().len(), 2, "both published");
        assert_eq!(
            fs::read_to_string(&staged.bundle_path)
                .expect("bundle")
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert_eq!(ring.signing_key().libtrust_kid(), kid_of(&first));
        assert_eq!(
            ring.staged_keys()
                .map(|k| k.libtrust_kid().to_owned())
                .collect::<Vec<_>>(),
            [kid_of(&staged)]
        );

        let activated = activate_staged_keys(dir.path()).expect("activate");
        assert_eq!(activated.len(), 1);
        let ring = KeyRing::load_dir(dir.path()).expect("reload");
        assert_eq!(ring.signing_key().libtrust_kid(), kid_of(&staged));
        assert_eq!(ring.staged_keys().count(), 0);
    }

    #[test]
    fn only_staged_keys_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate_key_with(dir.path(), KeyAlgorithm::Es256, "regauth", true)
            .expect_err("the bundle cannot be written without a signing key");
        let error = KeyRing::load_dir(dir.path()).expect_err("all staged");
        assert!(error.to_string().contains("keys activate"), "{error}");
    }

    #[test]
    fn load_or_generate_generates_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keydir = dir.path().join("absent");
        let (ring, generated) =
            load_or_generate(&keydir, KeyAlgorithm::Es256, "regauth").expect("first");
        let generated = generated.expect("generated on first call");
        assert!(generated.key_path.exists() && generated.bundle_path.exists());
        let (ring2, again) =
            load_or_generate(&keydir, KeyAlgorithm::Es256, "regauth").expect("second");
        assert!(again.is_none());
        assert_eq!(
            ring.signing_key().libtrust_kid(),
            ring2.signing_key().libtrust_kid()
        );
    }

    #[test]
    fn load_or_generate_reports_broken_keys_instead_of_generating() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.key"), td::ED25519_KEY).expect("w");
        fs::write(dir.path().join("a.crt"), td::EC_CRT).expect("w");
        let msg = load_or_generate(dir.path(), KeyAlgorithm::Es256, "regauth")
            .expect_err("ed25519")
            .to_string();
        assert!(msg.contains("a.key") && msg.contains("Ed25519"), "{msg}");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 2);
    }
}
