//! `buildah` (no daemon) on a private vfs store. buildah ignores `insecure = true` in
//! registries.conf for `login`, so every registry command passes `--tls-verify=false`.

use std::fs;

use super::client::{parse_digest, Client, ImageRef, Steps, Transfer, User};
use super::containers::ContainersEnv;
use super::oci::write_rootfs_tar;
use super::process::{require_binary, version_of};
use super::CommandOutcome;

pub struct Buildah {
    env: ContainersEnv,
}

impl Buildah {
    /// A buildah whose storage and configuration live in a fresh temp dir. Panics if buildah
    /// is not installed.
    pub fn start(registry_host: &str) -> Buildah {
        require_binary("buildah", "buildah");
        Buildah {
            env: ContainersEnv::new("regauth-buildah-", registry_host),
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.env.command("buildah");
        c.args(args);
        c
    }
}

impl Client for Buildah {
    fn name(&self) -> &'static str {
        "buildah"
    }

    /// `buildah login --authfile A --tls-verify=false -u U --password-stdin HOST`
    fn login(&self, user: &User, host: &str) -> Option<CommandOutcome> {
        let mut steps = Steps::new(&[&user.password]);
        let mut c = self.cmd(&["login", "--tls-verify=false", "--authfile"]);
        c.arg(user.authfile())
            .args(["-u", &user.username, "--password-stdin", host]);
        steps.run(c, Some(&user.password));
        Some(steps.finish())
    }

    /// `c=$(buildah from scratch); buildah add $c rootfs.tar /; buildah commit -q --rm $c REF`
    fn build(&self, image: &ImageRef, seed: &str) -> CommandOutcome {
        let id = super::sha256_hex(seed.as_bytes());
        let rootfs = self.env.file(&format!("rootfs-{id}.tar"));
        write_rootfs_tar(&rootfs, seed);
        let name = format!("regauth-{}", &id[..12]);
        let mut steps = Steps::new(&[]);
        steps.run(self.cmd(&["from", "--name", &name, "scratch"]), None);
        let mut add = self.cmd(&["add", &name]);
        add.arg(&rootfs).arg("/");
        steps.run(add, None);
        steps.run(
            self.cmd(&["commit", "--quiet", "--rm", &name, &image.to_string()]),
            None,
        );
        steps.finish()
    }

    /// `buildah push --tls-verify=false --authfile A --digestfile F REF docker://REF`
    fn push(&self, user: &User, image: &ImageRef) -> Transfer {
        let digest_file = user.dir().join("buildah-push.digest");
        let _ = fs::remove_file(&digest_file);
        let mut steps = Steps::new(&[&user.password]);
        let mut c = self.cmd(&["push", "--quiet", "--tls-verify=false", "--authfile"]);
        c.arg(user.authfile())
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(image.to_string())
            .arg(image.docker_transport());
        steps.run(c, None);
        let digest = fs::read_to_string(&digest_file)
            .ok()
            .and_then(|d| parse_digest(d.trim()));
        steps.transfer(digest)
    }

    /// `buildah rmi -f REF; buildah pull --tls-verify=false --authfile A REF;
    /// buildah inspect --type image --format {{.FromImageDigest}} REF`
    fn pull(&self, user: &User, image: &ImageRef) -> Transfer {
        let reference = image.to_string();
        let mut steps = Steps::new(&[&user.password]);
        steps.run_allow_failure(self.cmd(&["rmi", "--force", &reference]));
        let mut c = self.cmd(&["pull", "--quiet", "--tls-verify=false", "--authfile"]);
        c.arg(user.authfile()).arg(&reference);
        steps.run(c, None);
        let inspected = steps.run(
            self.cmd(&[
                "inspect",
                "--type",
                "image",
                "--format",
                "{{.FromImageDigest}}",
                &reference,
            ]),
            None,
        );
        let digest = inspected.and_then(|out| parse_digest(out.trim()));
        steps.transfer(digest)
    }

    fn diagnostics(&self) -> String {
        format!(
            "{}; storage and config in {}",
            version_of("buildah"),
            self.env.root().display()
        )
    }
}
