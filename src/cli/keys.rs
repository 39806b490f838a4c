//! `regauth keys generate|activate|bundle|ci-secret`: the signing keys and the CI secret key, as
//! files in the keys directory.

use super::KeysCommand;
use crate::config::Settings;
use crate::jwt;

pub fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Bundle => {
            let bundle = jwt::write_certificate_bundle(&settings.signing.keys_dir)?;
            println!(
                "certificate bundle for the registry's rootcertbundle: {}",
                bundle.display()
            );
            println!(
                "JWK set for the registry's jwks: {}",
                settings
                    .signing
                    .keys_dir
                    .join(jwt::JWKS_FILE_NAME)
                    .display()
            );
            Ok(())
        }
        KeysCommand::CiSecret => {
            let path = settings.signing.ci_secret_key_file();
            let (key, generated) = crate::ci_secret::CiSecretKey::load_or_generate(&path)?;
            println!(
                "{} CI secret key {} (id {})",
                if generated { "created" } else { "existing" },
                path.display(),
                key.id()
            );
            Ok(())
        }
        KeysCommand::Generate { alg, staged } => {
            let alg = alg.unwrap_or(settings.signing.key_algorithm);
            let generated = jwt::generate_key_with(
                &settings.signing.keys_dir,
                alg,
                &settings.signing.issuer,
                staged,
            )?;
            println!("private key: {}", generated.key_path.display());
            println!("certificate: {}", generated.cert_path.display());
            println!(
                "certificate bundle for the registry's rootcertbundle: {}",
                generated.bundle_path.display()
            );
            if staged {
                println!(
                    "staged: published, not signing. Once every registry has loaded the new bundle (or jwks), run `regauth keys activate`, then send SIGHUP to the server."
                );
            } else {
                println!("a running server signs with it after SIGHUP (or a restart)");
            }
            Ok(())
        }
        KeysCommand::Activate => {
            let activated = jwt::activate_staged_keys(&settings.signing.keys_dir)?;
            if activated.is_empty() {
                println!("no staged key in {}", settings.signing.keys_dir.display());
            } else {
                let ring = jwt::KeyRing::load_dir(&settings.signing.keys_dir)?;
                println!(
                    "activated {}; the server signs with {} after SIGHUP (or a restart)",
                    activated.join(", "),
                    ring.signing_key().libtrust_kid()
                );
            }
            Ok(())
        }
    }
}
