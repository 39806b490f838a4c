//! `regauth serve`: builds the application, says where it listens and what to paste into
//! the registry's configuration (stdout in text mode, log events in JSON mode), and serves
//! until stopped.

use crate::config::{LogFormat, Settings};
use crate::jwt;
use crate::redact::redact_url_password;
use crate::startup::Application;

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings.clone()).await?;
    let keys = application.keys();
    let signing = keys.signing_key();
    let bundle = settings.signing.keys_dir.join(jwt::BUNDLE_FILE_NAME);
    // The registry reads its `jwks` from a file: keep one next to the bundle. A read-only key
    // directory (a mounted secret) is fine as long as the token form does not need it.
    if let Err(error) = jwt::write_jwks_file(&settings.signing.keys_dir, &keys) {
        tracing::warn!(%error, "cannot write the JWK set file for the registry");
    }
    let bound = std::net::SocketAddr::new(settings.server.listen.ip(), application.port());
    let in_memory = settings
        .database
        .url
        .starts_with(crate::config::MEMORY_URL_PREFIX);
    let database = redact_url_password(&settings.database.url);
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // The separate /metrics listener, when `metrics_listen` is set.
    let metrics = settings
        .server
        .metrics_listen
        .zip(application.metrics_port())
        .map(|(address, port)| std::net::SocketAddr::new(address.ip(), port));
    let registry_config =
        registry_config_block(&settings, &settings.public_url(application.port()), &bundle);
    let notifications_config =
        notifications_config_block(&settings, &settings.public_url(application.port()));
    // Registry 2.8 refuses every jwks-form token: say so however the logs are read.
    let jwks_warning = (settings.signing.token_header == jwt::TokenHeader::Jwks).then_some(
        "token_header = \"jwks\": tokens carry no x5c certificate and a thumbprint kid; registry 2.8 (Debian's docker-registry) refuses every one of them, registry 3.x accepts them; use token_header = \"x5c\" for registry 2.8",
    );
    if let Some(warning) = jwks_warning {
        tracing::warn!("{warning}");
    }
    let realm_warning = settings.unreachable_realm_warning(application.port());
    if let Some(warning) = &realm_warning {
        tracing::warn!("{warning}");
    }
    match settings.server.log_format {
        // A person reads stdout: the banner and the block to paste into the registry config.
        LogFormat::Text => {
            if let Some(generated) = application.generated_key() {
                println!(
                    "created a signing key: {} (certificate {})",
                    generated.key_path.display(),
                    generated.cert_path.display()
                );
            }
            println!(
                "signing with {} key {} from {} ({} key(s) published)",
                signing.algorithm(),
                signing.libtrust_kid(),
                settings.signing.keys_dir.display(),
                keys.keys().len()
            );
            println!(
                "regauth listening on {bound} ({scheme}; database {database}; version {})",
                crate::build_info::LONG_VERSION
            );
            if let Some(metrics) = metrics {
                println!("metrics on {metrics} (/metrics; not served on {bound})");
            }
            if let Some(warning) = jwks_warning {
                println!("WARNING: {warning}");
            }
            if let Some(warning) = &realm_warning {
                println!("WARNING: {warning}");
            }
            if in_memory {
                println!("{MEMORY_NOTICE}");
            }
            println!("{registry_config}");
            println!("{notifications_config}");
        }
        // A log collector reads the streams: the same facts as JSON events, nothing on stdout.
        LogFormat::Json => {
            if let Some(generated) = application.generated_key() {
                tracing::info!(
                    key = %generated.key_path.display(),
                    certificate = %generated.cert_path.display(),
                    "created a signing key"
                );
            }
            tracing::info!(
                algorithm = %signing.algorithm(),
                kid = signing.libtrust_kid(),
                keys_dir = %settings.signing.keys_dir.display(),
                published = keys.keys().len(),
                "signing key loaded"
            );
            tracing::info!(
                address = %bound,
                scheme,
                database = %database,
                version = crate::build_info::VERSION,
                commit = crate::build_info::COMMIT,
                "regauth listening on {bound}"
            );
            if let Some(metrics) = metrics {
                tracing::info!(address = %metrics, "metrics on {metrics}");
            }
            if in_memory {
                tracing::warn!("{MEMORY_NOTICE}");
            }
            tracing::info!(registry_config = %registry_config, "registry configuration");
            tracing::info!(notifications_config = %notifications_config, "registry notifications configuration");
        }
    }
    application.run_until_stopped().await?;
    Ok(())
}

const MEMORY_NOTICE: &str = "the database is in memory: everything written while serving is \
    lost at exit, and the command line cannot reach it (use the API)";

/// The `auth` block a registry needs for the configured token header form, ready to paste:
/// the one `regauth registry-config` writes, with a comment on which registries take it.
pub fn registry_config_block(
    settings: &Settings,
    public_url: &str,
    bundle: &std::path::Path,
) -> String {
    let absolute = |path: &std::path::Path| {
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string()
    };
    let keys_dir = std::fs::canonicalize(&settings.signing.keys_dir)
        .unwrap_or_else(|_| settings.signing.keys_dir.clone());
    let block = super::registry_config::auth_block(settings, public_url, &keys_dir);
    match settings.signing.token_header {
        jwt::TokenHeader::X5c => format!(
            "# registry config.yml (CNCF distribution 2.8 or 3.x; token_header = \"x5c\"; the whole file: regauth registry-config):\n{block}# a registry 3.x trusting regauth by jwks alone needs token_header = \"jwks\""
        ),
        jwt::TokenHeader::Jwks => format!(
            "# registry config.yml (CNCF distribution 3.x only; token_header = \"jwks\"; the whole file: regauth registry-config --registry 3):\n{block}# the same document is served at {public_url}/.well-known/jwks.json; rootcertbundle: {} works too",
            absolute(bundle)
        ),
    }
}

/// The registry's `notifications` block that sends regauth every push, pull and delete
/// (`/api/v4/container_registry_event/events`, GitLab's path). The secret itself is never
/// printed: the `Authorization` value is the `registry_events_secret` setting, whole.
pub fn notifications_config_block(settings: &Settings, public_url: &str) -> String {
    if settings.registry.events_secret.is_none() {
        return "# registry notifications (what each token pushed and pulled) are off: set \
                registry_events_secret to receive them"
            .to_owned();
    }
    format!(
        "# registry config.yml, beside auth (what each token pushed and pulled):\n\
         notifications:\n  endpoints:\n    - name: regauth\n      \
         url: {public_url}/api/v4/container_registry_event/events\n      \
         headers:\n        Authorization: [\"<the value of registry_events_secret>\"]\n      \
         timeout: 2s\n      threshold: 5\n      backoff: 1s"
    )
}
