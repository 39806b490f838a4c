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
        .env("REGAUTH_KEYS_DIR", &app.settings.keys_dir)
        .env("REGAUTH_ISSUER", &app.settings.issuer)
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
