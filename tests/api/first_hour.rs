//! What a newcomer meets on the command line in the first hour: a command run from the wrong
//! directory refuses instead of creating an empty database, `-v` says which database, the
//! list commands, quiet success, the audit actor from the process's uid, and a password
//! prompt that does not echo.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::EntityTrait;

use crate::cli::Cli;

fn regauth_in(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
    command
        .current_dir(dir)
        .env_remove("REGAUTH_DATABASE_URL")
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_KEYS_DIR", dir.join("keys"));
    command
}

#[test]
fn a_command_run_where_there_is_no_database_refuses_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["group", "create", "acme"][..],
        &["group", "list"],
        &["deploy-token", "list", "--group", "acme"],
        &["user", "list"],
        &["backup", "copy.db"],
    ] {
        let output = regauth_in(dir.path()).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let expected = dir.path().join("regauth.db");
        assert!(
            stderr.contains(&expected.display().to_string())
                && stderr.contains("does not exist")
                && stderr.contains("REGAUTH_DATABASE_URL"),
            "{args:?}: {stderr}"
        );
        assert!(!expected.exists(), "{args:?} created the database file");
    }
    // `migrate` creates it; then the same command works there.
    let migrated = regauth_in(dir.path()).arg("migrate").output().unwrap();
    assert!(migrated.status.success());
    let created = regauth_in(dir.path())
        .args(["group", "create", "acme"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
}

#[tokio::test]
async fn verbose_names_the_database_and_success_is_otherwise_silent_on_stderr() {
    let cli = Cli::new().await;
    let quiet = cli.run(&["group", "create", "acme"]);
    assert!(quiet.status.success());
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "a successful command prints no log lines"
    );
    let verbose = cli.run(&["-v", "group", "list"]);
    assert!(verbose.status.success());
    let stderr = String::from_utf8(verbose.stderr).unwrap();
    let named = match cli.database_url.strip_prefix("sqlite://") {
        Some(rest) => rest.split('?').next().unwrap().to_owned(),
        None => cli.database_url.rsplit('/').next().unwrap().to_owned(),
    };
    assert!(
        stderr.starts_with("database: ") && stderr.contains(&named),
        "{stderr}"
    );
}

#[tokio::test]
async fn groups_projects_and_users_are_listed() {
    let cli = Cli::new().await;
    for args in [
        &["group", "create", "acme"][..],
        &["group", "create", "acme/platform"],
        &["project", "create", "acme/web", "--visibility", "public"],
        &["project", "create", "acme/platform/api"],
        &["user", "create", "zoe", "--email", "zoe@example.com"],
        &[
            "user",
            "create",
            "alice",
            "--email",
            "alice@example.com",
            "--admin",
        ],
    ] {
        cli.ok(args);
    }
    cli.ok(&["user", "block", "zoe"]);

    let groups = cli.ok(&["group", "list"]);
    let group_paths: Vec<&str> = groups
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    assert_eq!(group_paths, ["acme", "acme/platform"], "{groups}");

    let projects: serde_json::Value =
        serde_json::from_str(&cli.ok(&["project", "list", "--json"])).unwrap();
    let projects: Vec<(&str, &str)> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path_with_namespace"].as_str().unwrap(),
                p["visibility"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        projects,
        [("acme/platform/api", "private"), ("acme/web", "public")]
    );

    let users = cli.ok(&["user", "list"]);
    let rows: Vec<Vec<&str>> = users
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["alice", "active", "admin", "alice@example.com"],
            vec!["zoe", "blocked", "user", "zoe@example.com"],
        ],
        "{users}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["user", "list", "--json"])).unwrap();
    assert_eq!(json[1]["state"], "blocked");
}

/// The name `id -un` gives for this process's user, or `uid-N` without one.
fn os_user_name() -> String {
    let output = Command::new("id").arg("-un").output().unwrap();
    if output.status.success() {
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    } else {
        let uid = Command::new("id").arg("-u").output().unwrap();
        format!("uid-{}", String::from_utf8(uid.stdout).unwrap().trim())
    }
}

#[tokio::test]
async fn command_line_actions_are_audited_as_the_os_user_of_the_process() {
    let cli = Cli::new().await;
    cli.ok(&["group", "create", "acme"]);
    let output = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args([
            "deploy-token",
            "create",
            "--group",
            "acme",
            "--name",
            "ci",
            "--scopes",
            "read_registry",
        ])
        .current_dir(cli.dir.path())
        .env("REGAUTH_DATABASE_URL", &cli.database_url)
        .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"))
        // As in a container: no $USER, or one that lies.
        .env_remove("LOGNAME")
        .env("USER", "somebody-else")
        .output()
        .unwrap();
    assert!(output.status.success());
    let db = sea_orm::Database::connect(&cli.database_url).await.unwrap();
    let events = entity::audit_event::Entity::find().all(&db).await.unwrap();
    assert!(!events.is_empty());
    let expected = format!("cli:{}", os_user_name());
    for event in events {
        assert_eq!(event.actor_kind, "cli");
        assert_eq!(event.actor, expected);
    }
}

/// A pseudo-terminal for a child's stdin, stdout and stderr; what the child and the terminal
/// write arrives on the returned channel.
struct Terminal {
    master: std::fs::File,
    output: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn spawn(mut command: Command) -> (Terminal, std::process::Child) {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = command.spawn().unwrap();
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (sender, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let terminal = Terminal {
            master,
            output,
            seen: String::new(),
        };
        (terminal, child)
    }

    /// Waits until the screen shows `text`; returns all shown so far.
    fn wait_for(&mut self, text: &str) -> &str {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("waited for {text:?}; the terminal shows {:?}", self.seen),
            }
        }
        &self.seen
    }

    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }
}

#[tokio::test]
async fn the_password_prompt_does_not_echo_and_asks_twice() {
    let cli = Cli::new().await;
    cli.ok(&["user", "create", "alice", "--email", "alice@example.com"]);
    let command = |cli: &Cli| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
        command
            .args(["user", "password", "alice"])
            .current_dir(cli.dir.path())
            .env("REGAUTH_DATABASE_URL", &cli.database_url)
            .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"));
        command
    };

    // Two different entries: refused, nothing set.
    let (mut terminal, mut child) = Terminal::spawn(command(&cli));
    terminal.wait_for("new password: ");
    terminal.type_line("first-secret-1");
    terminal.wait_for("again: ");
    terminal.type_line("other-secret-2");
    let shown = terminal.wait_for("differ").to_owned();
    assert!(!child.wait().unwrap().success());
    assert!(
        !shown.contains("first-secret-1") && !shown.contains("other-secret-2"),
        "the terminal showed a password: {shown:?}"
    );

    let (mut terminal, mut child) = Terminal::spawn(command(&cli));
    terminal.wait_for("new password: ");
    terminal.type_line("correct-horse-9");
    terminal.wait_for("again: ");
    terminal.type_line("correct-horse-9");
    let shown = terminal.wait_for("password set for alice").to_owned();
    assert!(child.wait().unwrap().success());
    assert!(
        !shown.contains("correct-horse-9"),
        "the terminal showed the password: {shown:?}"
    );

    // Not a terminal: one line from standard input, as scripts give it.
    let mut piped = command(&cli)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    piped
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped-secret-77\n")
        .unwrap();
    let output = piped.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).is_empty());
}

#[tokio::test]
async fn misspelled_settings_and_a_missing_config_file_are_errors_with_a_suggestion() {
    let cli = Cli::new().await;
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
        command
            .args(["group", "list"])
            .current_dir(cli.dir.path())
            .env_remove("REGAUTH_CONFIG")
            .env("REGAUTH_DATABASE_URL", &cli.database_url)
            .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"));
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{env:?} must be refused");
        String::from_utf8(output.stderr).unwrap()
    };

    let error = run(&[("REGAUTH_PUBLIC_ULR", "https://auth.example.com")]);
    assert!(
        error.contains("unknown setting REGAUTH_PUBLIC_ULR in the environment")
            && error.contains("did you mean REGAUTH_PUBLIC_URL?"),
        "{error}"
    );
    let error = run(&[("REGAUTH_TOKEN_TTL_FIEL", "/run/secrets/ttl")]);
    assert!(
        error.contains("did you mean REGAUTH_TOKEN_TTL_FILE?"),
        "{error}"
    );

    let missing = cli.dir.path().join("nope.toml");
    let error = run(&[("REGAUTH_CONFIG", missing.to_str().unwrap())]);
    assert!(
        error.contains("REGAUTH_CONFIG") && error.contains(&missing.display().to_string()),
        "{error}"
    );

    let file = cli.dir.path().join("regauth.toml");
    std::fs::write(&file, "listn = \"0.0.0.0:5001\"\n").unwrap();
    let error = run(&[]);
    assert!(
        error.contains("unknown setting listn")
            && error.contains("regauth.toml")
            && error.contains("did you mean listen?"),
        "{error}"
    );
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn serving_on_all_addresses_without_public_url_warns_and_says_what_to_set() {
    let cli = Cli::new().await;
    let stdout_path = cli.dir.path().join("serve.stdout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("serve")
        .current_dir(cli.dir.path())
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_DATABASE_URL", &cli.database_url)
        .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"))
        .env("REGAUTH_LISTEN", "0.0.0.0:0")
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let printed = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        if printed.contains("realm: ") || Instant::now() > deadline {
            break printed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Stopped by its own PID.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    assert!(
        printed.contains("WARNING: listening on 0.0.0.0 without public_url")
            && printed.contains("REGAUTH_PUBLIC_URL"),
        "{printed}"
    );
}

/// The commit this checkout is at, as `build.rs` records it.
fn checkout_commit() -> String {
    let output = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_version_names_the_commit_on_the_command_line_at_start_and_in_metrics() {
    let commit = checkout_commit();
    let version = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("regauth {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );

    let cli = Cli::new().await;
    let mut server = crate::server::ServerProcess::start(
        cli.dir.path(),
        &[("REGAUTH_DATABASE_URL", &cli.database_url)],
    );
    let metrics = reqwest::get(format!("{}/metrics", server.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.terminate();
    server.wait(Duration::from_secs(30));
    let line = server
        .stdout()
        .lines()
        .find(|line| line.starts_with("regauth listening on"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains(&format!(
            "version {} (commit {commit})",
            env!("CARGO_PKG_VERSION")
        )),
        "{line}"
    );
    let expected = format!(
        "regauth_build_info{{version=\"{}\",commit=\"{commit}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(metrics.contains(&expected), "{metrics}");
}

#[test]
fn the_license_file_is_the_license_cargo_toml_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("license = \"MIT\""),
        "Cargo.toml names MIT"
    );
    let license = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    assert!(license.starts_with("MIT License"), "{license}");
    assert!(license.contains("Permission is hereby granted, free of charge"));
}

/// `regauth registry-config` run in `dir` with `env` and `args`.
fn registry_config(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
    command
        .arg("registry-config")
        .args(args)
        .current_dir(dir)
        .env_remove("REGAUTH_CONFIG")
        .env_remove("REGAUTH_DATABASE_URL")
        .env("REGAUTH_KEYS_DIR", dir.join("keys"));
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn without_comments(text: &str) -> Vec<&str> {
    text.lines().filter(|line| !line.starts_with('#')).collect()
}

/// The compose file's registry config is what the command writes for compose's settings.
#[test]
fn the_compose_registry_config_is_the_one_registry_config_writes() {
    let dir = tempfile::tempdir().unwrap();
    let generated = registry_config(
        dir.path(),
        &[
            ("REGAUTH_PUBLIC_URL", "http://127.0.0.1:5001"),
            ("REGAUTH_ISSUER", "regauth"),
        ],
        &[
            "--listen",
            "0.0.0.0:5000",
            "--storage",
            "/var/lib/registry",
            "--keys-dir",
            "/keys",
        ],
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read_to_string(root.join("deploy/registry.yml")).unwrap();
    assert_eq!(
        without_comments(&file),
        without_comments(&generated),
        "deploy/registry.yml differs from `regauth registry-config` (its header says how to rewrite it)"
    );
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    assert!(compose.contains("./deploy/registry.yml:/etc/docker/registry/config.yml"));
}

#[tokio::test]
async fn serve_prints_the_auth_block_of_registry_config() {
    let cli = Cli::new().await;
    let env = [
        ("REGAUTH_DATABASE_URL", cli.database_url.as_str()),
        ("REGAUTH_PUBLIC_URL", "https://auth.example.com"),
    ];
    let mut server = crate::server::ServerProcess::start(cli.dir.path(), &env);
    server.terminate();
    server.wait(Duration::from_secs(30));
    let printed = server.stdout();
    let config = registry_config(cli.dir.path(), &env, &[]);
    let auth = &config[config.find("auth:\n").unwrap()..];
    assert!(
        auth.contains("realm: https://auth.example.com/jwt/auth"),
        "{auth}"
    );
    assert!(
        printed.contains(auth),
        "serve printed:\n{printed}\nnot:\n{auth}"
    );

    let jwks_env = [env[0], env[1], ("REGAUTH_TOKEN_HEADER", "jwks")];
    let mut server = crate::server::ServerProcess::start(cli.dir.path(), &jwks_env);
    server.terminate();
    server.wait(Duration::from_secs(30));
    let printed = server.stdout();
    let config = registry_config(cli.dir.path(), &jwks_env, &["--registry", "3"]);
    let auth = &config[config.find("auth:\n").unwrap()..];
    assert!(auth.contains("    jwks: "), "{auth}");
    assert!(
        printed.contains(auth),
        "serve printed:\n{printed}\nnot:\n{auth}"
    );
}

#[tokio::test]
async fn migrate_logs_each_step_with_its_time() {
    use migration::MigratorTrait as _;
    let cli = Cli::unmigrated().await;
    let first = cli.run(&["migrate"]);
    assert!(first.status.success());
    let log = String::from_utf8(first.stderr).unwrap();
    let total = migration::Migrator::migrations().len();
    for step in 1..=total {
        let line = log
            .lines()
            .find(|line| line.contains(&format!("migration {step} of {total} applied in ")))
            .unwrap_or_else(|| panic!("no line for step {step}:\n{log}"));
        assert!(line.contains(" ms: m20"), "{line}");
    }
    assert!(
        log.contains(&format!("{total} migration(s) applied in ")),
        "{log}"
    );
    let again = cli.run(&["migrate"]);
    let log = String::from_utf8(again.stderr).unwrap();
    assert!(log.contains("no migration to apply"), "{log}");
    assert!(!log.contains("applied in"), "{log}");
}

#[tokio::test]
async fn backup_shows_its_progress_on_a_terminal_and_not_in_a_pipe() {
    let cli = Cli::new().await;
    if !cli.database_url.starts_with("sqlite:") {
        eprintln!("SKIPPED: backup copies SQLite databases");
        return;
    }
    cli.ok(&["group", "create", "acme"]);
    let mut command = Command::new(env!("CARGO_BIN_EXE_regauth"));
    command
        .args(["backup", "on-a-terminal.db"])
        .current_dir(cli.dir.path())
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_DATABASE_URL", &cli.database_url)
        .env("REGAUTH_KEYS_DIR", cli.dir.path().join("keys"));
    let (mut terminal, mut child) = Terminal::spawn(command);
    let shown = terminal.wait_for("written to").to_owned();
    assert!(child.wait().unwrap().success());
    assert!(
        shown.contains("\rbackup: ") && shown.contains(" MB written in "),
        "{shown:?}"
    );

    let piped = cli.run(&["backup", "in-a-pipe.db"]);
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&piped.stderr), "");
    assert!(String::from_utf8_lossy(&piped.stdout).contains("written to"));
}
