//! A real `docker-registry serve config.yml` (CNCF distribution 2.8) in its own temp dir,
//! listening on a free 127.0.0.1 port, supervised by [`Daemon`] (stopped by PID on `stop()` /
//! `Drop`).

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::free_loopback_port;
use super::process::{require_binary, Daemon};

/// How the registry is configured. An empty `realm` means **no `auth` section** (an open
/// registry); then `service`, `issuer` and `root_cert_bundle` are ignored.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `auth.token.realm`, e.g. `http://127.0.0.1:5001/jwt/auth`. Empty: no auth.
    pub realm: String,
    /// `auth.token.service` (= the JWT `aud`).
    pub service: String,
    /// `auth.token.issuer` (= the JWT `iss`).
    pub issuer: String,
    /// `auth.token.rootcertbundle`: PEM file with CERTIFICATE blocks. Empty: left out.
    pub root_cert_bundle: PathBuf,
    /// `auth.token.jwks` (registry 3.x): a JWK set file.
    pub jwks: Option<PathBuf>,
    /// The registry binary; `None` is Debian's `docker-registry` (2.8). Any binary taking
    /// `serve config.yml` works, e.g. distribution 3.x's `registry`.
    pub binary: Option<PathBuf>,
    /// `proxy.remoteurl`: makes this registry a pull-through cache of that upstream.
    pub proxy_remote_url: Option<String>,
    /// `proxy.username` / `proxy.password`: how the cache authenticates to its upstream.
    pub proxy_credentials: Option<(String, String)>,
    /// `http.tls.certificate` / `http.tls.key`: serve HTTPS with these PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Top-level YAML appended as given (e.g. a `notifications:` block).
    pub extra_config: String,
    /// `http.debug.addr` on a free 127.0.0.1 port: the registry's `/debug/vars`, read by
    /// [`Registry::notification_endpoint`].
    pub debug: bool,
}

/// The counters the registry keeps for one notification endpoint (`/debug/vars`), in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationEndpoint {
    /// Queued and not yet delivered: a batch stays pending while its delivery is retried.
    pub pending: u64,
    /// Answered with a status other than 2xx.
    pub failures: u64,
    /// Not answered at all (e.g. connection refused).
    pub errors: u64,
    pub successes: u64,
}

impl RegistryOptions {
    /// An open registry (no token auth).
    pub fn without_auth() -> Self {
        Self::default()
    }
}

pub struct Registry {
    daemon: Daemon,
    port: u16,
    debug_port: Option<u16>,
    config_path: PathBuf,
    dir: tempfile::TempDir,
}

/// Quotes a string for YAML (double-quoted style, JSON escaping is valid YAML).
fn yq(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl Registry {
    /// Writes the config, spawns the registry (stdout+stderr to `registry.log` in its temp
    /// dir) and waits (≤ 10 s) until its port accepts connections. Panics with the log if
    /// it exits or never listens.
    pub fn start(opts: RegistryOptions) -> Registry {
        require_binary("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("regauth-registry-")
            .tempdir()
            .expect("registry tempdir");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).expect("storage dir");
        let port = free_loopback_port();

        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: {secret}\n",
            storage = yq(&storage.to_string_lossy()),
            secret = yq(&format!("regauth-e2e-secret-{port}")),
        );
        if let Some((certificate, key)) = &opts.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                yq(&certificate.to_string_lossy()),
                yq(&key.to_string_lossy()),
            ));
        }
        let debug_port = opts.debug.then(free_loopback_port);
        if let Some(debug_port) = debug_port {
            yaml.push_str(&format!("  debug:\n    addr: 127.0.0.1:{debug_port}\n"));
        }
        if !opts.realm.is_empty() {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n",
                yq(&opts.realm),
                yq(&opts.service),
                yq(&opts.issuer),
            ));
            if !opts.root_cert_bundle.as_os_str().is_empty() {
                yaml.push_str(&format!(
                    "    rootcertbundle: {}\n",
                    yq(&opts.root_cert_bundle.to_string_lossy())
                ));
            }
            if let Some(jwks) = &opts.jwks {
                yaml.push_str(&format!("    jwks: {}\n", yq(&jwks.to_string_lossy())));
            }
        }
        if let Some(remote) = &opts.proxy_remote_url {
            yaml.push_str(&format!("proxy:\n  remoteurl: {}\n", yq(remote)));
            if let Some((username, password)) = &opts.proxy_credentials {
                yaml.push_str(&format!(
                    "  username: {}\n  password: {}\n",
                    yq(username),
                    yq(password)
                ));
            }
        }
        if !opts.extra_config.is_empty() {
            yaml.push_str(&opts.extra_config);
            yaml.push('\n');
        }
        let mut registry = Registry::start_with_config(dir, &yaml, port, opts.binary.clone());
        registry.debug_port = debug_port;
        registry
    }

    /// Starts the registry on a config written elsewhere (`regauth registry-config`), which
    /// must listen on 127.0.0.1:`port`; `dir` is its temp dir (config, log).
    pub fn start_with_config(
        dir: tempfile::TempDir,
        yaml: &str,
        port: u16,
        binary: Option<PathBuf>,
    ) -> Registry {
        require_binary("docker-registry", "docker-registry");
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, yaml).expect("write registry config");
        let given = binary.is_some();
        let binary = binary.unwrap_or_else(|| PathBuf::from("docker-registry"));
        let mut cmd = Command::new(&binary);
        cmd.arg("serve").arg(&config_path).current_dir(dir.path());
        // REGISTRY_* variables override the config file: never inherit them.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let daemon = Daemon::spawn(
            if given {
                "registry (given binary)"
            } else {
                "docker-registry"
            },
            cmd,
            dir.path().join("registry.log"),
            Duration::from_secs(5),
        );
        let mut registry = Registry {
            daemon,
            port,
            debug_port: None,
            config_path,
            dir,
        };
        let address = ([127, 0, 0, 1], port).into();
        let config = registry.config();
        registry.daemon.wait_until(
            Duration::from_secs(10),
            &format!("listening on 127.0.0.1:{port}; config:\n{config}"),
            || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok(),
        );
        registry
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (e.g. as another registry's `proxy_remote_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The counters of the notification endpoint `name`, from `/debug/vars` (the registry
    /// must have been started with [`RegistryOptions::debug`]). Panics with the log when the
    /// registry does not answer or has no such endpoint.
    pub async fn notification_endpoint(&self, name: &str) -> NotificationEndpoint {
        let debug_port = self
            .debug_port
            .expect("the registry was started without RegistryOptions::debug");
        let url = format!("http://127.0.0.1:{debug_port}/debug/vars");
        let vars: serde_json::Value = match reqwest::get(&url).await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(error) => panic!("GET {url}: {error}\n--- registry log ---\n{}", self.log()),
        };
        let endpoints = vars["registry"]["notifications"]["endpoints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(metrics) = endpoints
            .iter()
            .find(|endpoint| endpoint["name"] == name)
            .map(|endpoint| &endpoint["Metrics"])
        else {
            panic!(
                "no notification endpoint {name:?} in {url}: {endpoints:#?}\n--- registry log ---\n{}",
                self.log()
            )
        };
        let count = |field: &str| metrics[field].as_u64().unwrap_or(0);
        NotificationEndpoint {
            pending: count("Pending"),
            failures: count("Failures"),
            errors: count("Errors"),
            successes: count("Successes"),
        }
    }

    /// The whole log so far (stdout and stderr interleaved).
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// The config file as written.
    pub fn config(&self) -> String {
        fs::read_to_string(&self.config_path).unwrap_or_default()
    }

    /// The registry's private temp dir (config, log, `storage/`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the process by PID (SIGTERM, then SIGKILL) and reaps it. Idempotent; `Drop`
    /// does it too.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}
