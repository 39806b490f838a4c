//! The README's five-minute walkthrough, run as it is written: regauth serve, a registry
//! started on `regauth registry-config`'s file, a deploy token, docker login, push and pull,
//! revocation, refusal. The one change: the first line's two addresses become free loopback
//! ports. regauth and the registry run in the script's own process group, stopped by its id.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{free_loopback_port, Docker};

const ADDRESSES: &str = "export REGAUTH_LISTEN=127.0.0.1:5001 REGISTRY=127.0.0.1:5000";

/// The first `sh` block after the walkthrough's heading.
fn walkthrough(readme: &str) -> String {
    let section = readme
        .split("\n## Five minutes")
        .nth(1)
        .expect("the README has the five-minute walkthrough");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a sh block in the walkthrough");
    block.to_owned()
}

fn root_user() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Kills the script's process group (regauth and the registry if the script stopped early).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
#[ignore = "needs root, docker.io, docker-registry and curl: run by scripts/test.sh"]
fn the_readme_walkthrough_runs_as_written() {
    if !root_user() {
        eprintln!("SKIPPED: the private dockerd needs root");
        return;
    }
    super::support::process::require_binary("docker-registry", "docker-registry");
    super::support::process::require_binary("curl", "curl");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let script = walkthrough(&readme);
    assert_eq!(script.matches(ADDRESSES).count(), 1, "{script}");
    let regauth_port = free_loopback_port();
    let registry_port = free_loopback_port();
    let script = script.replace(
        ADDRESSES,
        &format!(
            "export REGAUTH_LISTEN=127.0.0.1:{regauth_port} REGISTRY=127.0.0.1:{registry_port}"
        ),
    );

    let docker = Docker::start();
    let work = tempfile::tempdir().unwrap();
    // `regauth` on PATH, as the README asks.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_regauth"), bin.join("regauth")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = work.path().join("walkthrough.log");
    let mut child = Command::new("setsid")
        .args(["bash", "-euo", "pipefail", "-c", &script])
        .current_dir(work.path())
        .env("PATH", path)
        .env(
            "DOCKER_HOST",
            format!("unix://{}", docker.socket().display()),
        )
        .env("DOCKER_CONFIG", work.path().join("docker-config"))
        .env_remove("REGAUTH_CONFIG")
        .env_remove("REGAUTH_DATABASE_URL")
        .env_remove("REGAUTH_KEYS_DIR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(work.path().join("walkthrough.err")).unwrap())
        .spawn()
        .unwrap();
    let _group = ProcessGroup(child.id());
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    let report = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}\n--- serve.log ---\n{}\n--- registry.log ---\n{}",
        read("walkthrough.log"),
        read("walkthrough.err"),
        read("regauth-demo/serve.log"),
        read("regauth-demo/registry.log"),
    );
    assert!(status.success(), "the walkthrough failed\n{report}");
    let stdout = read("walkthrough.log");
    let stderr = read("walkthrough.err");
    assert!(stdout.contains("Login Succeeded"), "{report}");
    assert!(
        stdout.contains("This is the only time the token is shown"),
        "{report}"
    );
    // The pull after the revocation is refused by regauth, not failed for another reason.
    assert!(stdout.contains("refused: the token is revoked"), "{report}");
    let refusal = stderr.to_lowercase();
    assert!(
        refusal.contains("unauthorized") || refusal.contains("denied"),
        "{report}"
    );
    // Both were stopped by the script itself.
    let serve_log = read("regauth-demo/serve.log");
    assert!(serve_log.contains("regauth listening on"), "{report}");
}
