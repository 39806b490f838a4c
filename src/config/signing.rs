//! The registry tokens regauth signs: their issuer and lifetime, the signing keys, the JWT
//! header form, and the key sealing CI secrets (kept beside the signing keys).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, Seconds, SettingsError};
use crate::jwt::{KeyAlgorithm, TokenHeader};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// JWT `iss`; must equal the registry's `issuer`.
    issuer: String,
    /// JWT lifetime (10 s – 1 d).
    token_ttl: Seconds,
    /// Signing keys: `bundle.crt`, `jwks.json` and each key's certificate (readable by a
    /// registry running as another user), private keys in `private/` (0600); see [Key
    /// rotation](registry.md#key-rotation).
    keys_dir: PathBuf,
    /// Algorithm of keys regauth generates (`es256`, `rs256`).
    key_algorithm: String,
    /// JWT header form: `x5c` (registry 2.8 and 3.x with `rootcertbundle`) or `jwks` (registry
    /// 3.x with `jwks`; 2.8 refuses it); see [Registry 2.8 or
    /// 3.x](registry.md#registry-28-or-3x-the-token-header-token_header).
    token_header: String,
    /// AES-256 key (64 hex digits, mode 0600, in a 0700 folder) sealing `gitlab-deploy-token`
    /// secrets for CI; created on first start; must not be a `*.key` in `keys_dir`. Not set:
    /// `<keys_dir>/ci/ci-secret.aes256` (`<keys_dir>/ci-secret.aes256` where an older version
    /// made it).
    ci_secret_key_file: Option<PathBuf>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            issuer: "regauth".into(),
            token_ttl: Seconds(300),
            keys_dir: PathBuf::from("keys"),
            key_algorithm: "es256".into(),
            token_header: "x5c".into(),
            ci_secret_key_file: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SigningSettings {
    pub issuer: String,
    pub token_ttl: Duration,
    pub keys_dir: PathBuf,
    /// The algorithm of keys that regauth generates itself; loaded keys bring their own.
    pub key_algorithm: KeyAlgorithm,
    /// How tokens name their signing key: `x5c` (certificate chain; registry 2.8 and 3.x with
    /// `rootcertbundle`) or `jwks` (thumbprint `kid` only; registry 3.x with `jwks`).
    pub token_header: TokenHeader,
    /// The AES-256 key file that seals the secrets of `gitlab-deploy-token` tokens for the
    /// CI credentials endpoint; `None` means the default beside the keys (see
    /// [`SigningSettings::ci_secret_key_file`]). Generated on first start.
    pub ci_secret_key_file: Option<PathBuf>,
}

impl SigningSettings {
    /// The CI secret key file: the setting, else `<keys_dir>/ci-secret.aes256`.
    pub fn ci_secret_key_file(&self) -> PathBuf {
        self.ci_secret_key_file
            .clone()
            .unwrap_or_else(|| crate::ci_secret::default_key_file(&self.keys_dir))
    }
}

impl Raw {
    pub(super) fn validate(self) -> Result<SigningSettings, SettingsError> {
        if self.issuer.trim().is_empty() {
            return Err(invalid("issuer", "must not be empty"));
        }
        let token_ttl = self.token_ttl.within("token_ttl", 10, 86_400, " (1d)")?;
        let key_algorithm: KeyAlgorithm = self
            .key_algorithm
            .parse()
            .map_err(|_| invalid("key_algorithm", "must be es256 or rs256"))?;
        let token_header: TokenHeader = self.token_header.parse().map_err(|message: String| {
            invalid(
                "token_header",
                format!("{message} (x5c: registry 2.8/3.x with rootcertbundle; jwks: registry 3.x with jwks)"),
            )
        })?;
        let ci_secret_key_file = self
            .ci_secret_key_file
            .filter(|path| !path.as_os_str().is_empty());
        if let Some(path) = &ci_secret_key_file {
            let private = self.keys_dir.join(crate::jwt::PRIVATE_DIR_NAME);
            if path.extension().is_some_and(|ext| ext == "key")
                && (path.parent() == Some(self.keys_dir.as_path())
                    || path.parent() == Some(private.as_path()))
            {
                return Err(invalid(
                    "ci_secret_key_file",
                    format!(
                        "{} would be loaded as a signing key: every *.key in keys_dir and keys_dir/private is one; use another name or folder",
                        path.display()
                    ),
                ));
            }
        }
        Ok(SigningSettings {
            issuer: self.issuer,
            token_ttl,
            keys_dir: self.keys_dir,
            key_algorithm,
            token_header,
            ci_secret_key_file,
        })
    }
}
