//! The `regauth` command line. Command and flag names are a contract: scripts and docs rely
//! on them. Every command uses the same settings and database as `serve`.

mod backup;
mod notify;

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{LogFormat, Settings};
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::text::printable;
use crate::domain::{Namespace, NamespaceKind, Role, Visibility};
use crate::jwt::{self, KeyAlgorithm};
use crate::redact::redact_url_password;
use crate::service::caller::Caller;
use crate::service::deploy_tokens::{self, ListOptions};
use crate::service::namespaces::{self, NamespaceRef};
use crate::service::users;
use crate::startup::{Application, StartupError};
use crate::store::{self, SeaStore, Store};
use crate::views;

#[derive(Debug, Parser)]
#[command(
    name = "regauth",
    version,
    about = "Token server for container registries, built around deploy tokens"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the token server (migrates the database and creates a signing key when missing).
    Serve,
    /// Bring the database schema up to date.
    Migrate,
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Deploy tokens.
    #[command(subcommand, name = "deploy-token")]
    DeployToken(DeployTokenCommand),
    /// Users of the management API.
    #[command(subcommand)]
    User(UserCommand),
    /// Memberships: a user's role in a group (inherited by subgroups and projects) or project.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Write a consistent copy of the live SQLite database to FILE, without stopping the
    /// server (PostgreSQL: use pg_dump).
    Backup {
        file: std::path::PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Send the deploy-token expiry notices that are due (what `serve` does daily), once.
    #[command(name = "notify-expiring")]
    NotifyExpiring {
        /// Act as if it were this instant (RFC 3339), to simulate a day.
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        username: String,
        #[arg(long)]
        email: String,
        /// Instance administrator: may manage every token.
        #[arg(long)]
        admin: bool,
    },
    /// Block a user: their personal access tokens stop working at once.
    Block { username: String },
    /// Unblock a user.
    Unblock { username: String },
    /// Set the password for the web pages, read from standard input (one line; at least 8
    /// characters). The user's web sessions end.
    Password { username: String },
    /// Personal access tokens for the REST API.
    #[command(subcommand)]
    Token(UserTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserTokenCommand {
    /// Revoke a personal access token (by the id printed at creation) at once.
    Revoke { id: i64 },
    /// Create a personal access token; prints the secret (prefix glpat-) once.
    Create {
        username: String,
        #[arg(long)]
        name: String,
        /// `api` (read and write) and/or `read_api` (read only).
        #[arg(long, default_value = "api")]
        scopes: String,
        #[arg(long, value_name = "YYYY-MM-DD|RFC3339")]
        expires_at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Give a user a role in a group or project (changes it if they have one).
    Add {
        username: String,
        #[command(flatten)]
        namespace: Owner,
        #[arg(long, value_name = "guest|reporter|developer|maintainer|owner")]
        role: String,
    },
    /// Remove a user's membership of a group or project.
    Remove {
        username: String,
        #[command(flatten)]
        namespace: Owner,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rewrite bundle.crt from the certificates of the keys in the keys directory (after
    /// retiring an old key by deleting its .key/.crt pair).
    Bundle,
    /// Write a new private key and self-signed certificate into the keys directory; the
    /// newest key signs, older ones stay published until removed.
    Generate {
        #[arg(long, value_name = "es256|rs256")]
        alg: Option<String>,
    },
    /// Create the key that seals gitlab-deploy-token secrets for the CI credentials endpoint
    /// (ci_secret_key_file) if it does not exist; print its file and key id. `serve` creates
    /// it on first start too.
    CiSecret,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group; for a subgroup the parent group must exist (`acme/platform`).
    Create { path: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project in an existing group (`acme/web`).
    Create {
        path: String,
        /// Who may read it without a token: `public` projects can be pulled, cloned and
        /// downloaded from by anyone.
        #[arg(
            long,
            value_name = "private|internal|public",
            default_value = "private"
        )]
        visibility: String,
    },
    /// Change a project's settings.
    Update {
        path: String,
        #[arg(long, value_name = "private|internal|public")]
        visibility: String,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Owner {
    /// Full path of the project.
    #[arg(long)]
    project: Option<String>,
    /// Full path of the group.
    #[arg(long)]
    group: Option<String>,
}

impl Owner {
    async fn find(&self, store: &dyn Store) -> Result<Namespace, crate::error::Error> {
        let (kind, path) = self.kind_and_path();
        namespaces::find(store, kind, &NamespaceRef::Path(path.to_owned())).await
    }

    fn kind_and_path(&self) -> (NamespaceKind, &str) {
        match (&self.project, &self.group) {
            (Some(project), _) => (NamespaceKind::Project, project),
            (None, Some(group)) => (NamespaceKind::Group, group),
            // clap's group guarantees one of them; an empty path fails the lookup cleanly.
            (None, None) => (NamespaceKind::Project, ""),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DeployTokenCommand {
    /// Create a deploy token; prints its username and its secret (shown only this once).
    Create {
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        name: String,
        /// Comma-separated: read_repository, read_registry, write_registry,
        /// read_virtual_registry, write_virtual_registry, read_package_registry,
        /// write_package_registry.
        #[arg(long)]
        scopes: String,
        #[arg(long)]
        username: Option<String>,
        /// A date (YYYY-MM-DD, meaning 00:00 UTC) or an RFC 3339 date-time.
        #[arg(long, value_name = "YYYY-MM-DD|RFC3339")]
        expires_at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the deploy tokens of a project or group.
    List {
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a deploy token at once and for good.
    Revoke { id: i64 },
}

/// Runs a command; the error is one line for the user.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            store::connect_with(
                &settings.database_url,
                1,
                settings.database_acquire_timeout,
                true,
            )
            .await
            .map_err(|source| StartupError::database(&settings, source))?;
            println!(
                "database {} is up to date",
                redact_url_password(&settings.database_url)
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Bundle) => {
            let bundle = jwt::write_certificate_bundle(&settings.keys_dir)?;
            println!(
                "certificate bundle for the registry's rootcertbundle: {}",
                bundle.display()
            );
            println!(
                "JWK set for the registry's jwks: {}",
                settings.keys_dir.join(jwt::JWKS_FILE_NAME).display()
            );
            Ok(())
        }
        Command::Keys(KeysCommand::CiSecret) => {
            let path = settings.ci_secret_key_file();
            let (key, generated) = crate::ci_secret::CiSecretKey::load_or_generate(&path)?;
            println!(
                "{} CI secret key {} (id {})",
                if generated { "created" } else { "existing" },
                path.display(),
                key.id()
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Generate { alg }) => {
            let alg = match alg {
                Some(text) => text
                    .parse::<KeyAlgorithm>()
                    .map_err(|_| anyhow::anyhow!("--alg must be es256 or rs256, got {text:?}"))?,
                None => settings.key_algorithm,
            };
            let generated = jwt::generate_key(&settings.keys_dir, alg, &settings.issuer)?;
            println!("private key: {}", generated.key_path.display());
            println!("certificate: {}", generated.cert_path.display());
            println!(
                "certificate bundle for the registry's rootcertbundle: {}",
                generated.bundle_path.display()
            );
            Ok(())
        }
        Command::Group(GroupCommand::Create { path }) => {
            create_namespace(
                &settings,
                NamespaceKind::Group,
                &path,
                Visibility::default(),
            )
            .await
        }
        Command::Project(ProjectCommand::Create { path, visibility }) => {
            let visibility = Visibility::parse(&visibility)?;
            create_namespace(&settings, NamespaceKind::Project, &path, visibility).await
        }
        Command::Project(ProjectCommand::Update { path, visibility }) => {
            let visibility = Visibility::parse(&visibility)?;
            let store = open_store(&settings).await?;
            let project = namespaces::set_visibility(
                store.as_ref(),
                &Caller::operator(),
                &NamespaceRef::Path(path),
                visibility,
            )
            .await?;
            println!(
                "project {} is now {}",
                project.full_path.as_str(),
                project.visibility
            );
            Ok(())
        }
        Command::DeployToken(command) => deploy_token(&settings, command).await,
        Command::User(command) => user(&settings, command).await,
        Command::Member(command) => member(&settings, command).await,
        Command::Backup { file, force } => backup::backup(&settings, &file, force).await,
        Command::NotifyExpiring { now } => notify::notify_expiring(&settings, now.as_deref()).await,
    }
}

/// One line from standard input, without its line ending; the text is never echoed back.
fn read_password_line() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprintln!("password (the input is visible; pipe it in to hide it):");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(password)
}

async fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let now = Utc::now();
    match command {
        UserCommand::Create {
            username,
            email,
            admin,
        } => {
            let user = users::create(store.as_ref(), &username, &email, admin, now).await?;
            println!(
                "created user {} (id {}{})",
                printable(&user.username),
                user.id,
                if user.admin { ", admin" } else { "" }
            );
        }
        UserCommand::Block { username } => {
            users::set_blocked(store.as_ref(), &username, true).await?;
            println!(
                "blocked {}: their tokens no longer work",
                printable(&username)
            );
        }
        UserCommand::Unblock { username } => {
            users::set_blocked(store.as_ref(), &username, false).await?;
            println!("unblocked {}", printable(&username));
        }
        UserCommand::Password { username } => {
            let password = tokio::task::spawn_blocking(read_password_line).await??;
            let user = crate::service::web_sessions::set_password(
                store.as_ref(),
                &username,
                crate::service::web_sessions::Password::new(password),
                now,
            )
            .await?;
            println!("password set for {}", user.username);
        }
        UserCommand::Token(UserTokenCommand::Revoke { id }) => {
            users::revoke_personal_access_token(store.as_ref(), id).await?;
            println!("revoked personal access token {id}");
        }
        UserCommand::Token(UserTokenCommand::Create {
            username,
            name,
            scopes,
            expires_at,
            json,
        }) => {
            let scopes = users::parse_api_scopes(&scopes)?;
            let expires_at = expires_at.map(|text| parse_expires_at(&text)).transpose()?;
            let (token, secret) = users::create_personal_access_token(
                store.as_ref(),
                &username,
                &name,
                scopes,
                expires_at,
                now,
            )
            .await?;
            let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
            if json {
                println!(
                    "{}",
                    json!({
                        "id": token.id,
                        "name": token.name,
                        "username": username,
                        "token": secret.expose(),
                        "scopes": scopes,
                        "expires_at": token.expires_at.map(views::timestamp),
                    })
                );
            } else {
                println!("id:     {}", token.id);
                println!("token:  {}", secret.expose());
                println!("scopes: {}", scopes.join(","));
                println!("This is the only time the token is shown; store it now.");
            }
        }
    }
    Ok(())
}

async fn member(settings: &Settings, command: MemberCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        MemberCommand::Add {
            username,
            namespace,
            role,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "--role must be one of guest, reporter, developer, maintainer, owner; got {role:?}"
                )
            })?;
            let (kind, path) = namespace.kind_and_path();
            users::add_member(store.as_ref(), &username, kind, path, role, Utc::now()).await?;
            println!(
                "{} is now {role} of {kind} {}",
                printable(&username),
                printable(path)
            );
        }
        MemberCommand::Remove {
            username,
            namespace,
        } => {
            let (kind, path) = namespace.kind_and_path();
            users::remove_member(store.as_ref(), &username, kind, path).await?;
            println!(
                "removed {} from {kind} {}",
                printable(&username),
                printable(path)
            );
        }
    }
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let db = store::connect_with(
        &settings.database_url,
        2,
        settings.database_acquire_timeout,
        true,
    )
    .await
    .map_err(|source| StartupError::database(settings, source))?;
    Ok(Arc::new(SeaStore::new(db)))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings.clone()).await?;
    let signing = application.keys().signing_key();
    let bundle = settings.keys_dir.join(jwt::BUNDLE_FILE_NAME);
    // The registry reads its `jwks` from a file: keep one next to the bundle. A read-only key
    // directory (a mounted secret) is fine as long as the token form does not need it.
    let jwks_file = match jwt::write_jwks_file(&settings.keys_dir, application.keys()) {
        Ok(path) => path,
        Err(error) => {
            tracing::warn!(%error, "cannot write the JWK set file for the registry");
            settings.keys_dir.join(jwt::JWKS_FILE_NAME)
        }
    };
    let bound = std::net::SocketAddr::new(settings.listen.ip(), application.port());
    let in_memory = settings
        .database_url
        .starts_with(crate::store::MEMORY_URL_PREFIX);
    let database = redact_url_password(&settings.database_url);
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // The separate /metrics listener, when `metrics_listen` is set.
    let metrics = settings
        .metrics_listen
        .zip(application.metrics_port())
        .map(|(address, port)| std::net::SocketAddr::new(address.ip(), port));
    let registry_config = registry_config_block(
        &settings,
        &settings.public_url(application.port()),
        &bundle,
        &jwks_file,
    );
    // Registry 2.8 refuses every jwks-form token: say so however the logs are read.
    let jwks_warning = (settings.token_header == jwt::TokenHeader::Jwks).then_some(
        "token_header = \"jwks\": tokens carry no x5c certificate and a thumbprint kid; registry 2.8 (Debian's docker-registry) refuses every one of them, registry 3.x accepts them; use token_header = \"x5c\" for registry 2.8",
    );
    if let Some(warning) = jwks_warning {
        tracing::warn!("{warning}");
    }
    match settings.log_format {
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
                settings.keys_dir.display(),
                application.keys().keys().len()
            );
            println!("regauth listening on {bound} ({scheme}; database {database})");
            if let Some(metrics) = metrics {
                println!("metrics on {metrics} (/metrics; not served on {bound})");
            }
            if let Some(warning) = jwks_warning {
                println!("WARNING: {warning}");
            }
            if in_memory {
                println!("{MEMORY_NOTICE}");
            }
            println!("{registry_config}");
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
                keys_dir = %settings.keys_dir.display(),
                published = application.keys().keys().len(),
                "signing key loaded"
            );
            tracing::info!(
                address = %bound,
                scheme,
                database = %database,
                "regauth listening on {bound}"
            );
            if let Some(metrics) = metrics {
                tracing::info!(address = %metrics, "metrics on {metrics}");
            }
            if in_memory {
                tracing::warn!("{MEMORY_NOTICE}");
            }
            tracing::info!(registry_config = %registry_config, "registry configuration");
        }
    }
    application.run_until_stopped().await?;
    Ok(())
}

const MEMORY_NOTICE: &str = "the database is in memory: everything written while serving is \
    lost at exit, and the command line cannot reach it (use the API)";

/// The `auth.token` block a registry needs for the configured token header form, ready to
/// paste.
pub fn registry_config_block(
    settings: &Settings,
    public_url: &str,
    bundle: &std::path::Path,
    jwks_file: &std::path::Path,
) -> String {
    let absolute = |path: &std::path::Path| {
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string()
    };
    let head = format!(
        "auth:\n  token:\n    realm: {public_url}/jwt/auth\n    service: {}\n    issuer: {}\n",
        settings.registry_service, settings.issuer,
    );
    match settings.token_header {
        jwt::TokenHeader::X5c => format!(
            "# registry config.yml (CNCF distribution 2.8 or 3.x; token_header = \"x5c\"):\n{head}    rootcertbundle: {}\n# a registry 3.x trusting regauth by jwks alone needs token_header = \"jwks\"",
            absolute(bundle)
        ),
        jwt::TokenHeader::Jwks => format!(
            "# registry config.yml (CNCF distribution 3.x only; token_header = \"jwks\"):\n{head}    jwks: {}\n# the same document is served at {public_url}/.well-known/jwks.json; rootcertbundle: {} works too",
            absolute(jwks_file),
            absolute(bundle)
        ),
    }
}

async fn create_namespace(
    settings: &Settings,
    kind: NamespaceKind,
    path: &str,
    visibility: Visibility,
) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let namespace =
        namespaces::create_with_visibility(store.as_ref(), kind, path, visibility, Utc::now())
            .await?;
    match kind {
        NamespaceKind::Project => println!(
            "created {} {} (id {}, {})",
            kind,
            printable(namespace.full_path.as_str()),
            namespace.id,
            namespace.visibility
        ),
        NamespaceKind::Group => println!(
            "created {} {} (id {})",
            kind,
            printable(namespace.full_path.as_str()),
            namespace.id
        ),
    }
    Ok(())
}

async fn deploy_token(settings: &Settings, command: DeployTokenCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let now = Utc::now();
    let caller = Caller::operator();
    match command {
        DeployTokenCommand::Create {
            owner,
            name,
            scopes,
            username,
            expires_at,
            json,
        } => {
            let owner = owner.find(store.as_ref()).await?;
            let expires_at = expires_at.map(|text| parse_expires_at(&text)).transpose()?;
            let request = DeployTokenRequest {
                name,
                username,
                scopes: vec![scopes],
                expires_at,
            };
            let (ci_key, _) =
                crate::ci_secret::CiSecretKey::load_or_generate(&settings.ci_secret_key_file())?;
            let created = deploy_tokens::create(
                store.as_ref(),
                &caller,
                &owner,
                request,
                &settings.token_prefix,
                &ci_key,
                now,
            )
            .await?;
            for warning in &created.warnings {
                eprintln!("warning: {warning}");
            }
            if json {
                let value =
                    views::created_deploy_token(&created.token, created.secret.expose(), now);
                println!("{value}");
            } else {
                println!("id:       {}", created.token.id);
                println!("username: {}", printable(&created.token.username));
                println!("token:    {}", created.secret.expose());
                println!("scopes:   {}", created.token.scopes.names().join(","));
                println!("This is the only time the token is shown; store it now.");
            }
        }
        DeployTokenCommand::List { owner, json } => {
            let owner = owner.find(store.as_ref()).await?;
            let tokens =
                deploy_tokens::list(store.as_ref(), &caller, &owner, ListOptions::default(), now)
                    .await?
                    .items;
            if json {
                let list: Vec<_> = tokens.iter().map(|t| views::deploy_token(t, now)).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<6} {:<24} {:<32} {:<10} {:<20} SCOPES",
                    "ID", "NAME", "USERNAME", "STATE", "EXPIRES"
                );
                for token in &tokens {
                    let state = if token.revoked {
                        "revoked"
                    } else if token.is_expired(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    let expires = token
                        .expires_at
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "never".into());
                    println!(
                        "{:<6} {:<24} {:<32} {:<10} {:<20} {}",
                        token.id,
                        printable(&token.name),
                        printable(&token.username),
                        state,
                        expires,
                        token.scopes.names().join(",")
                    );
                }
            }
        }
        DeployTokenCommand::Revoke { id } => {
            let token = deploy_tokens::revoke(store.as_ref(), &caller, id, now).await?;
            println!(
                "revoked deploy token {} ({})",
                token.id,
                printable(&token.username)
            );
        }
    }
    Ok(())
}
