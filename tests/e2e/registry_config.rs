//! `regauth registry-config` writes a registry config.yml that starts as it is: Debian's
//! registry (distribution 2.8) run on the printed file trusts regauth's tokens, so a push
//! and a pull with a deploy token work.

use std::process::Command;

use regauth::domain::NamespaceKind::Project;

use super::helpers::spawn_app;
use super::support::{free_loopback_port, Registry, Stack};

#[ignore = "needs docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_registry_config_starts_a_registry_that_trusts_regauth() {
    let app = spawn_app().await;
    let dir = tempfile::Builder::new()
        .prefix("regauth-registry-")
        .tempdir()
        .unwrap();
    let port = free_loopback_port();
    let output = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(["registry-config", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--storage")
        .arg(dir.path().join("storage"))
        .current_dir(dir.path())
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_PUBLIC_URL", &app.address)
        .env("REGAUTH_KEYS_DIR", &app.settings.signing.keys_dir)
        .env("REGAUTH_ISSUER", &app.settings.signing.issuer)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = String::from_utf8(output.stdout).unwrap();
    let registry = Registry::start_with_config(dir, &config, port, None);
    let stack = Stack::with_registry(app, registry);

    stack.app.create_project_with_groups("acme/web").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let client = stack.logged_in(&token);
    let pushed = stack.push(&client, "acme/web/app");
    stack.expect(&pushed, true, "push through the printed config");
    let pulled = stack.pull(&client, "acme/web/app");
    stack.expect(&pulled, true, "pull through the printed config");
}

fn root_user() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `command` run as Debian's `docker-registry` user.
fn as_registry_user(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args([
        "--reuid=docker-registry",
        "--regid=docker-registry",
        "--init-groups",
        "--",
        program,
    ]);
    command
}

/// Debian's registry runs as its own user, not regauth's: it must read `bundle.crt` (and
/// `jwks.json`), and must not read the private keys or the CI sealing key.
#[ignore = "needs root, docker-registry and skopeo: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_registry_running_as_its_own_user_reads_the_public_keys_only() {
    if !root_user() {
        eprintln!("SKIPPED: running the registry as another user needs root");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    chmod(base.path(), 0o755);
    let keys_dir = base.path().join("keys");
    let app = super::helpers::spawn_app_with({
        let keys_dir = keys_dir.clone();
        move |settings| settings.signing.keys_dir = keys_dir
    })
    .await;
    // The CI sealing key as `serve` creates it on first start.
    let ci_key = app.settings.signing.ci_secret_key_file();
    assert!(ci_key.exists(), "{}", ci_key.display());

    let registry_dir = tempfile::Builder::new()
        .prefix("regauth-registry-")
        .tempdir()
        .unwrap();
    chmod(registry_dir.path(), 0o755);
    let storage = base.path().join("storage");
    std::fs::create_dir(&storage).unwrap();
    let chown = Command::new("chown")
        .arg("docker-registry:docker-registry")
        .arg(&storage)
        .status()
        .unwrap();
    assert!(chown.success());
    let port = free_loopback_port();
    let output = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(["registry-config", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--storage")
        .arg(&storage)
        .current_dir(base.path())
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_PUBLIC_URL", &app.address)
        .env("REGAUTH_KEYS_DIR", &keys_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let config = String::from_utf8(output.stdout).unwrap();

    // What the registry's user can and cannot read.
    let reads = |path: &std::path::Path| {
        as_registry_user("cat")
            .arg(path)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(reads(&keys_dir.join("bundle.crt")));
    assert!(reads(&keys_dir.join("jwks.json")));
    let private: Vec<_> = std::fs::read_dir(keys_dir.join("private"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(!private.is_empty());
    for key in private.iter().chain([&ci_key]) {
        assert!(!reads(key), "the registry's user reads {}", key.display());
    }

    let wrapper = base.path().join("docker-registry-as-its-user");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nexec setpriv --reuid=docker-registry --regid=docker-registry --init-groups -- docker-registry \"$@\"\n",
    )
    .unwrap();
    chmod(&wrapper, 0o755);
    let registry = Registry::start_with_config(registry_dir, &config, port, Some(wrapper));
    let stack = Stack::with_registry(app, registry);
    stack.app.create_project_with_groups("acme/web").await;
    let token = stack
        .app
        .create_token(Project, "acme/web", &["read_registry", "write_registry"])
        .await;
    let client = stack.logged_in(&token);
    let pushed = stack.push(&client, "acme/web/app");
    stack.expect(
        &pushed,
        true,
        "push to a registry running as docker-registry",
    );
    let pulled = stack.pull(&client, "acme/web/app");
    stack.expect(
        &pulled,
        true,
        "pull from a registry running as docker-registry",
    );
}
