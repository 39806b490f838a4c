//! The `regauth` command line. Command and flag names are a contract: scripts and docs rely
//! on them. Every command uses the same settings and database as `serve`.
//!
//! This module holds the clap definitions and the dispatch; each command group has its file
//! (`serve.rs`, `migrate.rs`, `registry_config.rs`, `keys.rs`, `namespace.rs` for groups and
//! projects, `deploy_token.rs`, `user.rs`, `member.rs`, `backup.rs`, `notify.rs`), and
//! `store.rs` opens the database for them. Handlers call the same services as the API, acting as the operator.

mod backup;
mod credential_provider;
mod deploy_token;
mod keys;
mod member;
mod migrate;
mod namespace;
mod notify;
mod registry_config;
mod serve;
mod store;
mod token;
mod token_lifecycle;
mod user;
mod workload_identity;

use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Settings;
use crate::domain::{Namespace, NamespaceKind, Role, Visibility};
use crate::jwt::KeyAlgorithm;
use crate::service::namespaces::{self, NamespaceRef};
use crate::store::Store;

pub use registry_config::RegistryRelease;

#[derive(Debug, Parser)]
#[command(
    name = "regauth",
    version = crate::build_info::LONG_VERSION,
    about = "Token server for container registries, built around deploy tokens"
)]
pub struct Cli {
    /// Say which database the command uses, and log what it does.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// How much to log: `serve` and `migrate` report their work; other commands print
    /// their result and log only warnings, unless `-v`.
    pub fn verbosity(&self) -> crate::telemetry::Verbosity {
        use crate::telemetry::Verbosity;
        match self.command {
            Command::Serve | Command::Migrate => Verbosity::Informative,
            _ if self.verbose => Verbosity::Informative,
            _ => Verbosity::Quiet,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revokes every regauth token found in standard input (one finding per line: a token
    /// alone, or a scanner's output such as gitleaks' or detect-secrets' report, in which the
    /// tokens are found by their format); prints what it revoked. Anything that is not one
    /// of this instance's tokens is skipped and counted.
    #[command(name = "revoke-leaked")]
    RevokeLeaked {
        /// Where the tokens were found (a URL or a path), kept in the audit trail.
        #[arg(long)]
        location: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the token server (migrates the database and creates a signing key when missing).
    Serve,
    /// Bring the database schema up to date.
    Migrate,
    /// Print a complete, startable registry config.yml trusting this regauth (its `auth`
    /// block is the one `serve` prints).
    #[command(name = "registry-config")]
    RegistryConfig {
        /// The CNCF distribution release the file is for.
        #[arg(long, value_enum, default_value = "2.8", value_name = "2.8|3")]
        registry: RegistryRelease,
        /// The registry's `http.addr`.
        #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDRESS:PORT")]
        listen: std::net::SocketAddr,
        /// The registry's storage directory; `./registry-data` when not given.
        #[arg(long, value_name = "DIR")]
        storage: Option<std::path::PathBuf>,
        /// Where the registry reads regauth's keys directory (a container mounts it
        /// elsewhere); keys_dir when not given.
        #[arg(long, value_name = "DIR")]
        keys_dir: Option<std::path::PathBuf>,
    },
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
    /// Any token by its value (leaked ones).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Workload identity policies: which OIDC tokens of a trusted issuer act for a project
    /// or group (keyless CI and pods).
    #[command(subcommand, name = "workload-identity")]
    WorkloadIdentity(WorkloadIdentityCommand),
    /// The kubelet's image credential provider (credentialprovider.kubelet.k8s.io/v1, with
    /// the pod's service-account token as in KEP-4412): reads a CredentialProviderRequest on
    /// stdin, writes a CredentialProviderResponse on stdout. Touches no database.
    #[command(name = "credential-provider")]
    CredentialProvider {
        /// `pass-through`: the service-account token is the password (never cached);
        /// `exchange`: trade it at regauth's /oauth/token for a short-lived credential.
        #[arg(long, value_enum, ignore_case = true, default_value = "pass-through")]
        mode: CredentialProviderMode,
        /// regauth's base URL (exchange mode).
        #[arg(long)]
        url: Option<url::Url>,
        /// The service-account annotation naming the policy username
        /// (`tokenAttributes.requiredServiceAccountAnnotationKeys`).
        #[arg(long, default_value = "regauth/identity")]
        username_annotation: String,
        /// The policy username when the service account has no such annotation.
        #[arg(long)]
        username: Option<String>,
    },
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
    /// List the users.
    List {
        #[arg(long)]
        json: bool,
    },
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
    /// Mail the user (once per token and network) when a deploy token they manage acts at
    /// the registry from a new address: `on` or `off`.
    NewAddressMail {
        username: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserTokenCommand {
    /// Revoke a personal access token (by the id printed at creation) at once.
    Revoke { id: i64 },
    /// Give a personal access token a new secret (same id); prints it once. The previous
    /// secret keeps working for the grace period.
    Rotate(RotateArgs),
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
        /// Usable only from these addresses: CIDRs, comma-separated or repeated.
        #[arg(long = "allow-from", value_name = "CIDR[,CIDR]")]
        allow_from: Vec<String>,
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
        #[arg(
            long,
            value_parser = one_of::<Role>(Role::ALL.map(Role::as_str)),
            ignore_case = true,
            value_name = "guest|reporter|developer|maintainer|owner"
        )]
        role: Role,
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
    /// Rewrite bundle.crt and jwks.json from the keys in the keys directory (after retiring
    /// an old key by deleting its private/<name>.key and <name>.crt).
    Bundle,
    /// Write a new private key (private/, 0600) and its self-signed certificate into the
    /// keys directory; the newest active key signs, older ones stay published until removed.
    Generate {
        /// The signing algorithm; `key_algorithm` when not given.
        #[arg(
            long,
            value_parser = one_of::<KeyAlgorithm>(KeyAlgorithm::ALL.map(KeyAlgorithm::as_str)),
            ignore_case = true,
            value_name = "es256|rs256"
        )]
        alg: Option<KeyAlgorithm>,
        /// Publish the key without signing with it yet (staged rotation): activate it with
        /// `keys activate` once the registries have loaded the new bundle.
        #[arg(long)]
        staged: bool,
    },
    /// Let staged keys sign: the newest key signs after the server's next SIGHUP.
    Activate,
    /// Create the key that seals gitlab-deploy-token secrets for the CI credentials endpoint
    /// (ci_secret_key_file) if it does not exist; print its file and key id. `serve` creates
    /// it on first start too.
    CiSecret,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List the groups.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a group; for a subgroup the parent group must exist (`acme/platform`).
    Create { path: String },
    /// Change a group's address allow-list and its limits on new tokens created in it and
    /// below it (at least one of the options).
    Update {
        path: String,
        /// Every token below the group (deploy tokens, workload identities) is usable only
        /// from these blocks too; `--allow-from ""` clears the list.
        #[arg(long = "allow-from", value_name = "CIDR[,CIDR]")]
        allow_from: Vec<String>,
        /// The longest a new deploy token may live, in days; `0` removes the group's own
        /// maximum. At most the instance's (and an enclosing group's) maximum.
        #[arg(long, value_name = "DAYS")]
        max_token_lifetime_days: Option<u32>,
        /// New tokens must have an expiry date.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
        require_token_expiry: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// List the projects.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a project in an existing group (`acme/web`).
    Create {
        path: String,
        /// Who may read it without a token: `public` projects can be pulled, cloned and
        /// downloaded from by anyone.
        #[arg(
            long,
            value_parser = one_of::<Visibility>(Visibility::ALL.map(Visibility::as_str)),
            ignore_case = true,
            value_name = "private|internal|public",
            default_value = "private"
        )]
        visibility: Visibility,
    },
    /// Change a project's settings.
    Update {
        path: String,
        #[arg(
            long,
            value_parser = one_of::<Visibility>(Visibility::ALL.map(Visibility::as_str)),
            ignore_case = true,
            value_name = "private|internal|public"
        )]
        visibility: Visibility,
    },
}

/// What `deploy-token rotate` and `user token rotate` take.
#[derive(Debug, Args)]
pub struct RotateArgs {
    pub id: i64,
    /// A new expiry, within the lifetime policy: a date (YYYY-MM-DD, meaning 00:00 UTC) or an
    /// RFC 3339 date-time. Not given: the expiry stays.
    #[arg(long, value_name = "YYYY-MM-DD|RFC3339")]
    pub expires_at: Option<String>,
    /// Seconds the previous secret keeps working, at most `token_rotation_grace` (its value
    /// when not given).
    #[arg(long, value_name = "SECONDS")]
    pub grace_period: Option<i64>,
    #[arg(long)]
    pub json: bool,
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
    /// The project or group named, looked up through the namespaces service.
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
        /// Usable only from these addresses: CIDRs (IPv4, IPv6), comma-separated or repeated.
        #[arg(long = "allow-from", value_name = "CIDR[,CIDR]")]
        allow_from: Vec<String>,
        /// Reaches only the repositories below the owner matching these globs (relative to
        /// the owner's path; `*` one segment, `**` any), comma-separated or repeated.
        #[arg(long = "repositories", value_name = "GLOB[,GLOB]")]
        repositories: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Replace a deploy token's address allow-list (`--allow-from ""` clears it).
    Update {
        id: i64,
        /// CIDRs (IPv4, IPv6), comma-separated or repeated; "" for anywhere.
        #[arg(long = "allow-from", value_name = "CIDR[,CIDR]", required = true)]
        allow_from: Vec<String>,
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
    /// Give a deploy token a new secret (same id, username and scopes); prints it once. The
    /// previous secret keeps working for the grace period.
    Rotate(RotateArgs),
    /// What a deploy token did at the registry (the registry's notifications), latest first.
    Events {
        id: i64,
        /// 1-based.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        page: u64,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
        per_page: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkloadIdentityCommand {
    /// Create a policy; prints its username (the `docker login -u` of the jobs it admits).
    Create {
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        name: String,
        /// A trusted issuer (`[[oidc_issuers]]`), exactly as its tokens' `iss`.
        #[arg(long)]
        issuer: String,
        /// What the tokens' `aud` must be (or contain).
        #[arg(long)]
        audience: String,
        /// CLAIM=VALUE, repeatable; the same claim repeated means any of its values; a
        /// dotted claim reaches nested claims (kubernetes.io.namespace=ci).
        #[arg(long = "condition", value_name = "CLAIM=VALUE")]
        conditions: Vec<String>,
        /// Comma-separated, as for deploy tokens.
        #[arg(long)]
        scopes: String,
        /// Seconds (at most 3600; default 900).
        #[arg(long)]
        max_ttl: Option<u32>,
        /// Logins only from these addresses: CIDRs, comma-separated or repeated.
        #[arg(long = "allow-from", value_name = "CIDR[,CIDR]")]
        allow_from: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the policies of a project or group.
    List {
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        json: bool,
    },
    /// Delete a policy: its logins and exchanged credentials end at once.
    Delete {
        #[command(flatten)]
        owner: Owner,
        id: i64,
    },
}

/// `regauth credential-provider --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredentialProviderMode {
    PassThrough,
    Exchange,
}

/// The value parser of a flag whose values are a domain enum's `names`: clap lists them in
/// the help and in the error for any other value (honouring the flag's `ignore_case`), as it
/// does for a `ValueEnum`, and the enum's own `FromStr` makes the value, so the CLI keeps no
/// copy of the enum.
fn one_of<T>(names: impl IntoIterator<Item = &'static str>) -> impl TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
{
    // `names` were checked first: the enum refuses none of them (strum's error, without
    // `std`, has no text to pass on).
    PossibleValuesParser::new(names).try_map(|name| {
        name.parse::<T>()
            .map_err(|_| format!("{name:?} is not one of the accepted values"))
    })
}

/// Runs a command; the error is one line for the user.
/// A `--json` answer: one line, the shape the API answers with (`views`).
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    if cli.verbose
        && !matches!(
            cli.command,
            Command::Keys(_) | Command::RegistryConfig { .. }
        )
    {
        eprintln!("{}", store::describe_database(&settings.database.url));
    }
    match cli.command {
        Command::Serve => serve::serve(settings).await,
        Command::Migrate => migrate::migrate(&settings).await,
        Command::RegistryConfig {
            registry,
            listen,
            storage,
            keys_dir,
        } => registry_config::run(&settings, registry, listen, storage, keys_dir),
        Command::Keys(command) => keys::run(&settings, command),
        Command::Group(command) => namespace::group(&settings, command).await,
        Command::Project(command) => namespace::project(&settings, command).await,
        Command::DeployToken(command) => deploy_token::run(&settings, command).await,
        Command::WorkloadIdentity(command) => workload_identity::run(&settings, command).await,
        Command::Token(TokenCommand::RevokeLeaked { location }) => {
            token::revoke_leaked(&settings, location).await
        }
        Command::CredentialProvider {
            mode,
            url,
            username_annotation,
            username,
        } => {
            credential_provider::run(credential_provider::Options {
                mode,
                url,
                username_annotation,
                username,
            })
            .await
        }
        Command::User(command) => user::run(&settings, command).await,
        Command::Member(command) => member::run(&settings, command).await,
        Command::Backup { file, force } => backup::backup(&settings, &file, force).await,
        Command::NotifyExpiring { now } => notify::notify_expiring(&settings, now.as_deref()).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("regauth").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn the_clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn closed_flag_values_parse_in_any_case_into_the_domain_types() {
        match parse(&["project", "create", "acme/web", "--visibility", "PUBLIC"]) {
            Ok(Command::Project(ProjectCommand::Create { visibility, .. })) => {
                assert_eq!(visibility, Visibility::Public)
            }
            other => panic!("{other:?}"),
        }
        match parse(&["project", "create", "acme/web"]) {
            Ok(Command::Project(ProjectCommand::Create { visibility, .. })) => {
                assert_eq!(visibility, Visibility::Private)
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "member",
            "add",
            "alice",
            "--group",
            "acme",
            "--role",
            "Maintainer",
        ]) {
            Ok(Command::Member(MemberCommand::Add { role, .. })) => {
                assert_eq!(role, Role::Maintainer)
            }
            other => panic!("{other:?}"),
        }
        match parse(&["keys", "generate", "--alg", "RS256"]) {
            Ok(Command::Keys(KeysCommand::Generate { alg: Some(alg), .. })) => {
                assert_eq!(alg, KeyAlgorithm::Rs256)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_domain_value_is_accepted_by_its_flag_as_itself() {
        for role in Role::ALL {
            match parse(&[
                "member",
                "add",
                "alice",
                "--group",
                "acme",
                "--role",
                role.as_str(),
            ]) {
                Ok(Command::Member(MemberCommand::Add { role: parsed, .. })) => {
                    assert_eq!(parsed, role)
                }
                other => panic!("{other:?}"),
            }
        }
        for visibility in Visibility::ALL {
            match parse(&[
                "project",
                "update",
                "acme/web",
                "--visibility",
                visibility.as_str(),
            ]) {
                Ok(Command::Project(ProjectCommand::Update {
                    visibility: parsed, ..
                })) => assert_eq!(parsed, visibility),
                other => panic!("{other:?}"),
            }
        }
        for alg in KeyAlgorithm::ALL {
            match parse(&["keys", "generate", "--alg", alg.as_str()]) {
                Ok(Command::Keys(KeysCommand::Generate { alg: parsed, .. })) => {
                    assert_eq!(parsed, Some(alg))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_value_outside_the_set_names_the_flag_and_the_accepted_values() {
        let error = parse(&["keys", "generate", "--alg", "ed25519"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ed25519") && error.contains("es256") && error.contains("rs256"),
            "{error}"
        );
    }
}
