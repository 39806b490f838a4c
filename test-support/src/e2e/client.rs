//! What every real registry client can do, so that the end-to-end checks are written once
//! (tests/e2e/clients.rs) and run against skopeo, podman, buildah, `ctr` and docker.
//!
//! A client is set up once per test (its storage, and for ctr/docker its daemons); a [`User`]
//! is one person using it with one deploy token: their own credential store (authfile or
//! `DOCKER_CONFIG` dir), so several tokens can be used side by side in one test.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run_command, CommandOutcome, COMMAND_TIMEOUT};

/// One set of credentials and its private credential store.
pub struct User {
    pub username: String,
    pub password: String,
    dir: tempfile::TempDir,
}

impl User {
    /// A user with an empty authfile (`{"auths":{}}`) and an empty docker config dir:
    /// anonymous until a login stores something there.
    pub fn new(username: &str, password: &str) -> User {
        let dir = tempfile::Builder::new()
            .prefix("regauth-user-")
            .tempdir()
            .expect("user tempdir");
        let user = User {
            username: username.to_string(),
            password: password.to_string(),
            dir,
        };
        fs::write(user.authfile(), b"{\"auths\":{}}").expect("write authfile");
        fs::create_dir_all(user.docker_config_dir()).expect("docker config dir");
        user
    }

    /// containers-auth.json for skopeo, podman and buildah (`--authfile`).
    pub fn authfile(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// `DOCKER_CONFIG` for the docker CLI (holds `config.json` after a login).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// A private dir for anything else the client wants to keep per user.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `user:password`, for clients that take credentials on the command line (ctr).
    pub fn colon_pair(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }
}

/// `HOST/REPO:TAG`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub host: String,
    pub repo: String,
    pub tag: String,
}

impl ImageRef {
    pub fn new(host: &str, repo: &str, tag: &str) -> ImageRef {
        ImageRef {
            host: host.to_string(),
            repo: repo.to_string(),
            tag: tag.to_string(),
        }
    }

    /// `docker://HOST/REPO:TAG`
    pub fn docker_transport(&self) -> String {
        format!("docker://{self}")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.host, self.repo, self.tag)
    }
}

/// The result of a push or pull: the commands run, and the manifest digest the client
/// reported (`sha256:...`) when it succeeded.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub outcome: CommandOutcome,
    pub digest: Option<String>,
}

impl Transfer {
    pub fn success(&self) -> bool {
        self.outcome.success
    }
}

/// A registry client under test. Every method runs the client to completion (blocking).
pub trait Client {
    /// `podman`, `docker`, ...
    fn name(&self) -> &'static str;

    /// Logs `user` in to `host`, storing the credentials in the user's credential store.
    /// `None` for clients without a login (`ctr`): they pass the credentials with every
    /// push and pull instead.
    fn login(&self, user: &User, host: &str) -> Option<CommandOutcome>;

    /// Creates a local image named `image` from a one-file rootfs holding `seed` (so each
    /// seed gives different blobs). Needs no registry.
    fn build(&self, image: &ImageRef, seed: &str) -> CommandOutcome;

    /// Pushes the local image `image` as `user`.
    fn push(&self, user: &User, image: &ImageRef) -> Transfer;

    /// Removes any local copy, then pulls `image` as `user`.
    fn pull(&self, user: &User, image: &ImageRef) -> Transfer;

    /// Versions and daemon logs for failure messages.
    fn diagnostics(&self) -> String {
        String::new()
    }
}

/// Runs commands one after another, stopping at the first failure, and folds them into one
/// [`CommandOutcome`] (all command lines and all output, in order).
pub struct Steps {
    secrets: Vec<String>,
    outcome: Option<CommandOutcome>,
}

impl Steps {
    /// `secrets` are redacted from every recorded command line and output.
    pub fn new(secrets: &[&str]) -> Steps {
        Steps {
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            outcome: None,
        }
    }

    /// Whether every step so far succeeded.
    pub fn ok(&self) -> bool {
        self.outcome.as_ref().is_none_or(|o| o.success)
    }

    /// Runs `cmd` (with `stdin`) unless an earlier step failed; returns its stdout.
    pub fn run(&mut self, cmd: Command, stdin: Option<&str>) -> Option<String> {
        if !self.ok() {
            return None;
        }
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let step = run_command(cmd, stdin, &secrets, COMMAND_TIMEOUT);
        let stdout = step.stdout.clone();
        let success = step.success;
        self.push_outcome(step);
        success.then_some(stdout)
    }

    /// Runs `cmd` and records it, but its failure does not stop the steps (e.g. removing an
    /// image that may not exist).
    pub fn run_allow_failure(&mut self, cmd: Command) {
        if !self.ok() {
            return;
        }
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let mut step = run_command(cmd, None, &secrets, COMMAND_TIMEOUT);
        step.status = format!("{} (failure allowed)", step.status);
        step.success = true;
        self.push_outcome(step);
    }

    /// Marks the steps as failed with `why` (e.g. a digest missing from the output).
    pub fn fail(&mut self, why: &str) {
        let outcome = self.outcome.get_or_insert_with(|| CommandOutcome {
            success: false,
            stdout: String::new(),
            stderr: String::new(),
            command: "<no command>".into(),
            status: String::new(),
        });
        outcome.success = false;
        outcome.status = format!("{}; {why}", outcome.status);
        outcome.stderr.push_str(&format!("\n<{why}>"));
    }

    fn push_outcome(&mut self, step: CommandOutcome) {
        match self.outcome.as_mut() {
            None => self.outcome = Some(step),
            Some(all) => {
                all.command = format!("{}\n         {}", all.command, step.command);
                all.stdout = format!(
                    "{}\n[{}]\n{}",
                    all.stdout.trim_end(),
                    step.command,
                    step.stdout
                );
                all.stderr = format!(
                    "{}\n[{}]\n{}",
                    all.stderr.trim_end(),
                    step.command,
                    step.stderr
                );
                all.status = step.status;
                all.success = step.success;
            }
        }
    }

    pub fn finish(self) -> CommandOutcome {
        self.outcome.unwrap_or(CommandOutcome {
            success: true,
            stdout: String::new(),
            stderr: String::new(),
            command: "<no command>".into(),
            status: "nothing to do".into(),
        })
    }

    /// The folded outcome as a [`Transfer`] carrying `digest` (required on success: a
    /// successful transfer without a digest counts as a failure).
    pub fn transfer(mut self, digest: Option<String>) -> Transfer {
        if self.ok() && digest.is_none() {
            self.fail("no manifest digest found in the client's output");
        }
        let outcome = self.finish();
        let digest = if outcome.success { digest } else { None };
        Transfer { outcome, digest }
    }
}

/// The first `sha256:<64 hex>` in `text` after `marker` (e.g. `"digest: "`).
pub fn find_digest_after(text: &str, marker: &str) -> Option<String> {
    text.match_indices(marker).find_map(|(at, m)| {
        let rest = &text[at + m.len()..];
        parse_digest(rest.trim_start())
    })
}

/// A `sha256:<64 lowercase hex>` at the start of `s`.
pub fn parse_digest(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:")?;
    let hex: String = hex.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}
