//! `docker-compose up` of the repository's own `docker-compose.yml`, for real, on a private
//! dockerd (the e2e tests' [`Docker`]): up, a deploy token made with
//! `docker-compose exec regauth regauth ...`, `docker login`, push and pull through the
//! registry service, down, up again, and the token still works (the volumes kept it).
//!
//! This machine has no image registry, so the images are made locally and swapped in by an
//! override file used only here (the compose file users get keeps the official images):
//! a Debian bookworm base from `debootstrap --variant=minbase` (`docker import`ed), one image
//! with Debian's `postgresql-15`, `docker-registry` and `nginx` on it, regauth's image built
//! from the final stage of the repository's `Dockerfile` with the binary this test run built.
//! The debootstrap tarball and the tools image are cached under `target/tmp/compose-cache`, so
//! only the first run downloads them (the Dockerfile's own `apt-get install ca-certificates`
//! runs at every build of regauth's image, as for users).
//!
//! Skipped (with a message) only when no container engine can run here: not root.

use regauth_test_support::e2e as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::process::require_binary;
use support::{
    free_loopback_port, run_command, sha256_hex, Client, CommandOutcome, Docker, ImageRef, User,
};

const REGAUTH: &str = env!("CARGO_BIN_EXE_regauth");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Building the images runs apt (the first time, and for regauth's image every time).
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// The image every test service runs on: Debian's own PostgreSQL, registry and nginx, set up
/// as the official images are (the services set entrypoint, user and environment in the
/// override). Built once and cached as a `docker save` tarball.
/// No service may start during the build, and postgresql-common makes no cluster of its own.
const TOOLS_DOCKERFILE: &str = r#"FROM regauth-test/bookworm
COPY postgres-entrypoint /usr/local/bin/postgres-entrypoint
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-common \
    && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 docker-registry nginx ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && chmod 0755 /usr/local/bin/postgres-entrypoint \
    && mkdir -p /var/lib/postgresql/data /var/lib/registry \
    && chown -R postgres:postgres /var/lib/postgresql \
    && sed -ri "s|^#?unix_socket_directories.*|unix_socket_directories = '/tmp'|" /usr/share/postgresql/15/postgresql.conf.sample \
    && rm -f /etc/nginx/sites-enabled/default
"#;

/// What the official `postgres` image does with POSTGRES_USER / POSTGRES_PASSWORD /
/// POSTGRES_DB on an empty data volume, then the server on all addresses.
const POSTGRES_ENTRYPOINT: &str = r#"#!/bin/sh
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C
    rm -f /tmp/pwfile
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    pg_ctl -D "$PGDATA" -w -m fast stop
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
"#;

fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compose-cache");
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn expect_ok(outcome: CommandOutcome, what: &str) -> CommandOutcome {
    assert!(outcome.success, "{what} failed\n{outcome}");
    outcome
}

fn run(cmd: Command, what: &str, timeout: Duration) -> CommandOutcome {
    expect_ok(run_command(cmd, None, &[], timeout), what)
}

/// The Debian mirror apt uses here (debootstrap takes the same).
fn debian_mirror() -> String {
    let mut text = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            text.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text.split_whitespace()
        .find(|word| word.starts_with("http") && word.trim_end_matches('/').ends_with("/debian"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_string()
}

/// `debootstrap --variant=minbase bookworm` as a tarball, made once and cached.
fn bookworm_tarball() -> PathBuf {
    let tarball = cache_dir().join("bookworm-minbase.tar");
    if tarball.is_file() {
        return tarball;
    }
    require_binary("debootstrap", "debootstrap");
    let work = tempfile::Builder::new()
        .prefix("debootstrap-")
        .tempdir_in(cache_dir())
        .unwrap();
    let root = work.path().join("root");
    let mut cmd = Command::new("debootstrap");
    cmd.args(["--variant=minbase", "bookworm"])
        .arg(&root)
        .arg(debian_mirror());
    run(cmd, "debootstrap", BUILD_TIMEOUT);
    let partial = work.path().join("rootfs.tar");
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(&root).arg("-cf").arg(&partial).arg(".");
    run(tar, "tar the debootstrap root", BUILD_TIMEOUT);
    fs::rename(&partial, &tarball).unwrap();
    tarball
}

struct Compose<'a> {
    docker: &'a Docker,
    project: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Compose<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.docker.socket().display()),
        )
        .env("COMPOSE_PROJECT_NAME", &self.project)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("COMPOSE_FILE")
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .arg("--project-directory")
        .arg(REPO);
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str], timeout: Duration) -> CommandOutcome {
        run_command(self.command(args), None, &[], timeout)
    }

    /// `docker-compose exec -T regauth regauth ARGS`.
    fn regauth(&self, args: &[&str]) -> String {
        let mut all = vec!["exec", "-T", "regauth", "regauth"];
        all.extend_from_slice(args);
        let outcome = self.run(&all, Duration::from_secs(120));
        assert!(
            outcome.success,
            "docker-compose exec regauth regauth {args:?} failed\n{outcome}\n{}",
            self.logs()
        );
        outcome.stdout
    }

    fn logs(&self) -> String {
        let outcome = self.run(
            &["logs", "--no-color", "--tail", "40"],
            Duration::from_secs(60),
        );
        format!(
            "--- docker-compose logs ---\n{}\n{}",
            outcome.stdout, outcome.stderr
        )
    }
}

impl Drop for Compose<'_> {
    fn drop(&mut self) {
        let _ = self.run(
            &["down", "--volumes", "--timeout", "5"],
            Duration::from_secs(120),
        );
    }
}

/// Polls `url` (≤ `limit`) until curl gets `status`.
fn wait_for_status(url: &str, status: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
            url,
        ]);
        if run_command(cmd, None, &[], Duration::from_secs(10))
            .stdout
            .trim()
            == status
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// Writes a build context with `Dockerfile` and `files`.
fn context(root: &Path, name: &str, dockerfile: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (file, content) in files {
        fs::write(dir.join(file), content).unwrap();
    }
    dir
}

/// The final stage of the repository's Dockerfile, on the local base and with the binary
/// this test run built instead of the `build` stage's.
fn regauth_dockerfile() -> String {
    let text = fs::read_to_string(Path::new(REPO).join("Dockerfile")).unwrap();
    let start = text
        .find("FROM debian:bookworm-slim")
        .expect("the Dockerfile's runtime stage starts FROM debian:bookworm-slim");
    let stage = &text[start..];
    assert!(
        stage.contains("COPY --from=build /src/dist/regauth /usr/local/bin/regauth"),
        "the Dockerfile's runtime stage copies the binary from the build stage"
    );
    stage
        .replace("FROM debian:bookworm-slim", "FROM regauth-test/bookworm")
        .replace("COPY --from=build /src/dist/regauth", "COPY regauth")
}

/// Imports the base image and loads (or builds once and caches) the tools image.
fn prepare_images(docker: &Docker) {
    let tarball = bookworm_tarball();
    // With the configuration of the official debian image (a tarball carries none).
    let mut import = docker.docker(
        None,
        &[
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "CMD [\"bash\"]",
        ],
    );
    import.arg(&tarball).arg("regauth-test/bookworm");
    run(import, "docker import the bookworm base", BUILD_TIMEOUT);

    // Keyed by the recipe and the base tarball (its size and time: hashing 200 MB in a
    // debug build is slow, and a new tarball is a new file).
    let base = fs::metadata(&tarball).unwrap();
    let base_id = format!(
        "{} {:?}",
        base.len(),
        base.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    );
    let key =
        &sha256_hex(format!("{base_id}\n{TOOLS_DOCKERFILE}\n{POSTGRES_ENTRYPOINT}").as_bytes())
            [..16];
    let saved = cache_dir().join(format!("tools-{key}.tar"));
    if saved.is_file() {
        let mut load = docker.docker(None, &["load", "-i"]);
        load.arg(&saved);
        if run_command(load, None, &[], BUILD_TIMEOUT).success {
            return;
        }
        let _ = fs::remove_file(&saved);
    }
    let work = tempfile::tempdir().unwrap();
    let ctx = context(
        work.path(),
        "tools",
        TOOLS_DOCKERFILE,
        &[("postgres-entrypoint", POSTGRES_ENTRYPOINT.as_bytes())],
    );
    let mut build = docker.docker(
        None,
        &["build", "--network", "host", "-t", "regauth-test/tools"],
    );
    build.arg(&ctx);
    run(build, "docker build the tools image (apt)", BUILD_TIMEOUT);
    let partial = cache_dir().join(format!("tools-{key}.tar.partial"));
    let mut save = docker.docker(None, &["save", "-o"]);
    save.arg(&partial).arg("regauth-test/tools");
    run(save, "docker save the tools image", BUILD_TIMEOUT);
    fs::rename(&partial, &saved).unwrap();
    // Older recipes' images are dead weight (700 MB each).
    for entry in fs::read_dir(cache_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("tools-") && entry.path() != saved {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The override file: regauth built from the repository's Dockerfile (final stage) with this
/// run's binary; PostgreSQL, the registry and nginx run the tools image as the official
/// images would (entrypoint, user, environment). Nothing else changes.
fn write_override(dir: &Path) -> PathBuf {
    let binary = fs::read(REGAUTH).expect("read the regauth binary");
    let regauth = context(
        dir,
        "regauth",
        &regauth_dockerfile(),
        &[("regauth", &binary)],
    );
    // COPY keeps the mode: executable, as cargo made it.
    fs::set_permissions(regauth.join("regauth"), fs::Permissions::from_mode(0o755)).unwrap();
    let registry_config = generated_registry_config(dir);
    let build = serde_json::json!({"context": regauth, "network": "host"});
    // JSON is YAML.
    let file = serde_json::json!({
        "services": {
            "postgres": {
                "image": "regauth-test/tools",
                "user": "postgres",
                "entrypoint": ["postgres-entrypoint"],
                "environment": {
                    "PATH": "/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "PGDATA": "/var/lib/postgresql/data",
                    "PGHOST": "/tmp",
                },
            },
            "regauth": {"image": "regauth-test/regauth", "build": build},
            "regauth-2": {"image": "regauth-test/regauth", "build": build},
            "registry": {
                "image": "regauth-test/tools",
                "entrypoint": ["docker-registry"],
                "command": ["serve", "/etc/docker/registry/config.yml"],
                // The registry runs on what `regauth registry-config` writes for compose's
                // settings (the same mount target replaces deploy/registry.yml).
                "volumes": [format!("{}:/etc/docker/registry/config.yml:ro", registry_config.display())],
            },
            "proxy": {
                "image": "regauth-test/tools",
                "command": ["nginx", "-g", "daemon off;"],
            },
        }
    });
    let path = dir.join("docker-compose.test.yml");
    fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    path
}

/// The registry config `regauth registry-config` writes for compose (regauth at
/// 127.0.0.1:5001 for clients, its keys volume mounted at /keys), in `dir`.
fn generated_registry_config(dir: &Path) -> PathBuf {
    let output = Command::new(REGAUTH)
        .args([
            "registry-config",
            "--listen",
            "0.0.0.0:5000",
            "--storage",
            "/var/lib/registry",
            "--keys-dir",
            "/keys",
        ])
        .current_dir(dir)
        .env_remove("REGAUTH_CONFIG")
        .env("REGAUTH_PUBLIC_URL", "http://127.0.0.1:5001")
        .env("REGAUTH_ISSUER", "regauth")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "regauth registry-config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("registry.yml");
    fs::write(&path, &output.stdout).unwrap();
    path
}

fn root_user() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Logs in, pushes `repo:tag` (a fresh image) and pulls it back with docker.
fn push_and_pull(docker: &Docker, user: &User, image: &ImageRef, compose: &Compose) {
    let login = docker.login(user, &image.host).expect("docker logs in");
    assert!(login.success, "docker login\n{login}\n{}", compose.logs());
    let built = docker.build(image, &image.to_string());
    assert!(built.success, "docker import an image\n{built}");
    let pushed = docker.push(user, image);
    assert!(
        pushed.outcome.success,
        "docker push\n{}\n{}",
        pushed.outcome,
        compose.logs()
    );
    let pulled = docker.pull(user, image);
    assert!(
        pulled.outcome.success,
        "docker pull\n{}\n{}",
        pulled.outcome,
        compose.logs()
    );
    assert_eq!(
        pulled.digest, pushed.digest,
        "the pulled image is the pushed one"
    );
}

#[test]
#[ignore = "needs root, docker.io, docker-compose, debootstrap, curl and Debian's package mirror: run by scripts/test.sh"]
fn compose_up_a_token_from_exec_docker_push_and_pull_down_up_and_the_token_still_works() {
    if !root_user() {
        eprintln!("SKIPPED: no container engine can run here (a private dockerd needs root)");
        return;
    }
    require_binary("docker-compose", "docker-compose");
    require_binary("curl", "curl");
    let started = Instant::now();
    // overlay2 where the kernel has overlayfs (image builds in seconds), else vfs.
    let overlay = fs::read_to_string("/proc/filesystems")
        .map(|text| {
            text.lines()
                .any(|line| line.trim_end().ends_with("\toverlay"))
        })
        .unwrap_or(false);
    let docker = Docker::start_with_storage(if overlay { "overlay2" } else { "vfs" });
    prepare_images(&docker);
    eprintln!("base and tools images ready after {:?}", started.elapsed());

    let work = tempfile::tempdir().unwrap();
    let override_file = write_override(work.path());
    let registry_port = free_loopback_port();
    let regauth_port = free_loopback_port();
    let compose = Compose {
        docker: &docker,
        project: format!("regauthtest{}", std::process::id()),
        files: vec![Path::new(REPO).join("docker-compose.yml"), override_file],
        env: vec![
            ("REGISTRY_PORT".into(), registry_port.to_string()),
            ("REGAUTH_PORT".into(), regauth_port.to_string()),
            (
                "REGAUTH_REALM".into(),
                format!("http://127.0.0.1:{regauth_port}/jwt/auth"),
            ),
        ],
    };
    let up = |what: &str| {
        let outcome = compose.run(&["up", "-d", "--build"], BUILD_TIMEOUT);
        assert!(
            outcome.success,
            "docker-compose up ({what})\n{outcome}\n{}",
            compose.logs()
        );
        assert!(
            wait_for_status(
                &format!("http://127.0.0.1:{regauth_port}/-/health"),
                "200",
                Duration::from_secs(120)
            ),
            "regauth never answered /-/health ({what})\n{}",
            compose.logs()
        );
        assert!(
            wait_for_status(
                &format!("http://127.0.0.1:{registry_port}/v2/"),
                "401",
                Duration::from_secs(120)
            ),
            "the registry never asked for a token at /v2/ ({what})\n{}",
            compose.logs()
        );
    };
    up("first");
    eprintln!("compose up after {:?}", started.elapsed());

    compose.regauth(&["group", "create", "acme"]);
    compose.regauth(&["project", "create", "acme/web"]);
    let created = compose.regauth(&[
        "deploy-token",
        "create",
        "--project",
        "acme/web",
        "--name",
        "ci",
        "--scopes",
        "read_registry,write_registry",
        "--json",
    ]);
    let token: Value = serde_json::from_str(created.trim()).expect("deploy-token create --json");
    let user = User::new(
        token["username"].as_str().unwrap(),
        token["token"].as_str().unwrap(),
    );
    let host = format!("127.0.0.1:{registry_port}");
    push_and_pull(
        &docker,
        &user,
        &ImageRef::new(&host, "acme/web/app", "v1"),
        &compose,
    );

    let down = compose.run(&["down", "--timeout", "10"], Duration::from_secs(120));
    assert!(down.success, "docker-compose down\n{down}");
    up("again, on the same volumes");
    // Same token, same signing key (keys volume), same database (pgdata volume): a new push,
    // and the image pushed before the restart is still there (registry volume).
    push_and_pull(
        &docker,
        &user,
        &ImageRef::new(&host, "acme/web/app", "v2"),
        &compose,
    );
    let old = docker.pull(&user, &ImageRef::new(&host, "acme/web/app", "v1"));
    assert!(
        old.outcome.success,
        "pull of the image pushed before down\n{}",
        old.outcome
    );
    eprintln!("compose test done after {:?}", started.elapsed());
}
