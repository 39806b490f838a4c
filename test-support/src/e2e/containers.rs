//! The private configuration podman and buildah run with (containers-storage, containers.conf,
//! registries.conf), all in one temp dir, passed through environment variables so nothing of
//! the machine's own configuration or storage is used or touched.
//!
//! One thing cannot be redirected: the blob-info cache goes to
//! `/var/lib/containers/cache/blob-info-cache-v1.boltdb` for root whatever the configuration.
//! It only records which blobs were seen where; every image the tests push has content unique
//! to its test (seeded with the registry's port), so entries never match across tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::MountedTempDir;

pub struct ContainersEnv {
    dir: MountedTempDir,
}

fn toml_str(s: &Path) -> String {
    serde_json::to_string(&s.to_string_lossy()).unwrap()
}

impl ContainersEnv {
    /// Writes the three config files for a vfs store under a fresh temp dir, with
    /// `registry_host` (`127.0.0.1:PORT`) marked insecure (plain HTTP).
    pub fn new(prefix: &str, registry_host: &str) -> ContainersEnv {
        let dir = MountedTempDir::new(prefix);
        let root = dir.path();
        for sub in ["graph", "run", "tmp", "networks", "home", "config", "data"] {
            fs::create_dir_all(root.join(sub)).expect("create containers dir");
        }
        fs::write(
            root.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = {}\nrunroot = {}\n",
                toml_str(&root.join("graph")),
                toml_str(&root.join("run")),
            ),
        )
        .expect("write storage.conf");
        fs::write(
            root.join("containers.conf"),
            format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 events_logfile_path = {}\ntmp_dir = {}\nimage_copy_tmp_dir = {}\n\
                 [network]\nnetwork_config_dir = {}\n",
                toml_str(&root.join("events.log")),
                toml_str(&root.join("tmp")),
                toml_str(&root.join("tmp")),
                toml_str(&root.join("networks")),
            ),
        )
        .expect("write containers.conf");
        fs::write(
            root.join("registries.conf"),
            format!(
                "unqualified-search-registries = []\n\n[[registry]]\nlocation = {}\ninsecure = true\n",
                serde_json::to_string(registry_host).unwrap()
            ),
        )
        .expect("write registries.conf");
        ContainersEnv { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A scratch file path inside the private dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("tmp").join(name)
    }

    /// `program` with the private configuration in its environment and none of the
    /// caller's registry credentials (`REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`, `$HOME`).
    pub fn command(&self, program: &str) -> Command {
        let root = self.dir.path();
        let mut cmd = Command::new(program);
        cmd.env("CONTAINERS_STORAGE_CONF", root.join("storage.conf"))
            .env("CONTAINERS_CONF", root.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", root.join("registries.conf"))
            .env("HOME", root.join("home"))
            .env("XDG_RUNTIME_DIR", root.join("run"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("TMPDIR", root.join("tmp"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .current_dir(root);
        cmd
    }
}
