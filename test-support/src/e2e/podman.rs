//! `podman` (no daemon) on a private vfs store; the registry is marked insecure in a private
//! registries.conf, so podman itself decides to speak plain HTTP (no `--tls-verify` flags).

use std::fs;

use super::client::{Client, ImageRef, Steps, Transfer, User};
use super::containers::ContainersEnv;
use super::oci::write_rootfs_tar;
use super::process::{require_binary, version_of};
use super::CommandOutcome;

pub struct Podman {
    env: ContainersEnv,
}

impl Podman {
    /// A podman whose storage and configuration live in a fresh temp dir, trusting
    /// `registry_host` over plain HTTP. Panics if podman is not installed.
    pub fn start(registry_host: &str) -> Podman {
        require_binary("podman", "podman");
        Podman {
            env: ContainersEnv::new("regauth-podman-", registry_host),
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.env.command("podman");
        c.args(args);
        c
    }
}

impl Client for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }

    /// `podman login --authfile A -u U --password-stdin HOST`
    fn login(&self, user: &User, host: &str) -> Option<CommandOutcome> {
        let mut steps = Steps::new(&[&user.password]);
        let mut c = self.cmd(&["login", "--authfile"]);
        c.arg(user.authfile())
            .args(["-u", &user.username, "--password-stdin", host]);
        steps.run(c, Some(&user.password));
        Some(steps.finish())
    }

    /// `podman import rootfs.tar HOST/REPO:TAG`
    fn build(&self, image: &ImageRef, seed: &str) -> CommandOutcome {
        let rootfs = self.env.file(&format!(
            "rootfs-{}.tar",
            super::sha256_hex(seed.as_bytes())
        ));
        write_rootfs_tar(&rootfs, seed);
        let mut steps = Steps::new(&[]);
        let mut c = self.cmd(&["import", "--quiet"]);
        c.arg(&rootfs).arg(image.to_string());
        steps.run(c, None);
        steps.finish()
    }

    /// `podman push --authfile A --digestfile F HOST/REPO:TAG`; the digest is read from F.
    fn push(&self, user: &User, image: &ImageRef) -> Transfer {
        let digest_file = user.dir().join("podman-push.digest");
        let _ = fs::remove_file(&digest_file);
        let mut steps = Steps::new(&[&user.password]);
        let mut c = self.cmd(&["push", "--quiet", "--authfile"]);
        c.arg(user.authfile())
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(image.to_string());
        steps.run(c, None);
        let digest = fs::read_to_string(&digest_file)
            .ok()
            .and_then(|d| super::client::parse_digest(d.trim()));
        steps.transfer(digest)
    }

    /// `podman rmi -f REF; podman pull --authfile A REF; podman image inspect --format {{.Digest}} REF`
    fn pull(&self, user: &User, image: &ImageRef) -> Transfer {
        let reference = image.to_string();
        let mut steps = Steps::new(&[&user.password]);
        steps.run_allow_failure(self.cmd(&["rmi", "--force", &reference]));
        let mut c = self.cmd(&["pull", "--quiet", "--authfile"]);
        c.arg(user.authfile()).arg(&reference);
        steps.run(c, None);
        let inspected = steps.run(
            self.cmd(&["image", "inspect", "--format", "{{.Digest}}", &reference]),
            None,
        );
        let digest = inspected.and_then(|out| super::client::parse_digest(out.trim()));
        steps.transfer(digest)
    }

    fn diagnostics(&self) -> String {
        format!(
            "{}; storage and config in {}",
            version_of("podman"),
            self.env.root().display()
        )
    }
}
