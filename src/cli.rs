//! The `regauth` command line. Command and flag names are a contract: scripts and docs rely
//! on them. Every command uses the same settings and database as `serve`.

mod notify;

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{redact_url_password, LogFormat, Settings};
use crate::domain::deploy_token::DeployTokenRequest;
use crate::domain::expiry::parse_expires_at;
use crate::domain::{Namespace, NamespaceKind, Role};
use crate::jwt::{self, KeyAlgorithm};
use crate::service::caller::Caller;
use crate::service::deploy_tokens::{self, ListOptions};
use crate::service::namespaces::{self, NamespaceRef};
use crate::service::users;
use crate::startup::Application;
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
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group; for a subgroup the parent group must exist (`acme/platform`).
    Create { path: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project in an existing group (`acme/web`).
    Create { path: String },
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
            store::connect(&settings.database_url, 1, true).await?;
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
            create_namespace(&settings, NamespaceKind::Group, &path).await
        }
        Command::Project(ProjectCommand::Create { path }) => {
            create_namespace(&settings, NamespaceKind::Project, &path).await
        }
        Command::DeployToken(command) => deploy_token(&settings, command).await,
        Command::User(command) => user(&settings, command).await,
        Command::Member(command) => member(&settings, command).await,
        Command::NotifyExpiring { now } => notify::notify_expiring(&settings, now.as_deref()).await,
    }
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
                user.username,
                user.id,
                if user.admin { ", admin" } else { "" }
            );
        }
        UserCommand::Block { username } => {
            users::set_blocked(store.as_ref(), &username, true).await?;
            println!("blocked {username}: their tokens no longer work");
        }
        UserCommand::Unblock { username } => {
            users::set_blocked(store.as_ref(), &username, false).await?;
            println!("unblocked {username}");
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
            println!("{username} is now {role} of {kind} {path}");
        }
        MemberCommand::Remove {
            username,
            namespace,
        } => {
            let (kind, path) = namespace.kind_and_path();
            users::remove_member(store.as_ref(), &username, kind, path).await?;
            println!("removed {username} from {kind} {path}");
        }
    }
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let db = store::connect(&settings.database_url, 2, true).await?;
    Ok(Arc::new(SeaStore::new(db)))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings.clone()).await?;
    let signing = application.keys().signing_key();
    let bundle = settings.keys_dir.join(jwt::BUNDLE_FILE_NAME);
    let bound = std::net::SocketAddr::new(settings.listen.ip(), application.port());
    let in_memory = settings
        .database_url
        .starts_with(crate::store::MEMORY_URL_PREFIX);
    let database = redact_url_password(&settings.database_url);
    let registry_config =
        registry_config_block(&settings, &settings.public_url(application.port()), &bundle);
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
            println!("regauth listening on {bound} (database {database})");
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
                database = %database,
                "regauth listening on {bound}"
            );
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

/// The `auth.token` block a registry needs, ready to paste.
pub fn registry_config_block(
    settings: &Settings,
    public_url: &str,
    bundle: &std::path::Path,
) -> String {
    let bundle = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    format!(
        "# registry config.yml (CNCF distribution):\nauth:\n  token:\n    realm: {}/jwt/auth\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n# registry 3.x may use instead: jwks: <file with {}/.well-known/jwks.json>",
        public_url,
        settings.registry_service,
        settings.issuer,
        bundle.display(),
        public_url
    )
}

async fn create_namespace(
    settings: &Settings,
    kind: NamespaceKind,
    path: &str,
) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let namespace = namespaces::create(store.as_ref(), kind, path, Utc::now()).await?;
    println!(
        "created {} {} (id {})",
        kind,
        namespace.full_path.as_str(),
        namespace.id
    );
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
            let created = deploy_tokens::create(
                store.as_ref(),
                &caller,
                &owner,
                request,
                &settings.token_prefix,
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
                println!("username: {}", created.token.username);
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
                        token.name,
                        token.username,
                        state,
                        expires,
                        token.scopes.names().join(",")
                    );
                }
            }
        }
        DeployTokenCommand::Revoke { id } => {
            let token = deploy_tokens::revoke(store.as_ref(), &caller, id, now).await?;
            println!("revoked deploy token {} ({})", token.id, token.username);
        }
    }
    Ok(())
}
