//! End to end behind a real reverse proxy: Debian's nginx with `auth_request` pointed at
//! regauth's `/-/forward-auth`, in front of
//! - `git http-backend` (through fcgiwrap), cloned from by the real `git`, and
//! - a generic package registry whose files nginx itself stores and serves (WebDAV `PUT`),
//!   driven by the real `curl`.
//!
//! Each test starts its own regauth, fcgiwrap and nginx on free 127.0.0.1 ports in temp dirs,
//! and stops them by PID when done (also on panic). Like every test that needs tools beyond
//! Rust they are `#[ignore = "needs ..."]`; `bash scripts/test.sh` runs them. The nginx configuration is
//! [`NGINX_CONF`], the one docs/git-and-packages.md shows.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use regauth::domain::NamespaceKind::{Group, Project};
use regauth::domain::Visibility;
use regauth_test_support::e2e::process::Daemon;
use regauth_test_support::helpers::{spawn_app, CreatedToken, TestApp};

/// The nginx configuration under test; `{…}` placeholders are filled in per test. docs/git-and-packages.md
/// shows the same `server` block.
const NGINX_CONF: &str = r#"daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
{user}
events { worker_connections 64; }
http {
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    server {
        listen 127.0.0.1:{port};
        client_max_body_size 0;

        # Every git and package request is first asked about here.
        location = /-/forward-auth {
            internal;
            proxy_pass http://127.0.0.1:{regauth_port}/-/forward-auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }

        # git smart HTTP: http://host/<group>/<project>.git
        location ~ ^/.+\.git/ {
            auth_request /-/forward-auth;
            fastcgi_pass unix:{dir}/fcgiwrap.sock;
            fastcgi_param SCRIPT_FILENAME {git_http_backend};
            fastcgi_param GIT_PROJECT_ROOT {dir}/repos;
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param REMOTE_ADDR $remote_addr;
        }

        # Generic packages: /api/v4/projects/<id>/packages/generic/<name>/<version>/<file>
        location /api/v4/projects/ {
            auth_request /-/forward-auth;
            root {dir}/packages;
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }
    }
}
"#;

/// regauth, fcgiwrap + git http-backend, nginx; the repositories and packages live in `dir`.
struct Proxy {
    app: TestApp,
    port: u16,
    dir: tempfile::TempDir,
    // Dropped (stopped) before the temp dir goes.
    nginx: Daemon,
    fcgiwrap: Daemon,
}

/// Finds a binary on PATH or in the sbin directories (nginx and fcgiwrap live in /usr/sbin,
/// which a non-root PATH often lacks). A missing one is a failure, never a skip.
fn binary(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (Debian package `{package}`): run `bash scripts/test.sh`, \
                 which installs it, or `apt-get install {package}`"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `git` with no user or system configuration, no prompts, no credential helpers.
fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(["-c", "credential.helper=", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env("GIT_AUTHOR_NAME", "regauth test")
        .env("GIT_AUTHOR_EMAIL", "test@regauth.local")
        .env("GIT_COMMITTER_NAME", "regauth test")
        .env("GIT_COMMITTER_EMAIL", "test@regauth.local")
        .stdin(Stdio::null())
        .output()
        .expect("run git")
}

fn must(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Percent-encodes a URL userinfo part.
fn userinfo(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Proxy {
    async fn start() -> Proxy {
        let nginx_bin = binary("nginx", "nginx");
        let fcgiwrap_bin = binary("fcgiwrap", "fcgiwrap");
        let exec_path = must(git(Path::new("/"), &["--exec-path"]), "git --exec-path");
        let git_http_backend = Path::new(exec_path.trim()).join("git-http-backend");
        assert!(
            git_http_backend.is_file(),
            "{} missing (Debian package `git`)",
            git_http_backend.display()
        );
        let app = spawn_app().await;
        let regauth_port = app.address.rsplit(':').next().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        for sub in ["tmp", "repos", "packages"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let d = dir.path().display().to_string();
        let conf = NGINX_CONF
            .replace("{dir}", &d)
            .replace("{port}", &port.to_string())
            .replace("{regauth_port}", &regauth_port)
            .replace(
                "{git_http_backend}",
                &git_http_backend.display().to_string(),
            )
            // As root, nginx's workers would otherwise switch to `nobody`, who cannot read
            // the private temp dir.
            .replace("{user}", if is_root() { "user root;" } else { "" });
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();

        let socket = dir.path().join("fcgiwrap.sock");
        let mut fcgi_cmd = Command::new(&fcgiwrap_bin);
        fcgi_cmd
            .arg("-f")
            .arg("-s")
            .arg(format!("unix:{}", socket.display()));
        let mut fcgiwrap = Daemon::spawn(
            "fcgiwrap",
            fcgi_cmd,
            dir.path().join("fcgiwrap.log"),
            Duration::from_secs(5),
        );
        fcgiwrap.wait_until(Duration::from_secs(20), "socket created", || {
            socket.exists()
        });

        let mut nginx_cmd = Command::new(&nginx_bin);
        nginx_cmd
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"));
        let mut nginx = Daemon::spawn(
            "nginx",
            nginx_cmd,
            dir.path().join("nginx.log"),
            Duration::from_secs(5),
        );
        nginx.wait_until(Duration::from_secs(20), "listening", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Proxy {
            app,
            port,
            dir,
            nginx,
            fcgiwrap,
        }
    }

    fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- nginx error.log ---\n{}\n--- access.log ---\n{}\n--- fcgiwrap ---\n{}",
            read("error.log"),
            read("access.log"),
            self.fcgiwrap.log_tail(30)
        )
    }

    /// A bare repository `<path>.git` served by git http-backend, with one commit on main.
    /// Pushes over HTTP are enabled in git itself, so that only regauth stands in their way.
    fn create_repository(&self, path: &str) -> String {
        let bare = self.dir.path().join("repos").join(format!("{path}.git"));
        std::fs::create_dir_all(&bare).unwrap();
        must(
            git(&bare, &["init", "--bare", "-q", "."]),
            "git init --bare",
        );
        must(
            git(&bare, &["config", "http.receivepack", "true"]),
            "git config",
        );
        let work = tempfile::tempdir().unwrap();
        must(git(work.path(), &["init", "-q", "."]), "git init");
        std::fs::write(work.path().join("README"), format!("{path}\n")).unwrap();
        must(git(work.path(), &["add", "README"]), "git add");
        must(
            git(work.path(), &["commit", "-q", "-m", "first"]),
            "git commit",
        );
        must(
            git(
                work.path(),
                &["push", "-q", &bare.display().to_string(), "HEAD:main"],
            ),
            "git push to the bare repository",
        );
        self.head(path)
    }

    /// The commit main points to in the served repository.
    fn head(&self, path: &str) -> String {
        let bare = self.dir.path().join("repos").join(format!("{path}.git"));
        must(git(&bare, &["rev-parse", "main"]), "git rev-parse")
            .trim()
            .to_owned()
    }

    fn url(&self, path: &str, credentials: Option<&CreatedToken>) -> String {
        match credentials {
            Some(token) => format!(
                "http://{}:{}@127.0.0.1:{}/{path}",
                userinfo(&token.token.username),
                userinfo(&token.secret),
                self.port
            ),
            None => format!("http://127.0.0.1:{}/{path}", self.port),
        }
    }

    /// `git clone` over HTTP through nginx, in a blocking thread.
    async fn clone(&self, project: &str, credentials: Option<&CreatedToken>) -> (bool, String) {
        let url = self.url(&format!("{project}.git"), credentials);
        let work = tempfile::tempdir().unwrap();
        let output = tokio::task::spawn_blocking({
            let dir = work.path().to_owned();
            move || git(&dir, &["clone", "-q", &url, "checkout"])
        })
        .await
        .unwrap();
        let cloned =
            output.status.success() && work.path().join("checkout").join("README").is_file();
        (cloned, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    /// Clones `project` anonymously from the file system, commits, then pushes over HTTP
    /// with `credentials`.
    async fn push(&self, project: &str, credentials: Option<&CreatedToken>) -> (bool, String) {
        let bare = self.dir.path().join("repos").join(format!("{project}.git"));
        let url = self.url(&format!("{project}.git"), credentials);
        let work = tempfile::tempdir().unwrap();
        let output = tokio::task::spawn_blocking({
            let dir = work.path().to_owned();
            move || {
                must(
                    git(&dir, &["clone", "-q", &bare.display().to_string(), "w"]),
                    "local clone",
                );
                let w = dir.join("w");
                std::fs::write(w.join("NEW"), "pushed\n").unwrap();
                must(git(&w, &["add", "NEW"]), "git add");
                must(git(&w, &["commit", "-q", "-m", "second"]), "git commit");
                git(&w, &["push", "-q", &url, "HEAD:main"])
            }
        })
        .await
        .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `curl` through nginx; returns the HTTP status and the body.
    async fn curl(&self, args: Vec<String>) -> (u16, String) {
        let output = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["--silent", "--show-error", "--write-out", "\n%{http_code}"])
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("run curl (Debian package `curl`)")
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    fn package_url(&self, file: &str) -> String {
        format!(
            "http://127.0.0.1:{}/api/v4/projects/acme%2Fweb/packages/generic/tool/1.0.0/{file}",
            self.port
        )
    }

    async fn upload(&self, file: &Path, name: &str, token: Option<&CreatedToken>) -> u16 {
        let mut args = vec![
            "--upload-file".to_owned(),
            file.display().to_string(),
            self.package_url(name),
        ];
        if let Some(token) = token {
            args.push("--user".to_owned());
            args.push(format!("{}:{}", token.token.username, token.secret));
        }
        self.curl(args).await.0
    }

    async fn download(&self, name: &str, token: Option<&CreatedToken>) -> (u16, String) {
        let mut args = vec![self.package_url(name)];
        if let Some(token) = token {
            args.push("--user".to_owned());
            args.push(format!("{}:{}", token.token.username, token.secret));
        }
        self.curl(args).await
    }

    fn stored(&self, name: &str) -> bool {
        self.dir
            .path()
            .join("packages/api/v4/projects/acme/web/packages/generic/tool/1.0.0")
            .join(name)
            .is_file()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.nginx.stop();
        self.fcgiwrap.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx, fcgiwrap, git and curl: run by scripts/test.sh"]
async fn git_clone_works_with_read_repository_and_fails_without_it_for_another_project_and_after_revoke(
) {
    let proxy = Proxy::start().await;
    proxy.app.create_project_with_groups("acme/web").await;
    proxy.app.create_project_with_groups("acme/other").await;
    proxy.create_repository("acme/web");
    let reader = proxy
        .app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    let registry_only = proxy
        .app
        .create_token(
            Project,
            "acme/web",
            &["read_registry", "read_package_registry"],
        )
        .await;
    let stranger = proxy
        .app
        .create_token(Project, "acme/other", &["read_repository"])
        .await;
    let group = proxy
        .app
        .create_token(Group, "acme", &["read_repository"])
        .await;

    let (ok, log) = proxy.clone("acme/web", Some(&reader)).await;
    assert!(ok, "clone with read_repository: {log}\n{}", proxy.logs());
    let (ok, log) = proxy.clone("acme/web", Some(&group)).await;
    assert!(ok, "clone with the group's token: {log}\n{}", proxy.logs());
    let (ok, log) = proxy.clone("acme/web", Some(&registry_only)).await;
    assert!(!ok, "clone without read_repository must fail: {log}");
    assert!(log.contains("403"), "refused by the proxy: {log}");
    let (ok, log) = proxy.clone("acme/web", Some(&stranger)).await;
    assert!(!ok, "clone with another project's token must fail: {log}");
    let (ok, log) = proxy.clone("acme/web", None).await;
    assert!(!ok, "anonymous clone of a private project must fail: {log}");

    proxy.app.revoke(reader.token.id).await;
    let (ok, log) = proxy.clone("acme/web", Some(&reader)).await;
    assert!(!ok, "clone after revoke must fail: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx, fcgiwrap, git and curl: run by scripts/test.sh"]
async fn a_public_project_is_cloned_anonymously_and_nobody_pushes_through_the_proxy() {
    let proxy = Proxy::start().await;
    proxy.app.create_project_with_groups("acme/web").await;
    let head = proxy.create_repository("acme/web");
    let everything = proxy
        .app
        .create_token(
            Project,
            "acme/web",
            &[
                "read_repository",
                "read_registry",
                "write_registry",
                "read_package_registry",
                "write_package_registry",
            ],
        )
        .await;

    let (ok, log) = proxy.clone("acme/web", None).await;
    assert!(!ok, "private: anonymous clone refused: {log}");
    proxy
        .app
        .set_visibility("acme/web", Visibility::Public)
        .await;
    let (ok, log) = proxy.clone("acme/web", None).await;
    assert!(ok, "public: anonymous clone: {log}\n{}", proxy.logs());

    let (ok, log) = proxy.push("acme/web", Some(&everything)).await;
    assert!(!ok, "a deploy token never pushes: {log}");
    let (ok, log) = proxy.push("acme/web", None).await;
    assert!(!ok, "an anonymous push is refused: {log}");
    assert_eq!(proxy.head("acme/web"), head, "nothing was pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx, fcgiwrap, git and curl: run by scripts/test.sh"]
async fn generic_packages_are_uploaded_with_write_and_downloaded_with_read_package_registry() {
    let proxy = Proxy::start().await;
    proxy.app.create_project_with_groups("acme/web").await;
    proxy.app.create_project_with_groups("acme/other").await;
    let writer = proxy
        .app
        .create_token(Project, "acme/web", &["write_package_registry"])
        .await;
    let reader = proxy
        .app
        .create_token(Project, "acme/web", &["read_package_registry"])
        .await;
    let git_only = proxy
        .app
        .create_token(Project, "acme/web", &["read_repository"])
        .await;
    let stranger = proxy
        .app
        .create_token(Project, "acme/other", &["write_package_registry"])
        .await;
    let file = proxy.dir.path().join("tool.tar.gz");
    std::fs::write(&file, "the package\n").unwrap();

    let status = proxy.upload(&file, "tool.tar.gz", Some(&writer)).await;
    assert_eq!(
        status,
        201,
        "upload with write_package_registry\n{}",
        proxy.logs()
    );
    assert!(proxy.stored("tool.tar.gz"));

    for (token, what) in [
        (&reader, "read only"),
        (&git_only, "read_repository"),
        (&stranger, "another project"),
    ] {
        let status = proxy.upload(&file, "evil.tar.gz", Some(token)).await;
        assert_eq!(status, 403, "upload with a {what} token");
    }
    assert_eq!(proxy.upload(&file, "evil.tar.gz", None).await, 401);
    assert!(!proxy.stored("evil.tar.gz"), "no refused upload was stored");

    assert_eq!(
        proxy.download("tool.tar.gz", Some(&reader)).await,
        (200, "the package\n".to_owned())
    );
    assert_eq!(proxy.download("tool.tar.gz", Some(&writer)).await.0, 200);
    assert_eq!(proxy.download("tool.tar.gz", Some(&git_only)).await.0, 403);
    assert_eq!(proxy.download("tool.tar.gz", Some(&stranger)).await.0, 403);
    assert_eq!(proxy.download("tool.tar.gz", None).await.0, 401);

    proxy
        .app
        .set_visibility("acme/web", Visibility::Public)
        .await;
    assert_eq!(
        proxy.download("tool.tar.gz", None).await,
        (200, "the package\n".to_owned())
    );
    assert_eq!(proxy.upload(&file, "evil.tar.gz", None).await, 401);
    assert!(!proxy.stored("evil.tar.gz"));
}
