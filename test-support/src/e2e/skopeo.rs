//! `skopeo` (no daemon) with a private authfile, talking plain HTTP to 127.0.0.1. [`Skopeo`]
//! is the one wrapper: every skopeo command line is built by its methods. [`SkopeoClient`]
//! adapts it to the shared [`Client`] checks, using each [`User`]'s authfile.
//! Every call runs to completion (≤ `COMMAND_TIMEOUT`, then killed by PID).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::client::{parse_digest, Client, ImageRef, Steps, Transfer, User};
use super::oci::{write_oci_image, OciImage};
use super::{run_command, CommandOutcome, COMMAND_TIMEOUT};

pub struct Skopeo {
    authfile: PathBuf,
    /// `HOME` and the XDG dirs of the skopeo processes.
    home: PathBuf,
    /// Owned by a stand-alone `Skopeo` (`new`); a user's belongs to the caller.
    _dir: Option<tempfile::TempDir>,
    /// Extra environment for every command (e.g. `SSL_CERT_FILE`).
    env: Vec<(String, PathBuf)>,
    /// Verify TLS certificates (registry and token realm); plain HTTP registries need `false`.
    verify_tls: bool,
}

impl Default for Skopeo {
    fn default() -> Self {
        Self::new()
    }
}

impl Skopeo {
    /// A client with its own empty authfile (`{"auths":{}}`) in a fresh temp dir: anonymous
    /// until `login`.
    pub fn new() -> Skopeo {
        let dir = tempfile::Builder::new()
            .prefix("regauth-skopeo-")
            .tempdir()
            .expect("skopeo tempdir");
        let authfile = dir.path().join("auth.json");
        fs::write(&authfile, b"{\"auths\":{}}").expect("write authfile");
        Skopeo {
            authfile,
            home: dir.path().to_path_buf(),
            _dir: Some(dir),
            env: Vec::new(),
            verify_tls: false,
        }
    }

    /// Skopeo with `user`'s authfile, `home` as its home directory.
    pub fn for_user(user: &User, home: &Path) -> Skopeo {
        Skopeo {
            authfile: user.authfile(),
            home: home.to_path_buf(),
            _dir: None,
            env: Vec::new(),
            verify_tls: false,
        }
    }

    /// A client that verifies TLS (the registry must serve HTTPS) and trusts only the CA
    /// certificates in `ca_file`: Go reads its roots from `SSL_CERT_FILE`. containers/image
    /// fetches the token realm with the registry's TLS settings, so `--tls-verify=false` would
    /// skip verifying the realm as well.
    pub fn trusting(ca_file: &Path) -> Skopeo {
        let mut skopeo = Skopeo::new();
        skopeo.verify_tls = true;
        skopeo
            .env
            .push(("SSL_CERT_FILE".into(), ca_file.to_path_buf()));
        let no_dir = skopeo.home.join("no-certs");
        skopeo.env.push(("SSL_CERT_DIR".into(), no_dir));
        skopeo
    }

    pub fn authfile(&self) -> &Path {
        &self.authfile
    }

    /// The authfile's current content (what `login` stored).
    pub fn authfile_content(&self) -> String {
        fs::read_to_string(&self.authfile).unwrap_or_default()
    }

    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new("skopeo");
        c.arg(sub)
            .arg("--authfile")
            .arg(&self.authfile)
            // keep the client away from the user's config/caches as far as possible
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG");
        for (key, value) in &self.env {
            c.env(key, value);
        }
        c
    }

    /// `skopeo login --tls-verify=false -u USER --password-stdin HOST` (the password goes
    /// on stdin).
    pub fn login_command(&self, host: &str, username: &str) -> Command {
        let mut c = self.cmd("login");
        c.args([
            "--tls-verify=false",
            "-u",
            username,
            "--password-stdin",
            host,
        ]);
        c
    }

    /// `skopeo copy --quiet --preserve-digests <TLS flag> [extra...] SOURCE DEST`.
    pub fn copy_command(
        &self,
        tls_flag: &str,
        extra: &[&str],
        source: &str,
        dest: &str,
    ) -> Command {
        let mut c = self.cmd("copy");
        c.args([tls_flag, "--quiet", "--preserve-digests"])
            .args(extra)
            .args([source, dest]);
        c
    }

    fn run(&self, cmd: Command, stdin: Option<&str>, secrets: &[&str]) -> CommandOutcome {
        let cmd = if self.verify_tls {
            verifying_tls(cmd)
        } else {
            cmd
        };
        run_command(cmd, stdin, secrets, COMMAND_TIMEOUT)
    }

    /// `skopeo login --tls-verify=false -u USER --password-stdin HOST` (password on stdin).
    /// The registry answers the login with a scope-less token: success only proves the
    /// credentials (and that the registry accepted our JWT for `GET /v2/`).
    pub fn login(&self, host: &str, username: &str, password: &str) -> CommandOutcome {
        let c = self.login_command(host, username);
        self.run(c, Some(password), &[password])
    }

    /// `skopeo logout HOST`
    pub fn logout(&self, host: &str) -> CommandOutcome {
        let mut c = self.cmd("logout");
        c.arg(host);
        self.run(c, None, &[])
    }

    /// `skopeo copy oci:<layout>:<tag> docker://HOST/REPO:TAG --dest-tls-verify=false`
    /// with the authfile's credentials.
    pub fn push(&self, image: &OciImage, host: &str, repo: &str, tag: &str) -> CommandOutcome {
        let c = self.copy_command(
            "--dest-tls-verify=false",
            &[],
            &image.skopeo_ref(),
            &format!("docker://{host}/{repo}:{tag}"),
        );
        self.run(c, None, &[])
    }

    /// Like `push`, but with `--dest-creds USER:PASS` (bypasses the authfile). The password
    /// is redacted from the outcome.
    pub fn push_with_credentials(
        &self,
        image: &OciImage,
        host: &str,
        repo: &str,
        tag: &str,
        username: &str,
        password: &str,
    ) -> CommandOutcome {
        let c = self.copy_command(
            "--dest-tls-verify=false",
            &["--dest-creds", &format!("{username}:{password}")],
            &image.skopeo_ref(),
            &format!("docker://{host}/{repo}:{tag}"),
        );
        self.run(c, None, &[password])
    }

    /// `skopeo copy docker://HOST/REPO:TAG oci:<dest_dir>:<TAG> --src-tls-verify=false`.
    pub fn pull(&self, host: &str, repo: &str, tag: &str, dest_dir: &Path) -> CommandOutcome {
        let c = self.copy_command(
            "--src-tls-verify=false",
            &[],
            &format!("docker://{host}/{repo}:{tag}"),
            &format!("oci:{}:{tag}", dest_dir.display()),
        );
        self.run(c, None, &[])
    }

    /// Like `pull`, but with `--src-creds USER:PASS`.
    pub fn pull_with_credentials(
        &self,
        host: &str,
        repo: &str,
        tag: &str,
        dest_dir: &Path,
        username: &str,
        password: &str,
    ) -> CommandOutcome {
        let c = self.copy_command(
            "--src-tls-verify=false",
            &["--src-creds", &format!("{username}:{password}")],
            &format!("docker://{host}/{repo}:{tag}"),
            &format!("oci:{}:{tag}", dest_dir.display()),
        );
        self.run(c, None, &[password])
    }

    /// `skopeo inspect --tls-verify=false docker://HOST/REPO:TAG` (full JSON on stdout).
    pub fn inspect(&self, host: &str, repo: &str, tag: &str) -> CommandOutcome {
        let mut c = self.cmd("inspect");
        c.arg("--tls-verify=false")
            .arg(format!("docker://{host}/{repo}:{tag}"));
        self.run(c, None, &[])
    }

    /// The `Digest` (`sha256:...`) from `skopeo inspect`; the outcome on failure.
    pub fn inspect_digest(
        &self,
        host: &str,
        repo: &str,
        tag: &str,
    ) -> Result<String, CommandOutcome> {
        let mut out = self.inspect(host, repo, tag);
        if !out.success {
            return Err(out);
        }
        match serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v.get("Digest").and_then(|d| d.as_str()).map(str::to_string))
        {
            Some(d) => Ok(d),
            None => {
                out.success = false;
                out.stderr
                    .push_str("\n<no \"Digest\" in skopeo inspect output>");
                Err(out)
            }
        }
    }

    /// `skopeo delete --tls-verify=false docker://HOST/REPO:TAG` (needs `storage.delete`
    /// enabled and the `delete` action; skopeo first asks for `repository:R:*`).
    pub fn delete(&self, host: &str, repo: &str, tag: &str) -> CommandOutcome {
        let mut c = self.cmd("delete");
        c.arg("--tls-verify=false")
            .arg(format!("docker://{host}/{repo}:{tag}"));
        self.run(c, None, &[])
    }
}

/// skopeo as a [`Client`] for the shared client checks: `build` writes the hand-made OCI
/// layout, `push` copies it to the registry, `pull` copies back into a fresh OCI layout.
pub struct SkopeoClient {
    dir: tempfile::TempDir,
    built: RefCell<HashMap<String, OciImage>>,
    pulls: Cell<u32>,
}

impl SkopeoClient {
    pub fn start() -> SkopeoClient {
        super::process::require_binary("skopeo", "skopeo");
        SkopeoClient {
            dir: tempfile::Builder::new()
                .prefix("regauth-skopeo-client-")
                .tempdir()
                .expect("skopeo tempdir"),
            built: RefCell::new(HashMap::new()),
            pulls: Cell::new(0),
        }
    }

    /// The one skopeo wrapper, with `user`'s authfile.
    fn skopeo(&self, user: &User) -> Skopeo {
        Skopeo::for_user(user, self.dir.path())
    }
}

/// The manifest digest of the only image in an OCI layout's `index.json`.
fn layout_manifest_digest(layout: &Path) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).ok()?).ok()?;
    let digest = index["manifests"][0]["digest"].as_str()?;
    parse_digest(digest)
}

impl Client for SkopeoClient {
    fn name(&self) -> &'static str {
        "skopeo"
    }

    /// `skopeo login --authfile A --tls-verify=false -u U --password-stdin HOST`
    fn login(&self, user: &User, host: &str) -> Option<CommandOutcome> {
        let mut steps = Steps::new(&[&user.password]);
        let c = self.skopeo(user).login_command(host, &user.username);
        steps.run(c, Some(&user.password));
        Some(steps.finish())
    }

    /// Writes the hand-made OCI layout (ref name = TAG) for `seed`.
    fn build(&self, image: &ImageRef, seed: &str) -> CommandOutcome {
        let layout = self
            .dir
            .path()
            .join(format!("image-{}", super::sha256_hex(seed.as_bytes())));
        let built = write_oci_image(&layout, seed, &image.tag);
        self.built.borrow_mut().insert(image.to_string(), built);
        Steps::new(&[]).finish()
    }

    /// `skopeo copy --dest-tls-verify=false --digestfile F oci:LAYOUT:TAG docker://REF`
    fn push(&self, user: &User, image: &ImageRef) -> Transfer {
        let source = self
            .built
            .borrow()
            .get(&image.to_string())
            .map(OciImage::skopeo_ref)
            .unwrap_or_else(|| panic!("skopeo: {image} was never built"));
        let digest_file = user.dir().join("skopeo-push.digest");
        let _ = fs::remove_file(&digest_file);
        let mut steps = Steps::new(&[&user.password]);
        let c = self.skopeo(user).copy_command(
            "--dest-tls-verify=false",
            &["--digestfile", &digest_file.to_string_lossy()],
            &source,
            &image.docker_transport(),
        );
        steps.run(c, None);
        let digest = fs::read_to_string(&digest_file)
            .ok()
            .and_then(|d| parse_digest(d.trim()));
        steps.transfer(digest)
    }

    /// `skopeo copy --src-tls-verify=false docker://REF oci:<fresh dir>:TAG`; the digest from
    /// the copied layout's `index.json`.
    fn pull(&self, user: &User, image: &ImageRef) -> Transfer {
        self.pulls.set(self.pulls.get() + 1);
        let dest = self.dir.path().join(format!("pull-{}", self.pulls.get()));
        let mut steps = Steps::new(&[&user.password]);
        let c = self.skopeo(user).copy_command(
            "--src-tls-verify=false",
            &[],
            &image.docker_transport(),
            &format!("oci:{}:{}", dest.display(), image.tag),
        );
        steps.run(c, None);
        let digest = if steps.ok() {
            layout_manifest_digest(&dest)
        } else {
            None
        };
        steps.transfer(digest)
    }

    fn diagnostics(&self) -> String {
        super::process::version_of("skopeo")
    }
}

/// The same command with every `--*tls-verify=false` turned to `=true`.
fn verifying_tls(cmd: Command) -> Command {
    let mut verifying = Command::new(cmd.get_program());
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        verifying.arg(match arg.strip_suffix("tls-verify=false") {
            Some(prefix) => format!("{prefix}tls-verify=true"),
            None => arg.into_owned(),
        });
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => verifying.env(key, value),
            None => verifying.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        verifying.current_dir(dir);
    }
    verifying
}
