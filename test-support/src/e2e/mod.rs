//! Test support for end-to-end tests: a real `docker-registry` (CNCF distribution 2.8),
//! hand-written OCI image fixtures, a `skopeo` client with a private authfile, and every real
//! client (skopeo, podman, buildah, `ctr` on a private containerd, docker on a private
//! dockerd) behind one [`Client`] trait.
//!
//! Everything listens on 127.0.0.1 only, lives in its own temp dir and every spawned
//! process is killed by PID when its owner is dropped (also on panic).

pub mod buildah;
pub mod client;
pub mod containerd;
pub mod containers;
pub mod docker;
pub mod oci;
pub mod podman;
pub mod process;
pub mod registry;
pub mod skopeo;
pub mod stack;

pub use buildah::Buildah;
pub use client::{Client, ImageRef, Transfer, User};
pub use containerd::{Containerd, Ctr};
pub use docker::Docker;
pub use oci::{
    sha256_hex, tar_one_file, write_oci_archive, write_oci_image, write_rootfs_tar, OciImage,
};
pub use podman::Podman;
pub use registry::{NotificationEndpoint, Registry, RegistryOptions};
pub use skopeo::{Skopeo, SkopeoClient};
pub use stack::{blocking, registry_for, Stack, CREDENTIALS_REFUSED, REGISTRY_DENIAL};

use std::fmt;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound to port 0, then released). There is a small race
/// window until the caller binds it; callers should bind promptly.
pub fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The result of running an external command to completion.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// The command line, with secrets replaced by `***`.
    pub command: String,
    /// Exit status as text (`exit status: 1`, `signal: 9`, `timed out after 120s`).
    pub status: String,
}

impl fmt::Display for CommandOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "status: {} (success: {})", self.status, self.success)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// Default time limit for one client command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` to completion (at most `timeout`; then it is killed by PID), feeding `stdin`
/// if given. Every string in `secrets` is redacted from the recorded command line and output.
pub fn run_command(
    mut cmd: Command,
    stdin: Option<&str>,
    secrets: &[&str],
    timeout: Duration,
) -> CommandOutcome {
    let redact = |s: &str| -> String {
        let mut out = s.to_string();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(secret, "***");
        }
        out
    };
    let mut line = vec![cmd.get_program().to_string_lossy().into_owned()];
    line.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let command = redact(&line.join(" "));

    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return CommandOutcome {
                success: false,
                stdout: String::new(),
                stderr: format!("failed to spawn: {e}"),
                command,
                status: "not started".into(),
            }
        }
    };
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin piped");
        let _ = pipe.write_all(input.as_bytes());
        // dropped here: closes stdin
    }
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out_pipe.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let (success, status) = loop {
        match child.try_wait() {
            Ok(Some(st)) => break (st.success(), st.to_string()),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break (
                    false,
                    format!("timed out after {}s, killed", timeout.as_secs()),
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break (false, format!("wait failed: {e}"));
            }
        }
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    CommandOutcome {
        success,
        stdout: redact(&stdout),
        stderr: redact(&stderr),
        command,
        status,
    }
}
