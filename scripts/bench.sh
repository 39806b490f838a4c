#!/usr/bin/env bash
# Token endpoint benchmark: prints requests/s and latency for GET /jwt/auth (Basic credentials,
# one pull scope) on a release build, with SQLite and, when REGAUTH_BENCH_POSTGRES_URL is set
# (a database regauth may use), PostgreSQL; for ES256 and RS256 keys.
# Load comes from wrk on this machine, to 127.0.0.1 only, bounded in time.
#
#   bash scripts/bench.sh                 # 10 s per case, 32 connections
#   DURATION=30s CONNECTIONS=64 bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q wrk >/dev/null; else sudo apt-get install -y -q wrk >/dev/null; fi
fi
cargo build --release --quiet --bin regauth
BIN="$PWD/target/release/regauth"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

run_case() {
    local label="$1" database_url="$2" alg="$3"
    local dir="$WORK/$label"
    mkdir -p "$dir"
    export REGAUTH_DATABASE_URL="$database_url" REGAUTH_KEYS_DIR="$dir/keys" REGAUTH_KEY_ALGORITHM="$alg"
    export REGAUTH_LISTEN=127.0.0.1:0 RUST_LOG=${RUST_LOG:-warn}
    (cd "$dir" && "$BIN" migrate >/dev/null)
    local suffix; suffix="$(date +%s%N)"
    (cd "$dir" && "$BIN" group create "bench$suffix" >/dev/null && "$BIN" project create "bench$suffix/web" >/dev/null)
    local created user secret
    created="$(cd "$dir" && "$BIN" deploy-token create --project "bench$suffix/web" --name bench --scopes read_registry --json)"
    user="$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["username"])')"
    secret="$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
    (cd "$dir" && exec "$BIN" serve >"$dir/serve.out" 2>"$dir/serve.err") &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 1 100); do
        port="$(sed -n 's/^regauth listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$dir/serve.out")"
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$dir/serve.err"; echo "server did not start" >&2; exit 1; }
    local auth; auth="$(printf '%s:%s' "$user" "$secret" | base64 -w0)"
    local url="http://127.0.0.1:$port/jwt/auth?service=container_registry&scope=repository:bench$suffix/web:pull"
    curl -fsS -H "Authorization: Basic $auth" "$url" >/dev/null
    local out; out="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Basic $auth" "$url")"
    local rps p50 p99
    rps="$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')"
    p50="$(printf '%s\n' "$out" | awk '$1=="50%" {print $2}')"
    p99="$(printf '%s\n' "$out" | awk '$1=="99%" {print $2}')"
    printf '%-22s %10s req/s   p50 %-9s p99 %s\n' "$label" "$rps" "$p50" "$p99"
    if printf '%s\n' "$out" | grep -q "Non-2xx"; then printf '%s\n' "$out" | grep "Non-2xx"; fi
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

echo "GET /jwt/auth, wrk -c$CONNECTIONS -d$DURATION, $(nproc) cores"
run_case "sqlite es256" "sqlite://$WORK/es.db?mode=rwc" es256
run_case "sqlite rs256" "sqlite://$WORK/rs.db?mode=rwc" rs256
if [ -n "${REGAUTH_BENCH_POSTGRES_URL:-}" ]; then
    run_case "postgres es256" "$REGAUTH_BENCH_POSTGRES_URL" es256
fi
