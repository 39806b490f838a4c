#!/usr/bin/env bash
# The project's test command. Run from anywhere: `bash scripts/test.sh`.
#
# 1. Installs what the end-to-end tests need, if missing (Debian/Ubuntu, via apt-get):
#    docker-registry, skopeo, curl, python3, the other real clients (podman, buildah, containerd + ctr,
#    docker.io's dockerd + docker, chromium + chromedriver and axe-core (npm) for the web-page tests; apt brings
#    runc, crun, uidmap, conmon, iptables and a container network stack as their
#    dependencies), a PostgreSQL server (initdb/pg_ctl),
#    git, nginx and fcgiwrap for the forward-auth tests (nginx in front of git http-backend;
#    nginx also fronts two replicas), docker-compose and debootstrap (the compose test builds
#    its images from a local Debian base; cached under target/tmp/compose-cache).
#    The e2e tests start their own containerd and dockerd on private sockets; nothing here
#    starts or enables a system service. The Python SMTP server aiosmtpd (via pip) serves the
#    expiry-notification tests; npm's oidc-provider (via npm ci, with nodejs and npm) is the
#    real OpenID provider of the workload identity tests.
# 2. Starts a throwaway PostgreSQL on 127.0.0.1 (unless REGAUTH_TEST_POSTGRES_URL is set)
#    and exports REGAUTH_TEST_POSTGRES_URL; it is stopped and removed on exit.
# 3. Runs all tests (SQLite, the default), then again against PostgreSQL
#    (REGAUTH_TEST_DATABASE=postgres) what can fail differently there: the api binary (every
#    store path, the outage and replica tests) and the end-to-end tests whose state lives in
#    the database (replicas, registry events, workload identity). The browser, compose, fuzz
#    and forward-auth binaries and the other e2e tests do not depend on the database and run
#    once. Both runs include the tests marked `#[ignore = "needs ..."]` (they need the tools
#    installed in step 1; plain `cargo test` skips them). Both runs always happen; the script
#    fails if either fails. Each phase prints its wall time.
#
# Environment:
#   REGAUTH_TEST_POSTGRES_URL   use this PostgreSQL instead of starting one
#   REGAUTH_TEST_SKIP_CARGO=1   only install + start PostgreSQL, run no tests (debugging)
#   REGAUTH_TEST_NO_INSTALL=1   never call apt-get; fail if something is missing
#   extra arguments             passed to both test runs (e.g. a test name filter)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. dependencies
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
    # no stdin in CI: never wait for a password prompt
    if [ -n "${CI:-}" ] || [ ! -t 0 ]; then SUDO=(sudo -n); fi
else
    SUDO=()
fi

pg_bindir() {
    # newest /usr/lib/postgresql/<version>/bin holding both initdb and pg_ctl
    local d best=""
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then best="$d"; fi
    done
    printf '%s' "$best"
}

# binary the e2e tests run -> Debian package that provides it
E2E_BINARIES=(
    docker-registry:docker-registry
    skopeo:skopeo
    podman:podman
    buildah:buildah
    containerd:containerd
    ctr:containerd
    dockerd:docker.io
    docker:docker.io
    curl:curl
    git:git
    nginx:nginx
    fcgiwrap:fcgiwrap
    docker-compose:docker-compose
    debootstrap:debootstrap
    chromium:chromium
    chromedriver:chromium-driver
    node:nodejs
    npm:npm
    setpriv:util-linux
    setsid:util-linux
)

# nginx and fcgiwrap live in /usr/sbin, which a non-root PATH often lacks
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
add_missing() {
    local p
    for p in "${missing[@]}"; do [ "$p" = "$1" ] && return 0; done
    missing+=("$1")
}
for entry in "${E2E_BINARIES[@]}"; do
    have "${entry%%:*}" || add_missing "${entry#*:}"
done
command -v python3 >/dev/null 2>&1 || add_missing python3
python3 -m pip --version >/dev/null 2>&1 || add_missing python3-pip
if [ -z "${REGAUTH_TEST_POSTGRES_URL:-}" ] && [ -z "$(pg_bindir)" ]; then
    missing+=(postgresql)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ -n "${REGAUTH_TEST_NO_INSTALL:-}" ]; then
        die "missing packages: ${missing[*]} (REGAUTH_TEST_NO_INSTALL is set)"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing: ${missing[*]}; no apt-get here, install them by hand"
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "missing: ${missing[*]}; not root and no sudo: run 'apt-get install ${missing[*]}' as root"
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "${missing[@]}"
    for entry in "${E2E_BINARIES[@]}"; do
        have "${entry%%:*}" ||
            die "${entry%%:*} still missing after installing ${entry#*:}"
    done
fi

# The expiry-notification tests send mail to a real SMTP server: Python's aiosmtpd.
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    if [ -n "${REGAUTH_TEST_NO_INSTALL:-}" ]; then
        die "missing Python module aiosmtpd (REGAUTH_TEST_NO_INSTALL is set)"
    fi
    log "installing aiosmtpd (pip)"
    export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
    # a Debian system Python refuses plain pip installs (PEP 668): then into the user site
    python3 -m pip install --quiet aiosmtpd ||
        python3 -m pip install --quiet --user --break-system-packages aiosmtpd ||
        die "could not install aiosmtpd: run 'python3 -m pip install aiosmtpd' (or apt-get install python3-aiosmtpd)"
    python3 -c 'import aiosmtpd' || die "aiosmtpd still cannot be imported after installing it"
fi

# The leaked-token test finds a token in a git repository with a real scanner: Yelp's
# detect-secrets (PyPI), in its own virtual environment under target/.
DETECT_SECRETS="target/detect-secrets/bin/detect-secrets"
if [ ! -x "$DETECT_SECRETS" ]; then
    if [ -n "${REGAUTH_TEST_NO_INSTALL:-}" ]; then
        die "missing detect-secrets in target/detect-secrets (REGAUTH_TEST_NO_INSTALL is set)"
    fi
    log "installing detect-secrets (pip, into target/detect-secrets)"
    python3 -m venv target/detect-secrets &&
        target/detect-secrets/bin/pip install --quiet --disable-pip-version-check detect-secrets==1.5.0 ||
        die "could not install detect-secrets: run 'python3 -m venv target/detect-secrets && target/detect-secrets/bin/pip install detect-secrets==1.5.0'"
fi
export REGAUTH_TEST_DETECT_SECRETS="$PWD/$DETECT_SECRETS"

# The browser tests check every page with axe-core, from npm, kept in target/axe-core.
AXE_JS="target/axe-core/node_modules/axe-core/axe.min.js"
if [ ! -f "$AXE_JS" ]; then
    if [ -n "${REGAUTH_TEST_NO_INSTALL:-}" ]; then
        die "missing axe-core in target/axe-core (REGAUTH_TEST_NO_INSTALL is set)"
    fi
    log "installing axe-core (npm)"
    npm install --prefix target/axe-core --no-audit --no-fund --silent axe-core@4 ||
        die "could not install axe-core: run 'npm install --prefix target/axe-core axe-core@4'"
    [ -f "$AXE_JS" ] || die "axe-core still missing after installing it"
fi
# The workload identity tests log in with tokens of a real OpenID provider: npm's
# oidc-provider, pinned by test-support/oidc-provider/package-lock.json.
OIDC_PROVIDER_DIR="$(dirname "$0")/../test-support/oidc-provider"
if [ ! -d "$OIDC_PROVIDER_DIR/node_modules/oidc-provider" ]; then
    if [ -n "${REGAUTH_TEST_NO_INSTALL:-}" ]; then
        die "missing npm oidc-provider in $OIDC_PROVIDER_DIR (REGAUTH_TEST_NO_INSTALL is set)"
    fi
    log "installing oidc-provider (npm)"
    (cd "$OIDC_PROVIDER_DIR" && npm ci --no-audit --no-fund --loglevel=error) ||
        die "could not install oidc-provider: run 'npm ci' in $OIDC_PROVIDER_DIR"
fi

# ---------------------------------------------------------------- 2. PostgreSQL
PG_TMP=""
PG_BIN=""
PG_STARTED=""

as_pg() {
    # postgres refuses to run as root: run the server tools as the `postgres` user then
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$PG_TMP" && runuser -u postgres -- "$@")
    else
        (cd "$PG_TMP" && "$@")
    fi
}

cleanup() {
    local status=$?
    set +e
    if [ -n "$PG_STARTED" ]; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1 ||
            as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1
    fi
    if [ -n "$PG_TMP" ]; then rm -rf "$PG_TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "${REGAUTH_TEST_POSTGRES_URL:-}" ]; then
    PG_BIN="$(pg_bindir)"
    [ -n "$PG_BIN" ] || die "no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 ||
            die "running as root but there is no 'postgres' user (apt-get install postgresql creates it)"
    fi
    # under /tmp, not $TMPDIR: the postgres user must be able to reach it
    PG_TMP="$(mktemp -d /tmp/regauth-pg.XXXXXX)"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PG_TMP"; fi
    log "initdb in $PG_TMP"
    as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$PG_TMP/initdb.log" 2>&1 || { cat "$PG_TMP/initdb.log" >&2; die "initdb failed"; }

    PG_PORT=""
    for _ in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 30000))
        port_in_use "$port" && continue
        if as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/postgres.log" -w -t 60 \
            -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            PG_PORT="$port"
            PG_STARTED=1
            break
        fi
        log "PostgreSQL did not start on port $port, retrying"
    done
    if [ -z "$PG_PORT" ]; then
        cat "$PG_TMP/postgres.log" >&2 || true
        die "could not start PostgreSQL"
    fi
    export REGAUTH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    log "PostgreSQL running: $REGAUTH_TEST_POSTGRES_URL"
    if command -v psql >/dev/null 2>&1; then
        psql "$REGAUTH_TEST_POSTGRES_URL" -Atqc 'select 1' >/dev/null ||
            die "PostgreSQL started but 'select 1' failed"
    fi
else
    log "using REGAUTH_TEST_POSTGRES_URL from the environment"
fi

# ---------------------------------------------------------------- versions
first_line() { "$@" 2>&1 | head -n1 || true; }
if [ -n "$PG_BIN" ]; then
    V_PG="$(first_line "$PG_BIN/postgres" --version) (throwaway, $REGAUTH_TEST_POSTGRES_URL)"
elif command -v psql >/dev/null 2>&1; then
    V_PG="$(psql "$REGAUTH_TEST_POSTGRES_URL" -Atc 'select version()' 2>&1 | head -n1 || true) (external)"
else
    V_PG="external, version unknown (no psql)"
fi
V_REG="$(first_line docker-registry --version)"
V_SKOPEO="$(first_line skopeo --version)"
V_PODMAN="$(first_line podman --version)"
V_BUILDAH="$(first_line buildah --version)"
V_CONTAINERD="$(first_line containerd --version)"
V_DOCKERD="$(first_line dockerd --version)"
V_DOCKER="$(first_line docker --version) ($(command -v docker))"
V_GIT="$(first_line git --version)"
V_NGINX="$(first_line "$(command -v nginx || echo /usr/sbin/nginx)" -v)"
V_CHROMIUM="$(chromium --version 2>/dev/null | head -n1 || true) / $(first_line chromedriver --version)"
V_SMTP="aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)' 2>&1 | head -n1 || true)"
print_versions() {
    log "PostgreSQL: $V_PG"
    log "registry:   $V_REG"
    log "skopeo:     $V_SKOPEO"
    log "podman:     $V_PODMAN"
    log "buildah:    $V_BUILDAH"
    log "containerd: $V_CONTAINERD"
    log "dockerd:    $V_DOCKERD"
    log "docker CLI: $V_DOCKER"
    log "git:        $V_GIT"
    log "nginx:      $V_NGINX"
    log "SMTP:       $V_SMTP"
    log "browser:    $V_CHROMIUM"
}
print_versions

if [ -n "${REGAUTH_TEST_SKIP_CARGO:-}" ]; then
    log "REGAUTH_TEST_SKIP_CARGO is set: running no tests"
    exit 0
fi

# ---------------------------------------------------------------- 3. tests
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"

# What the PostgreSQL pass runs (nextest filter): see step 3 above.
POSTGRES_TESTS='binary(api) | (binary(e2e) & (test(/^replicas::/) | test(/^registry_events::/) | test(/^workload_identity::/)))'

phase_started=0
phase_time() { printf '%dm%02ds' $(( (SECONDS - phase_started) / 60 )) $(( (SECONDS - phase_started) % 60 )); }
log "set-up (packages, PostgreSQL, npm and pip tools): $(phase_time) since the script started"

if cargo nextest --version >/dev/null 2>&1; then
    RUNNER=nextest
    run_all() { cargo nextest run --workspace --no-fail-fast --run-ignored all "$@"; }
    run_integration() { cargo nextest run --workspace --no-fail-fast --run-ignored all --no-tests=warn -E "$POSTGRES_TESTS" "$@"; }
else
    RUNNER="cargo test"
    log "cargo-nextest not found: falling back to cargo test (cargo install cargo-nextest --locked for nicer output)"
    run_all() { cargo test --workspace --no-fail-fast "$@" -- --include-ignored; }
    run_integration() {
        cargo test --no-fail-fast --test api "$@" -- --include-ignored &&
            cargo test --no-fail-fast --test e2e "$@" -- --include-ignored replicas registry_events workload_identity
    }
fi

log "run 1/2: all tests, SQLite ($RUNNER)"
sqlite_status=0
phase_started=$SECONDS
run_all "$@" || sqlite_status=$?
sqlite_time=$(phase_time)

log "run 2/2: the database-dependent tests, PostgreSQL ($RUNNER)"
pg_status=0
phase_started=$SECONDS
REGAUTH_TEST_DATABASE=postgres run_integration "$@" || pg_status=$?
pg_time=$(phase_time)

verdict() { if [ "$1" -eq 0 ]; then echo "passed"; else echo "FAILED (exit $1)"; fi; }
echo
log "summary"
log "SQLite run (all tests):                   $(verdict "$sqlite_status") in $sqlite_time"
log "PostgreSQL run (database-dependent tests): $(verdict "$pg_status") in $pg_time"
print_versions
if [ "$sqlite_status" -ne 0 ] || [ "$pg_status" -ne 0 ]; then
    exit 1
fi
