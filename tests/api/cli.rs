//! The `regauth` command line, run as a user would run it, against the same database the
//! server uses.

use std::process::{Command, Output};

use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use crate::helpers::{fresh_database_url, spawn_app_with};

pub struct Cli {
    pub dir: tempfile::TempDir,
    pub database_url: String,
}

/// The database goes with the command line (PostgreSQL; a SQLite file with its directory).
impl Drop for Cli {
    fn drop(&mut self) {
        if let Some(name) = crate::helpers::postgres_database_name(&self.database_url) {
            crate::helpers::drop_postgres_database(&name);
        }
    }
}

impl Cli {
    /// A migrated database, as an operator starts (`regauth migrate` or `serve`): other
    /// commands refuse a SQLite file that does not exist.
    pub async fn new() -> Cli {
        let cli = Cli::unmigrated().await;
        cli.ok(&["migrate"]);
        cli
    }

    /// A database URL naming nothing yet (SQLite) or an empty database (PostgreSQL).
    pub async fn unmigrated() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(dir.path()).await;
        Cli { dir, database_url }
    }

    /// A server on the same database and keys as this command line.
    pub async fn spawn_app(&self) -> crate::helpers::TestApp {
        let database_url = self.database_url.clone();
        let keys_dir = self.dir.path().join("keys");
        spawn_app_with(move |settings| {
            settings.database.url = database_url;
            settings.signing.keys_dir = keys_dir;
        })
        .await
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_regauth"))
            .args(args)
            .current_dir(self.dir.path())
            .env("REGAUTH_DATABASE_URL", &self.database_url)
            .env("REGAUTH_KEYS_DIR", self.dir.path().join("keys"))
            .env_remove("REGAUTH_CONFIG")
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "regauth {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command expected to fail; returns its one-line error.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(!output.status.success(), "regauth {args:?} should fail");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "one clear error line, got: {stderr}");
        lines[0].to_owned()
    }
}

#[tokio::test]
async fn a_token_created_on_the_command_line_is_listed_and_revoked() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]);
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let created: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "ci",
        "--scopes",
        "read_registry,write_registry",
        "--expires-at",
        "2099-01-01",
        "--json",
    ]))
    .unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "ci");
    assert_eq!(created["username"], format!("gitlab+deploy-token-{id}"));
    assert!(created["token"].as_str().unwrap().starts_with("gldt-"));
    assert_eq!(
        created["scopes"],
        serde_json::json!(["read_registry", "write_registry"])
    );
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00.000Z");

    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["deploy-token", "list", "--project", "acme/web", "--json"]))
            .unwrap();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["revoked"], false);
    assert!(
        listed[0].get("token").is_none(),
        "the secret is shown only once"
    );

    cli.ok(&["deploy-token", "revoke", &id.to_string()]);
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["deploy-token", "list", "--project", "acme/web", "--json"]))
            .unwrap();
    assert_eq!(listed[0]["revoked"], true);
}

#[tokio::test]
async fn the_plain_output_shows_username_and_secret_once() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    let out = cli.ok(&[
        "deploy-token",
        "create",
        "--group",
        "acme",
        "--name",
        "ci",
        "--scopes",
        "read_registry",
        "--username",
        "acme-ci",
    ]);
    assert!(out.contains("username: acme-ci"), "{out}");
    assert!(out.contains("token:    gldt-"), "{out}");
    let list = cli.ok(&["deploy-token", "list", "--group", "acme"]);
    assert!(
        list.contains("acme-ci") && !list.contains("gldt-"),
        "{list}"
    );
}

#[tokio::test]
async fn command_line_mistakes_get_one_clear_line_and_a_non_zero_exit() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    assert!(cli
        .fails(&["project", "create", "nope/web"])
        .contains("parent group nope"));
    assert!(cli.fails(&["project", "create", "web"]).contains("group"));
    assert!(cli
        .fails(&["group", "create", "acme"])
        .contains("already taken"));
    assert!(cli.fails(&["group", "create", "Acme/Bad"]).contains("path"));
    cli.ok(&["project", "create", "acme/web"]);
    let bad_scope = cli.fails(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "x",
        "--scopes",
        "read_regsitry",
    ]);
    assert!(
        bad_scope.contains("read_regsitry") && bad_scope.contains("read_registry"),
        "{bad_scope}"
    );
    let past = cli.fails(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "x",
        "--scopes",
        "read_registry",
        "--expires-at",
        "2001-01-01",
    ]);
    assert!(past.contains("expires_at"), "{past}");
    let garbage_date = cli.fails(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "x",
        "--scopes",
        "read_registry",
        "--expires-at",
        "tomorrow",
    ]);
    assert!(garbage_date.contains("tomorrow"), "{garbage_date}");
    assert!(cli
        .fails(&["deploy-token", "list", "--project", "acme/none"])
        .contains("not found"));
    assert!(cli
        .fails(&["deploy-token", "revoke", "999"])
        .contains("not found"));
    let virtual_on_project = cli.fails(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "x",
        "--scopes",
        "read_virtual_registry",
    ]);
    assert!(virtual_on_project.contains("group"), "{virtual_on_project}");
}

#[tokio::test]
async fn keys_generate_writes_a_key_a_certificate_and_the_bundle() {
    let cli = Cli::new().await;
    let out = cli.ok(&["keys", "generate", "--alg", "rs256"]);
    assert!(out.contains("bundle.crt"), "{out}");
    let keys = cli.dir.path().join("keys");
    let bundle = std::fs::read_to_string(keys.join("bundle.crt")).unwrap();
    assert!(bundle.contains("BEGIN CERTIFICATE") && !bundle.contains("PRIVATE KEY"));
    assert!(cli
        .fails(&["keys", "generate", "--alg", "ed25519"])
        .contains("es256"));

    // Rotation: a second key joins the bundle; retiring the first and rebundling drops it.
    let first_key = std::fs::read_dir(keys.join("private"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "key"))
        .unwrap();
    cli.ok(&["keys", "generate"]);
    let bundle = std::fs::read_to_string(keys.join("bundle.crt")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    std::fs::remove_file(&first_key).unwrap();
    std::fs::remove_file(
        keys.join(first_key.file_stem().unwrap())
            .with_extension("crt"),
    )
    .unwrap();
    cli.ok(&["keys", "bundle"]);
    let bundle = std::fs::read_to_string(keys.join("bundle.crt")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
}

#[tokio::test]
async fn a_token_made_by_the_cli_works_against_a_running_server() {
    let cli = Cli::new().await;
    let app = cli.spawn_app().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let created: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "ci",
        "--scopes",
        "read_registry",
        "--json",
    ]))
    .unwrap();
    let username = created["username"].as_str().unwrap();
    let secret = created["token"].as_str().unwrap();
    let response = app
        .get_token(
            Some((username, secret)),
            &[
                ("service", "container_registry"),
                ("scope", "repository:acme/web:pull"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    cli.ok(&["deploy-token", "revoke", &created["id"].to_string()]);
    let response = app
        .get_token(
            Some((username, secret)),
            &[("service", "container_registry")],
        )
        .await;
    assert_eq!(response.status(), 401, "revoked at {}", Utc::now());
}

#[tokio::test]
async fn users_members_and_personal_tokens_are_managed_on_the_command_line() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    cli.ok(&["user", "create", "alice", "--email", "alice@example.com"]);
    assert!(cli
        .fails(&["user", "create", "alice", "--email", "a@example.com"])
        .contains("already taken"));
    for bad in [
        "not-an-email",
        "@example.com",
        "bob@",
        "bob@exa mple.com",
        "bob@@example.com",
        "bob@example..com",
    ] {
        let error = cli.fails(&["user", "create", "bob", "--email", bad]);
        assert!(error.contains("email"), "{bad}: {error}");
    }
    cli.ok(&[
        "member",
        "add",
        "alice",
        "--project",
        "acme/web",
        "--role",
        "maintainer",
    ]);
    assert!(cli
        .fails(&["member", "add", "alice", "--group", "acme", "--role", "boss"])
        .contains("--role"));
    assert!(cli
        .fails(&["member", "add", "nobody", "--group", "acme", "--role", "owner"])
        .contains("User nobody not found"));
    let created: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "user", "token", "create", "alice", "--name", "laptop", "--scopes", "api", "--json",
    ]))
    .unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("glpat-"));
    assert!(cli
        .fails(&["user", "token", "create", "alice", "--name", "x", "--scopes", "sudo"])
        .contains("sudo"));

    let app = cli.spawn_app().await;
    let list = |app: &crate::helpers::TestApp| {
        app.api(
            reqwest::Method::GET,
            "/projects/acme%2Fweb/deploy_tokens",
            &secret,
        )
        .send()
    };
    assert_eq!(list(&app).await.unwrap().status(), 200);
    cli.ok(&["member", "remove", "alice", "--project", "acme/web"]);
    assert_eq!(list(&app).await.unwrap().status(), 404);
    cli.ok(&["user", "block", "alice"]);
    assert_eq!(list(&app).await.unwrap().status(), 401);
    cli.ok(&["user", "unblock", "alice"]);
    assert_eq!(
        list(&app).await.unwrap().status(),
        404,
        "unblocked: authenticated again"
    );
    cli.ok(&["user", "token", "revoke", &created["id"].to_string()]);
    assert_eq!(
        list(&app).await.unwrap().status(),
        401,
        "a revoked personal token gets 401"
    );
    assert!(cli
        .fails(&["user", "token", "revoke", "999"])
        .contains("not found"));
}

#[tokio::test]
async fn settings_come_from_regauth_toml_and_the_environment_overrides_them() {
    let cli = Cli::new().await;
    std::fs::write(
        cli.dir.path().join("regauth.toml"),
        "issuer = \"from-toml\"\nregistry_service = \"toml_registry\"\n",
    )
    .unwrap();
    let mut server = crate::server::ServerProcess::start(
        cli.dir.path(),
        &[
            ("REGAUTH_DATABASE_URL", &cli.database_url),
            ("REGAUTH_REGISTRY_SERVICE", "env_registry"),
        ],
    );
    server.terminate();
    server.wait(std::time::Duration::from_secs(30));
    let printed = std::fs::read_to_string(cli.dir.path().join("serve.stdout")).unwrap();
    assert!(printed.contains("issuer: from-toml"), "{printed}");
    assert!(
        printed.contains("service: env_registry"),
        "the environment wins:\n{printed}"
    );

    std::fs::write(cli.dir.path().join("regauth.toml"), "isuer = \"typo\"\n").unwrap();
    assert!(cli.fails(&["migrate"]).contains("isuer"));
    std::fs::write(cli.dir.path().join("regauth.toml"), "token_ttl = 5\n").unwrap();
    assert!(cli.fails(&["migrate"]).contains("token_ttl"));
}

#[tokio::test]
async fn serve_prints_the_registry_block_of_the_token_header_form() {
    let cli = Cli::new().await;
    let printed = |env: &[(&str, &str)]| {
        let mut all = vec![("REGAUTH_DATABASE_URL", cli.database_url.as_str())];
        all.extend_from_slice(env);
        let mut server = crate::server::ServerProcess::start(cli.dir.path(), &all);
        server.terminate();
        server.wait(std::time::Duration::from_secs(30));
        std::fs::read_to_string(cli.dir.path().join("serve.stdout")).unwrap()
    };

    let x5c = printed(&[]);
    assert!(x5c.contains("token_header = \"x5c\""), "{x5c}");
    assert!(x5c.contains("    rootcertbundle: /"), "{x5c}");
    assert!(!x5c.contains("    jwks: "), "{x5c}");
    assert!(!x5c.contains("WARNING"), "{x5c}");

    let jwks = printed(&[("REGAUTH_TOKEN_HEADER", "jwks")]);
    let jwks_file = cli.dir.path().join("keys/jwks.json");
    assert!(
        jwks.contains(&format!(
            "    jwks: {}",
            jwks_file.canonicalize().unwrap().display()
        )),
        "{jwks}"
    );
    assert!(!jwks.contains("    rootcertbundle: "), "{jwks}");
    assert!(
        jwks.contains("WARNING") && jwks.contains("registry 2.8"),
        "serve warns that 2.8 refuses jwks-form tokens:\n{jwks}"
    );
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&jwks_file).unwrap()).unwrap();
    assert_eq!(document["keys"].as_array().map(Vec::len), Some(1));

    let error = cli.run(&["migrate"]);
    assert!(error.status.success());
    let bad = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("migrate")
        .current_dir(cli.dir.path())
        .env("REGAUTH_DATABASE_URL", &cli.database_url)
        .env("REGAUTH_TOKEN_HEADER", "x5")
        .env_remove("REGAUTH_CONFIG")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("token_header") && stderr.contains("jwks"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_command_line_refuses_control_characters_and_escapes_what_it_prints() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]);
    cli.ok(&["group", "create", "acme"]);
    cli.ok(&["project", "create", "acme/web"]);
    let refused = cli.fails(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "\u{1b}[31mprod",
        "--scopes",
        "read_registry",
    ]);
    assert!(
        refused.contains("name must not contain control or invisible characters"),
        "{refused}"
    );
    assert!(!refused.contains('\u{1b}'), "{refused:?}");
    let reserved = cli.fails(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "ci",
        "--scopes",
        "read_registry",
        "--username",
        "gitlab+deploy-token-1",
    ]);
    assert!(reserved.contains("username"), "{reserved}");
    // A row written before names were checked (or by hand) is still printed safely.
    let app = cli.spawn_app().await;
    let token = app
        .create_token(
            regauth::domain::NamespaceKind::Project,
            "acme/web",
            &["read_registry"],
        )
        .await;
    let mut row: entity::deploy_token::ActiveModel =
        entity::deploy_token::Entity::find_by_id(token.token.id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .into();
    row.name = Set("\u{1b}[2J\u{1b}[31mowned\nID fake row".into());
    row.update(&app.db).await.unwrap();
    let listed = cli.ok(&["deploy-token", "list", "--project", "acme/web"]);
    assert!(!listed.contains('\u{1b}'), "{listed:?}");
    assert!(
        listed.contains("\\u{1b}[2J\\u{1b}[31mowned\\u{a}ID fake row"),
        "{listed}"
    );
    assert_eq!(listed.lines().count(), 2, "a header and one row: {listed}");
    // --json stays JSON: serde escapes control characters itself.
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["deploy-token", "list", "--project", "acme/web", "--json"]))
            .unwrap();
    assert_eq!(json[0]["name"], "\u{1b}[2J\u{1b}[31mowned\nID fake row");
}

#[tokio::test]
async fn any_setting_can_come_from_a_file_named_by_its_file_variable() {
    let cli = Cli::new().await;
    let secret = cli.dir.path().join("database_url.secret");
    std::fs::write(&secret, format!("{}\n", cli.database_url)).unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
        command
            .args(["group", "create", "acme"])
            .current_dir(cli.dir.path())
            .env_remove("REGAUTH_CONFIG")
            .env_remove("REGAUTH_DATABASE_URL")
            .env("REGAUTH_DATABASE_URL_FILE", &secret);
        for (key, value) in extra {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    let output = run(&[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The group went into the database the file names.
    assert!(cli
        .fails(&["group", "create", "acme"])
        .contains("already taken"));

    let output = run(&[("REGAUTH_DATABASE_URL", &cli.database_url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("not both"),
        "{stderr}"
    );
    let output = run(&[("REGAUTH_TOKEN_TTL_FILE", "/nonexistent/ttl")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("REGAUTH_TOKEN_TTL_FILE")
            && stderr.contains("No such file"),
        "{stderr}"
    );
}
