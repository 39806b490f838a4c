//! `regauth registry-config`: a complete, startable CNCF distribution `config.yml` trusting
//! this regauth (2.8, as Debian's `docker-registry`, or 3.x), and the `auth` block that
//! `serve` prints, from one function so the two cannot differ. regauth receives no registry
//! notifications, so the file has no `notifications` block.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::config::Settings;
use crate::jwt::{self, TokenHeader};

/// `--registry`: the distribution release the file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistryRelease {
    /// CNCF distribution 2.8 (Debian's `docker-registry`, the `registry:2` image).
    #[value(name = "2.8")]
    V2_8,
    /// CNCF distribution 3.x (the `registry:3` image).
    #[value(name = "3")]
    V3,
}

/// Where the registry listens and keeps its data, and where it sees regauth's keys.
#[derive(Debug, Clone)]
pub struct RegistryLayout {
    pub release: RegistryRelease,
    pub listen: SocketAddr,
    pub storage: PathBuf,
    /// regauth's `keys_dir` as the registry sees it (a container mounts it elsewhere).
    pub keys_dir: PathBuf,
}

/// Double-quoted YAML where a value needs it (JSON strings are valid YAML).
fn yaml_value(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:+@".contains(c))
        && !text.starts_with(['-', ':', '@']);
    if plain {
        text.to_owned()
    } else {
        serde_json::Value::from(text).to_string()
    }
}

/// The `auth:` block: the realm, service and issuer of these settings, and the key material
/// the token header form needs (`rootcertbundle` for x5c, `jwks` for jwks) under `keys_dir`.
pub fn auth_block(settings: &Settings, public_url: &str, keys_dir: &Path) -> String {
    let key_line = match settings.signing.token_header {
        TokenHeader::X5c => format!(
            "    rootcertbundle: {}\n",
            yaml_value(&keys_dir.join(jwt::BUNDLE_FILE_NAME).display().to_string())
        ),
        TokenHeader::Jwks => format!(
            "    jwks: {}\n",
            yaml_value(&keys_dir.join(jwt::JWKS_FILE_NAME).display().to_string())
        ),
    };
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n{key_line}",
        yaml_value(&format!("{public_url}/jwt/auth")),
        yaml_value(&settings.registry.service),
        yaml_value(&settings.signing.issuer),
    )
}

/// The whole `config.yml`; an error when the release cannot verify these settings' tokens.
pub fn registry_config(
    settings: &Settings,
    public_url: &str,
    layout: &RegistryLayout,
) -> anyhow::Result<String> {
    let (name, start) = match layout.release {
        RegistryRelease::V2_8 => (
            "CNCF distribution 2.8",
            "docker-registry serve config.yml (Debian) or the registry:2 image",
        ),
        RegistryRelease::V3 => (
            "CNCF distribution 3.x",
            "registry serve config.yml or the registry:3 image",
        ),
    };
    if layout.release == RegistryRelease::V2_8 && settings.signing.token_header == TokenHeader::Jwks
    {
        anyhow::bail!(
            "registry 2.8 refuses tokens of token_header = \"jwks\" (no x5c certificate); use --registry 3, or token_header = \"x5c\" for registry 2.8"
        );
    }
    Ok(format!(
        "# {name} config.yml with regauth as its token realm (regauth registry-config).\n\
         # Start: {start}.\n\
         version: 0.1\n\
         log:\n  level: info\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {listen}\n\
         {auth}",
        storage = yaml_value(&layout.storage.display().to_string()),
        listen = layout.listen,
        auth = auth_block(settings, public_url, &layout.keys_dir),
    ))
}

/// What the command prints to stdout, and a note for stderr when regauth has not written
/// the key material yet.
pub fn run(
    settings: &Settings,
    release: RegistryRelease,
    listen: SocketAddr,
    storage: Option<PathBuf>,
    keys_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let storage = match storage {
        Some(path) => absolute(&path),
        None => absolute(Path::new("registry-data")),
    };
    let own_keys = absolute(&settings.signing.keys_dir);
    let layout = RegistryLayout {
        release,
        listen,
        storage,
        keys_dir: keys_dir.unwrap_or_else(|| own_keys.clone()),
    };
    let public_url = settings.public_url(settings.server.listen.port());
    let config = registry_config(settings, &public_url, &layout)?;
    print!("{config}");
    let needed = match settings.signing.token_header {
        TokenHeader::X5c => jwt::BUNDLE_FILE_NAME,
        TokenHeader::Jwks => jwt::JWKS_FILE_NAME,
    };
    if !own_keys.join(needed).exists() {
        eprintln!(
            "note: {} does not exist yet; `regauth serve` writes it on its first start",
            own_keys.join(needed).display()
        );
    }
    if let Some(warning) = settings.unreachable_realm_warning(settings.server.listen.port()) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(release: RegistryRelease) -> RegistryLayout {
        RegistryLayout {
            release,
            listen: "127.0.0.1:5000".parse().unwrap(),
            storage: PathBuf::from("/var/lib/registry"),
            keys_dir: PathBuf::from("/keys"),
        }
    }

    #[test]
    fn the_file_has_every_section_and_the_auth_block_serve_prints() {
        let settings = Settings::defaults();
        let url = "http://127.0.0.1:5001";
        let config = registry_config(&settings, url, &layout(RegistryRelease::V2_8)).unwrap();
        for line in [
            "version: 0.1\n",
            "    rootdirectory: /var/lib/registry\n",
            "  addr: 127.0.0.1:5000\n",
            "    realm: http://127.0.0.1:5001/jwt/auth\n",
            "    service: container_registry\n",
            "    issuer: regauth\n",
            "    rootcertbundle: /keys/bundle.crt\n",
        ] {
            assert!(config.contains(line), "{line:?} in\n{config}");
        }
        assert!(config.ends_with(&auth_block(&settings, url, Path::new("/keys"))));
    }

    #[test]
    fn jwks_tokens_need_registry_3_and_name_the_jwks_file() {
        let mut settings = Settings::defaults();
        settings.signing.token_header = TokenHeader::Jwks;
        let url = "https://auth.example.com";
        let error = registry_config(&settings, url, &layout(RegistryRelease::V2_8))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--registry 3"), "{error}");
        let config = registry_config(&settings, url, &layout(RegistryRelease::V3)).unwrap();
        assert!(config.contains("    jwks: /keys/jwks.json\n"), "{config}");
        assert!(!config.contains("rootcertbundle"), "{config}");
        assert!(config.contains("distribution 3.x"), "{config}");
    }

    #[test]
    fn values_that_yaml_would_misread_are_quoted() {
        assert_eq!(yaml_value("/var/lib/registry"), "/var/lib/registry");
        assert_eq!(yaml_value("a path/with space"), "\"a path/with space\"");
        assert_eq!(yaml_value("#comment"), "\"#comment\"");
        assert_eq!(yaml_value(""), "\"\"");
        assert_eq!(yaml_value("-x"), "\"-x\"");
    }
}
