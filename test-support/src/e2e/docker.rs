//! A private Docker engine: `dockerd` started by hand on a private [`Containerd`], vfs storage,
//! no bridge / iptables / forwarding, its data root, exec root, socket, pidfile and daemon key
//! (`deprecated-key-path`, else it writes `/etc/docker/key.json`) in a temp dir. The `docker`
//! CLI on `PATH` talks to it through `DOCKER_HOST`; each [`User`] has its own `DOCKER_CONFIG`.
//!
//! 127.0.0.0/8 is a plain-HTTP ("insecure") registry for dockerd by default. Login, push and
//! pull all run inside the daemon, which asks the realm for tokens (GET with Basic auth).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::client::{find_digest_after, Client, ImageRef, Steps, Transfer, User};
use super::containerd::Containerd;
use super::oci::write_rootfs_tar;
use super::process::{require_binary, version_of, Daemon, MountedTempDir};
use super::CommandOutcome;

pub struct Docker {
    // Field order is drop order: dockerd first, then its dir (unmounted), then containerd.
    dockerd: Daemon,
    dir: MountedTempDir,
    containerd: Containerd,
    socket: PathBuf,
}

/// `GET /_ping` on the engine's unix socket answers `OK`.
fn engine_answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("OK")
}

impl Docker {
    /// Starts a private containerd and a dockerd on it; waits (≤ 30 s) until the engine
    /// answers. Panics (with the daemon log) if either cannot start.
    pub fn start() -> Docker {
        Docker::start_with_storage("vfs")
    }

    /// As [`Docker::start`], with `driver` as dockerd's storage driver (`overlay2` builds
    /// images far faster than `vfs`, which copies the whole tree for every layer and step).
    pub fn start_with_storage(driver: &str) -> Docker {
        require_binary("dockerd", "docker.io");
        require_binary("docker", "docker.io");
        let containerd = Containerd::start();
        let dir = MountedTempDir::new("regauth-docker-");
        let root = dir.path();
        let socket = root.join("docker.sock");
        assert!(
            socket.as_os_str().len() < 100,
            "socket path too long for a unix socket: {}",
            socket.display()
        );
        let config = serde_json::json!({
            // Without it dockerd 20.10 writes its identity key to /etc/docker/key.json.
            "deprecated-key-path": root.join("key.json"),
        });
        fs::write(root.join("daemon.json"), config.to_string()).expect("write daemon.json");

        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--containerd")
            .arg(containerd.socket())
            .args([
                "--storage-driver",
                driver,
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
            ])
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONFIG")
            .current_dir(root);
        let mut dockerd = Daemon::spawn(
            "dockerd",
            cmd,
            root.join("dockerd.log"),
            Duration::from_secs(10),
        );
        dockerd.wait_until(Duration::from_secs(30), "GET /_ping answers OK", || {
            engine_answers(&socket)
        });
        Docker {
            dockerd,
            dir,
            containerd,
            socket,
        }
    }

    /// The engine's socket (`DOCKER_HOST=unix://...` for other tools, e.g. docker-compose).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The docker CLI for `user` (their `DOCKER_CONFIG`), on this engine.
    pub fn docker(&self, user: Option<&User>, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("HOME", self.dir.path())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        match user {
            Some(user) => c.env("DOCKER_CONFIG", user.docker_config_dir()),
            None => c.env("DOCKER_CONFIG", self.dir.path().join("cli-config")),
        };
        c.args(args);
        c
    }
}

impl Client for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    /// `docker login -u U --password-stdin HOST`
    fn login(&self, user: &User, host: &str) -> Option<CommandOutcome> {
        let mut steps = Steps::new(&[&user.password]);
        steps.run(
            self.docker(
                Some(user),
                &["login", "-u", &user.username, "--password-stdin", host],
            ),
            Some(&user.password),
        );
        Some(steps.finish())
    }

    /// `docker import rootfs.tar HOST/REPO:TAG`
    fn build(&self, image: &ImageRef, seed: &str) -> CommandOutcome {
        let rootfs = self
            .dir
            .path()
            .join(format!("rootfs-{}.tar", super::sha256_hex(seed.as_bytes())));
        write_rootfs_tar(&rootfs, seed);
        let mut steps = Steps::new(&[]);
        let mut c = self.docker(None, &["import"]);
        c.arg(&rootfs).arg(image.to_string());
        steps.run(c, None);
        steps.finish()
    }

    /// `docker push REF`; the digest from its `TAG: digest: sha256:... size: N` line.
    fn push(&self, user: &User, image: &ImageRef) -> Transfer {
        let mut steps = Steps::new(&[&user.password]);
        let out = steps.run(self.docker(Some(user), &["push", &image.to_string()]), None);
        let digest = out.and_then(|o| find_digest_after(&o, "digest: "));
        steps.transfer(digest)
    }

    /// `docker rmi REF; docker pull REF`; the digest from its `Digest: sha256:...` line.
    fn pull(&self, user: &User, image: &ImageRef) -> Transfer {
        let reference = image.to_string();
        let mut steps = Steps::new(&[&user.password]);
        steps.run_allow_failure(self.docker(None, &["rmi", "--force", &reference]));
        let out = steps.run(self.docker(Some(user), &["pull", &reference]), None);
        let digest = out.and_then(|o| find_digest_after(&o, "Digest: "));
        steps.transfer(digest)
    }

    fn diagnostics(&self) -> String {
        format!(
            "docker CLI: {}; dockerd: {}\n--- dockerd log (last 40 lines) ---\n{}\n\
             --- containerd log (last 10 lines) ---\n{}",
            version_of("docker"),
            version_of("dockerd"),
            self.dockerd.log_tail(40),
            self.containerd.log_tail(10)
        )
    }
}
