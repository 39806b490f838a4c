//! A private `containerd` (root, state, sockets and the `opt` dir in a temp dir; CRI off) and
//! the `ctr` client on it. ctr has no login: credentials go with every push and pull as
//! `--user U:P`, and ctr (containerd's resolver, in the ctr process) first POSTs an OAuth2
//! password grant to the realm.
//!
//! Content is `isolated` between namespaces, and every pull uses a fresh namespace, so a
//! pull really fetches the manifest and blobs from the registry.

use std::cell::Cell;
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::client::{parse_digest, Client, ImageRef, Steps, Transfer, User};
use super::oci::write_oci_archive;
use super::process::{require_binary, version_of, Daemon, MountedTempDir};
use super::CommandOutcome;

/// A running containerd. Dropping it stops the daemon by PID, then unmounts anything left
/// under its temp dir and removes it.
pub struct Containerd {
    // Field order is drop order: stop the daemon, then clean its dir.
    daemon: Daemon,
    dir: MountedTempDir,
    socket: PathBuf,
}

fn toml_str(s: &Path) -> String {
    serde_json::to_string(&s.to_string_lossy()).unwrap()
}

impl Containerd {
    /// Starts `containerd --config <tmp>/config.toml` and waits (≤ 20 s) for its socket.
    pub fn start() -> Containerd {
        require_binary("containerd", "containerd");
        require_binary("ctr", "containerd");
        let dir = MountedTempDir::new("regauth-containerd-");
        let root = dir.path();
        let socket = root.join("containerd.sock");
        assert!(
            socket.as_os_str().len() < 100,
            "socket path too long for a unix socket: {} (set TMPDIR to a short path)",
            socket.display()
        );
        let config = format!(
            "version = 2\n\
             root = {root}\n\
             state = {state}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = {sock}\n\
             [ttrpc]\n  address = {ttrpc}\n\
             [debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n\
             [plugins]\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt}\n\
             [plugins.\"io.containerd.metadata.v1.bolt\"]\n  content_sharing_policy = \"isolated\"\n",
            root = toml_str(&root.join("root")),
            state = toml_str(&root.join("state")),
            sock = toml_str(&socket),
            ttrpc = toml_str(&root.join("containerd.sock.ttrpc")),
            opt = toml_str(&root.join("opt")),
        );
        let config_path = root.join("config.toml");
        fs::write(&config_path, config).expect("write containerd config");

        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config_path).current_dir(root);
        let mut daemon = Daemon::spawn(
            "containerd",
            cmd,
            root.join("containerd.log"),
            Duration::from_secs(5),
        );
        daemon.wait_until(
            Duration::from_secs(20),
            "socket accepts connections",
            || UnixStream::connect(&socket).is_ok(),
        );
        Containerd {
            daemon,
            dir,
            socket,
        }
    }

    /// The gRPC socket (`ctr --address`, `dockerd --containerd`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.daemon.log_tail(lines)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `ctr` on a private containerd.
pub struct Ctr {
    containerd: Containerd,
    images: tempfile::TempDir,
    pulls: Cell<u32>,
}

/// The namespace images are built (imported) and pushed from.
const PUSH_NAMESPACE: &str = "regauth-push";

impl Ctr {
    /// Starts a private containerd. Panics if containerd/ctr are missing or it won't start.
    pub fn start() -> Ctr {
        Ctr {
            containerd: Containerd::start(),
            images: tempfile::Builder::new()
                .prefix("regauth-ctr-images-")
                .tempdir()
                .expect("images tempdir"),
            pulls: Cell::new(0),
        }
    }

    fn ctr(&self, namespace: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.containerd.socket())
            .args(["--namespace", namespace])
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .env_remove("CONTAINERD_SNAPSHOTTER");
        c
    }

    /// The digest `ctr images ls` shows for `image` in `namespace`.
    fn listed_digest(
        &self,
        steps: &mut Steps,
        namespace: &str,
        image: &ImageRef,
    ) -> Option<String> {
        let mut c = self.ctr(namespace);
        c.args(["images", "ls"]);
        let listing = steps.run(c, None)?;
        let wanted = image.to_string();
        listing.lines().find_map(|line| {
            let mut columns = line.split_whitespace();
            (columns.next() == Some(wanted.as_str()))
                .then(|| columns.nth(1).and_then(parse_digest))
                .flatten()
        })
    }
}

impl Client for Ctr {
    fn name(&self) -> &'static str {
        "ctr"
    }

    /// ctr has no login.
    fn login(&self, _user: &User, _host: &str) -> Option<CommandOutcome> {
        None
    }

    /// Writes an OCI archive of the hand-made image (ref name = TAG) and
    /// `ctr images import --base-name HOST/REPO archive.tar` (→ `HOST/REPO:TAG`).
    fn build(&self, image: &ImageRef, seed: &str) -> CommandOutcome {
        let id = super::sha256_hex(seed.as_bytes());
        let layout = self.images.path().join(&id);
        let archive = self.images.path().join(format!("{id}.tar"));
        write_oci_archive(&layout, &archive, seed, &image.tag);
        let mut steps = Steps::new(&[]);
        let mut c = self.ctr(PUSH_NAMESPACE);
        c.args(["images", "import", "--base-name"])
            .arg(format!("{}/{}", image.host, image.repo))
            .arg(&archive);
        steps.run(c, None);
        steps.finish()
    }

    /// `ctr images push --plain-http --user U:P REF`; the digest is the one `ctr images ls`
    /// lists for the pushed image.
    fn push(&self, user: &User, image: &ImageRef) -> Transfer {
        let mut steps = Steps::new(&[&user.password]);
        let mut c = self.ctr(PUSH_NAMESPACE);
        c.args(["images", "push", "--plain-http"]);
        if !user.username.is_empty() {
            c.arg("--user").arg(user.colon_pair());
        }
        c.arg(image.to_string());
        steps.run(c, None);
        let digest = if steps.ok() {
            self.listed_digest(&mut steps, PUSH_NAMESPACE, image)
        } else {
            None
        };
        steps.transfer(digest)
    }

    /// `ctr -n <fresh namespace> images pull --plain-http --user U:P REF`, then the digest
    /// from `ctr images ls`.
    fn pull(&self, user: &User, image: &ImageRef) -> Transfer {
        self.pulls.set(self.pulls.get() + 1);
        let namespace = format!("regauth-pull-{}", self.pulls.get());
        let mut steps = Steps::new(&[&user.password]);
        let mut c = self.ctr(&namespace);
        c.args(["images", "pull", "--plain-http"]);
        // An anonymous user (empty username) pulls without credentials.
        if !user.username.is_empty() {
            c.arg("--user").arg(user.colon_pair());
        }
        c.arg(image.to_string());
        steps.run(c, None);
        let digest = if steps.ok() {
            self.listed_digest(&mut steps, &namespace, image)
        } else {
            None
        };
        steps.transfer(digest)
    }

    fn diagnostics(&self) -> String {
        format!(
            "{}\n--- containerd log (last 30 lines) ---\n{}",
            version_of("ctr"),
            self.containerd.log_tail(30)
        )
    }
}
