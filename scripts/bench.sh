#!/usr/bin/env bash
# Token endpoint benchmark (issues #10, #24). Every figure is printed next to two references
# measured in the same run, because ratios survive a noisy machine and absolute figures do
# not: the same case served from `memory://` (the same binary, the database in memory), and
# the shared minimal server (`../shared/bench/ceiling`, CEILING_DIR: actix-web, two workers,
# ring ES256, a digest map, the same JSON answer, nothing else), built into target/ceiling.
# Each case and the minimal server are both up and measured in alternation, A B A B
# (ROUNDS rounds, 2 by default): the ratio to the minimal server is the sum of regauth's
# rates over the sum of the minimal server's, and every round's own ratio is printed too.
#
# Cases: project token and group token (5 levels of groups), 1 and 10 scopes, ES256 and
# RS256, SQLite, PostgreSQL (when REGAUTH_BENCH_POSTGRES_URL names a database regauth may
# use and empty), the token cache on and off, a database of 1,000 tokens and one of 1,000,000
# tokens in 100,000 projects. For each: req/s, p50, p99 (closed loop, wrk), ratio to memory,
# the server's RSS idle and its peak. Then an open-loop run at half the maximum rate (oha -q,
# installed on demand into target/bench-tools) for p99 without coordinated omission, and
# ring's raw RS256 signing rate next to the RS256 endpoint. A federated case: a workload
# identity policy's username with an OIDC token as password (direct mode, the issuer's keys
# cached after the first request), next to the deploy-token case of the same run.
#
# Load runs on this machine, to 127.0.0.1 only, bounded in time. Seeded SQLite databases are
# kept in target/bench/ and reused (delete them to reseed).
#
#   bash scripts/bench.sh                   # 8 s per case, 32 connections
#   DURATION=15s CONNECTIONS=64 bash scripts/bench.sh
#   SIZES="1000" bash scripts/bench.sh      # skip the 1,000,000-token database
#   FEDERATED_ONLY=1 SIZES=1000 bash scripts/bench.sh   # the deploy-token and federated pair only
#   TOKEN_ONLY=1 SIZES=1000 ROUNDS=3 bash scripts/bench.sh  # project and group token against the minimal server only
#   OPEN_LOOP=1 TOKEN_ONLY=1 SIZES=1000 bash scripts/bench.sh  # ... and the open-loop run, beside the minimal server
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-8s}"
OPEN_LOOP_DURATION="${OPEN_LOOP_DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-32}"
SIZES="${SIZES:-1000 1000000}"
ROUNDS="${ROUNDS:-2}"
ROOT="$PWD"
CEILING_DIR="${CEILING_DIR:-$ROOT/../shared/bench/ceiling}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1; then
    as_root apt-get install -y -q wrk >/dev/null || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q wrk >/dev/null; }
fi
command -v python3 >/dev/null 2>&1 || as_root apt-get install -y -q python3 >/dev/null
# The open-loop runs need oha; the federated pair alone does not.
if [ -z "${FEDERATED_ONLY:-}${TOKEN_ONLY:-}" ] || [ -n "${OPEN_LOOP:-}" ]; then . scripts/oha.sh; fi
# The profile the release ships with (Cargo.toml's `dist`: fat LTO, one codegen unit).
cargo build --profile dist --quiet --bin regauth --example rs256_sign_rate --example oidc_fixture
BIN="$ROOT/target/dist/regauth"
# The minimal server: its own lock file, built into this tree's target (the shared directory
# is read-only).
cargo build --release --quiet --locked --manifest-path "$CEILING_DIR/Cargo.toml" --target-dir "$ROOT/target/ceiling"
CEILING_BIN="$ROOT/target/ceiling/release/ceiling"
SEEDS="$ROOT/target/bench"
mkdir -p "$SEEDS"

WORK="$(mktemp -d)"
SERVER_PID=""
CEILING_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$CEILING_PID" ]; then kill "$CEILING_PID" 2>/dev/null || true; wait "$CEILING_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The federated case's issuer: GitHub Actions' URL, its keys from a file (no network); one
# ID token valid for the whole run. Every server of the run trusts it (the deploy-token path
# never looks at it).
BENCH_ISSUER="https://token.actions.githubusercontent.com"
BENCH_AUDIENCE="https://regauth.bench"
WORKLOAD_TOKEN="$("$ROOT/target/dist/examples/oidc_fixture" "$WORK/jwks.json" "$BENCH_ISSUER" "$BENCH_AUDIENCE" 7200)"
export REGAUTH_OIDC_ISSUERS="[{url=\"$BENCH_ISSUER\",kind=\"github\",jwks_file=\"$WORK/jwks.json\"}]"

# --- seeding -----------------------------------------------------------------------------
# The structure through the CLI (groups g1/.../g5, project g1/g2/g3/g4/g5/app, a project
# token and a workload identity policy on it, and a group token on g1), then the bulk by SQL: SIZE-2 more tokens spread over
# projects fill/p<N> (100,000 projects for the large database, SIZE/10 for the small one).
# Writes $dir/tokens.env with the two tokens' credentials and the workload policy's username.
make_structure() {
    local dir="$1" url="$2"
    mkdir -p "$dir"
    (
        cd "$dir"
        export REGAUTH_DATABASE_URL="$url" REGAUTH_KEYS_DIR="$dir/keys" RUST_LOG=error
        "$BIN" migrate >/dev/null
        local path=""
        for level in g1 g2 g3 g4 g5; do
            path="${path:+$path/}$level"
            "$BIN" group create "$path" >/dev/null
        done
        "$BIN" project create "$path/app" >/dev/null
        "$BIN" group create fill >/dev/null
        local project group workload
        project="$("$BIN" deploy-token create --project "$path/app" --name bench-project --scopes read_registry --json)"
        group="$("$BIN" deploy-token create --group g1 --name bench-group --scopes read_registry --json)"
        workload="$("$BIN" workload-identity create --project "$path/app" --name bench-workload \
            --issuer "$BENCH_ISSUER" --audience "$BENCH_AUDIENCE" --condition repository_id=74 \
            --scopes read_registry --json)"
        python3 - "$project" "$group" "$workload" >"$dir/tokens.env" <<'PY'
import json, sys
for name, text in zip(("PROJECT", "GROUP", "WORKLOAD"), sys.argv[1:]):
    token = json.loads(text)
    print(f"{name}_USER='{token['username']}'\n{name}_SECRET='{token.get('token', '')}'")
PY
    )
}

seed_sqlite() {
    local size="$1" file="$SEEDS/sqlite-$size.db" dir="$SEEDS/sqlite-$size"
    local migrations; migrations="$(ls migration/src/m*.rs | wc -l)"
    if [ -f "$file" ] && [ "$(cat "$dir/migrations" 2>/dev/null)" = "$migrations" ]; then return; fi
    rm -rf "$file" "$file-wal" "$file-shm" "$dir"
    echo "seeding $file with $size tokens ..." >&2
    make_structure "$dir" "sqlite://$file?mode=rwc"
    python3 - "$file" "$size" <<'PY'
import hashlib, sqlite3, sys
path, size = sys.argv[1], int(sys.argv[2])
projects = 100_000 if size >= 1_000_000 else max(1, size // 10)
db = sqlite3.connect(path)
(fill,) = db.execute("SELECT id FROM namespaces WHERE full_path = 'fill'").fetchone()
(created,) = db.execute("SELECT created_at FROM namespaces WHERE id = ?", (fill,)).fetchone()
(base,) = db.execute("SELECT MAX(id) FROM namespaces").fetchone()
db.execute("BEGIN")
db.executemany(
    "INSERT INTO namespaces (id, kind, parent_id, path, full_path, name, created_at) VALUES (?, 'project', ?, ?, ?, ?, ?)",
    ((base + 1 + p, fill, f"p{p}", f"fill/p{p}", f"p{p}", created) for p in range(projects)),
)
db.executemany(
    "INSERT INTO deploy_tokens (namespace_id, name, token_digest, read_repository, read_registry, write_registry, "
    "read_virtual_registry, write_virtual_registry, read_package_registry, write_package_registry, revoked, created_at, created_by) "
    "VALUES (?, 'fill', ?, 0, 1, 0, 0, 0, 0, 0, 0, ?, 'bench')",
    ((base + 1 + i % projects, hashlib.sha256(f"bench-fill-{i}".encode()).hexdigest(), created) for i in range(size - 2)),
)
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
PY
    echo "$migrations" >"$dir/migrations"
}

seed_postgres() {
    local size="$1" url="$2" dir="$WORK/pg-seed"
    echo "seeding PostgreSQL with $size tokens ..." >&2
    make_structure "$dir" "$url"
    local projects=$(( size >= 1000000 ? 100000 : (size / 10 > 0 ? size / 10 : 1) ))
    psql -q -v ON_ERROR_STOP=1 "$url" <<SQL >/dev/null
BEGIN;
INSERT INTO namespaces (kind, parent_id, path, full_path, name, created_at)
  SELECT 'project', f.id, 'p' || p, 'fill/p' || p, 'p' || p, now()
  FROM generate_series(0, $projects - 1) p, (SELECT id FROM namespaces WHERE full_path = 'fill') f;
INSERT INTO deploy_tokens (namespace_id, name, token_digest, read_repository, read_registry, write_registry,
  read_virtual_registry, write_virtual_registry, read_package_registry, write_package_registry, revoked, created_at, created_by)
  SELECT n.id, 'fill', encode(sha256(('bench-fill-' || i)::bytea), 'hex'), false, true, false, false, false, false, false, false, now(), 'bench'
  FROM generate_series(0, $size - 3) i
  JOIN namespaces n ON n.full_path = 'fill/p' || (i % $projects);
COMMIT;
-- Now, not during the measurements: a bulk insert this size wakes autovacuum, which otherwise
-- ran on the same two cores during the first PostgreSQL case.
VACUUM (ANALYZE);
SQL
}

# --- one case ------------------------------------------------------------------------------
rss_kb() { awk -v key="$2" '$1 == key":" {print $2}' "/proc/$1/status"; }
to_ms() { # wrk latency (e.g. 812.00us, 3.21ms, 1.02s) in ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

start_server() { # url alg cache_capacity keys_dir
    local url="$1" alg="$2" capacity="$3" keys="$4"
    local log="$WORK/serve.out"
    : >"$log"
    REGAUTH_DATABASE_URL="$url" REGAUTH_KEYS_DIR="$keys" REGAUTH_KEY_ALGORITHM="$alg" \
        REGAUTH_TOKEN_CACHE_CAPACITY="$capacity" REGAUTH_LISTEN=127.0.0.1:0 RUST_LOG="${RUST_LOG:-warn}" \
        "$BIN" serve >"$log" 2>"$WORK/serve.err" &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 1 600); do
        PORT="$(sed -n 's/^regauth listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")"
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { cat "$WORK/serve.err" >&2; echo "server did not start" >&2; exit 1; }
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

# The minimal server with one token: user, secret, the project its scopes must fall under.
start_ceiling() {
    CEILING_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$CEILING_BIN" "127.0.0.1:$CEILING_PORT" "$1" "$2" "$3" >"$WORK/ceiling.out" 2>&1 &
    CEILING_PID=$!
    for _ in $(seq 1 100); do grep -q '^ceiling listening' "$WORK/ceiling.out" && break; sleep 0.05; done
    grep -q '^ceiling listening' "$WORK/ceiling.out" || { cat "$WORK/ceiling.out" >&2; echo "the minimal server did not start" >&2; exit 1; }
}
stop_ceiling() { kill "$CEILING_PID"; wait "$CEILING_PID" 2>/dev/null || true; CEILING_PID=""; }

declare -A RATE
# label url alg capacity token(project|group|workload) scopes(1|10) [ceiling-label]
run_case() {
    local label="$1" url="$2" alg="$3" capacity="$4" kind="$5" nscopes="$6" ceiling="${7:-}" seed_dir="$8"
    # shellcheck disable=SC1091
    . "$seed_dir/tokens.env"
    local user secret
    case "$kind" in
        group) user="$GROUP_USER"; secret="$GROUP_SECRET" ;;
        workload) user="$WORKLOAD_USER"; secret="$WORKLOAD_TOKEN" ;;
        *) user="$PROJECT_USER"; secret="$PROJECT_SECRET" ;;
    esac
    mkdir -p "$WORK/keys-$alg"
    start_server "$url" "$alg" "$capacity" "$WORK/keys-$alg"
    local query="service=container_registry" i
    for i in $(seq 1 "$nscopes"); do query="$query&scope=repository:g1/g2/g3/g4/g5/app/img$i:pull"; done
    URL="http://127.0.0.1:$PORT/jwt/auth?$query"
    AUTH="Basic $(printf '%s:%s' "$user" "$secret" | base64 -w0)"
    # The JWT's access claim must grant pull on every requested repository.
    curl -fsS -H "Authorization: $AUTH" "$URL" | python3 -c '
import base64, json, sys
payload = json.load(sys.stdin)["token"].split(".")[1]
access = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["access"]
sys.exit(0 if len(access) == int(sys.argv[1]) and all("pull" in a["actions"] for a in access) else 1)
' "$nscopes" || { echo "$label: pull not granted" >&2; exit 1; }
    # The minimal server, with the same credentials, answering the same URL (its project:
    # the token's own, which every requested repository is under).
    local project="g1/g2/g3/g4/g5/app"
    [ "$kind" = group ] && project="g1"
    start_ceiling "$user" "$secret" "$project"
    local ceiling_url="http://127.0.0.1:$CEILING_PORT/jwt/auth?$query"
    sleep 0.5
    local idle; idle="$(rss_kb "$SERVER_PID" VmRSS)"
    # A B A B: regauth, the minimal server, regauth, ...; p50 and p99 are regauth's last run's.
    local out rps=0 rps_round min_sum=0 min_round rounds=() errors="" round
    for round in $(seq 1 "$ROUNDS"); do
        out="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: $AUTH" "$URL")"
        rps_round="$(printf '%s\n' "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
        errors="${errors}$(printf '%s\n' "$out" | awk '/Non-2xx/ {print $NF}')"
        min_round="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: $AUTH" "$ceiling_url" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
        rps=$((rps + rps_round)); min_sum=$((min_sum + min_round))
        rounds+=("$(awk -v a="$rps_round" -v b="$min_round" 'BEGIN { printf "%d/%d=%.2f", a, b, a / b }')")
    done
    # Kept for open_loop with the server (KEEP_SERVER=1), at CEILING_URL.
    CEILING_URL="$ceiling_url"
    if [ "${KEEP_SERVER:-}" != 1 ]; then stop_ceiling; fi
    local peak; peak="$(rss_kb "$SERVER_PID" VmHWM)"
    local p50 p99 minimal
    p50="$(to_ms "$(printf '%s\n' "$out" | awk '$1=="50%" {print $2}')")"
    p99="$(to_ms "$(printf '%s\n' "$out" | awk '$1=="99%" {print $2}')")"
    minimal=$((min_sum / ROUNDS)); rps=$((rps / ROUNDS))
    RATE["$label"]="$rps"
    local ratio="-"
    if [ -n "$ceiling" ] && [ -n "${RATE[$ceiling]:-}" ]; then
        ratio="$(awk -v a="$rps" -v b="${RATE[$ceiling]}" 'BEGIN { printf "%.2f", a / b }')"
    fi
    local of_minimal; of_minimal="$(awk -v a="$rps" -v b="$minimal" 'BEGIN { printf "%.2f", a / b }')"
    printf '%-34s %8s req/s  p50 %6s ms  p99 %6s ms  of memory %5s  of minimal %5s (%s; minimal %s req/s)  RSS idle %3d MB peak %3d MB%s\n' \
        "$label" "$rps" "$p50" "$p99" "$ratio" "$of_minimal" "${rounds[*]}" "$minimal" "$((idle / 1024))" "$((peak / 1024))" "${errors:+  non-2xx $errors}"
    if [ "${KEEP_SERVER:-}" != 1 ]; then stop_server; fi
}

# label: the server started by the last run_case (KEEP_SERVER=1). The maximum is measured
# again with oha itself (closed loop), since oha costs more CPU per request than wrk on the
# same cores; then oha holds half that rate open loop (-q, --latency-correction: requests
# leave on schedule whether or not earlier ones answered, so queueing shows in the latency),
# for OPEN_LOOP_DURATION (20 s), three times. The first half second of a run (oha opening
# its connections and threads on the cores the server uses) has latencies of 5-10 ms; in an
# 8 s run that alone is ~1% of the requests and decides the p99, so the runs are long enough
# for the p99 to describe the steady rate, each run is printed and the median p99 is the
# figure.
open_loop() {
    local label="$1" max rate rps p50 p99 bad round p99s=()
    read -r _ _ max _ _ < <("$OHA" --no-tui --output-format json -z "$DURATION" -c "$CONNECTIONS" -H "Authorization: $AUTH" "$URL" | oha_summary)
    rate=$(( max / 2 ))
    local min_p50 min_p99 min_p99s=()
    for round in 1 2 3; do
        read -r _ bad rps p50 p99 < <("$OHA" --no-tui --output-format json -z "$OPEN_LOOP_DURATION" -q "$rate" --latency-correction -c "$CONNECTIONS" -H "Authorization: $AUTH" "$URL" | oha_summary)
        # The minimal server at the same rate, right after: the machine's own tail latency.
        read -r _ _ _ min_p50 min_p99 < <("$OHA" --no-tui --output-format json -z "$OPEN_LOOP_DURATION" -q "$rate" --latency-correction -c "$CONNECTIONS" -H "Authorization: $AUTH" "$CEILING_URL" | oha_summary)
        printf '%-34s %8s req/s  p50 %6s ms  p99 %6s ms  (open loop, run %d, at half of oha closed-loop %s req/s%s; minimal server at that rate: p50 %s ms, p99 %s ms)\n' \
            "$label open loop" "$rps" "$p50" "$p99" "$round" "$max" "$( [ "$bad" -gt 0 ] && echo ", non-2xx/errors $bad")" "$min_p50" "$min_p99"
        p99s+=("$p99"); min_p99s+=("$min_p99")
    done
    printf '%-34s p99 median of 3 runs: %s ms (minimal server: %s ms)\n' "$label open loop" \
        "$(printf '%s\n' "${p99s[@]}" | sort -n | sed -n 2p)" "$(printf '%s\n' "${min_p99s[@]}" | sort -n | sed -n 2p)"
    stop_ceiling
    stop_server
}

# The RS256 endpoint against ring's raw RS256 signing rate on every core (examples/
# rs256_sign_rate.rs, the same key). This machine's speed drifts by 10-20% within a minute, so
# the two are measured in alternation, raw / endpoint / raw ..., each endpoint run against the
# mean of the raw runs either side of it; the figure is the median of three rounds. Runs on
# the server the last run_case kept (KEEP_SERVER=1) with its URL and credentials.
rs256_against_raw() {
    local key raw_before raw_after rps ratio ratios=() round
    key="$(ls "$WORK"/keys-rs256/*.key | head -n1)"
    raw_rate() { "$ROOT/target/dist/examples/rs256_sign_rate" "$key" 4 "$1" | sed 's/.*=//'; }
    printf 'ring raw RS256, one thread: %s signatures/s\n' "$(raw_rate 1)"
    raw_before="$(raw_rate "$(nproc)")"
    for round in 1 2 3; do
        rps="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: $AUTH" "$URL" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
        raw_after="$(raw_rate "$(nproc)")"
        ratio="$(awk -v e="$rps" -v a="$raw_before" -v b="$raw_after" 'BEGIN { printf "%.2f", 2 * e / (a + b) }')"
        printf 'RS256 round %d: endpoint %s req/s, ring raw on %d cores %s and %s signatures/s around it: %s\n' \
            "$round" "$rps" "$(nproc)" "$raw_before" "$raw_after" "$ratio"
        ratios+=("$ratio")
        raw_before="$raw_after"
    done
    printf 'RS256 endpoint over ring raw RS256 (all cores, median of 3 rounds): %s\n' \
        "$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)"
    stop_ceiling
    stop_server
}

echo "GET /jwt/auth: wrk -t2 -c$CONNECTIONS -d$DURATION, $(nproc) cores, $(date -u +%FT%TZ)"
echo "of memory: req/s over the same case with memory:// in this run;"
echo "of minimal: over the minimal server ($CEILING_DIR) measured in alternation with it, $ROUNDS rounds (each round regauth/minimal=ratio)"
for size in $SIZES; do
    seed_sqlite "$size"
    file="$SEEDS/sqlite-$size.db"; seed="$SEEDS/sqlite-$size"
    mem="memory://$file"; sql="sqlite://$file"
    t="${size} tokens"
    echo "--- $t"
    run_case "memory  project 1 es256 ($t)" "$mem" es256 10000 project 1 "" "$seed"
    run_case "sqlite  project 1 es256 ($t)" "$sql" es256 10000 project 1 "memory  project 1 es256 ($t)" "$seed"
    if [ "$size" = 1000 ] && [ -z "${TOKEN_ONLY:-}" ]; then
        # Federated (direct mode) over the deploy-token case of this run: the ratio is the figure.
        run_case "sqlite  federated 1 es256 ($t)" "$sql" es256 10000 workload 1 "sqlite  project 1 es256 ($t)" "$seed"
        awk -v a="${RATE[sqlite  federated 1 es256 ($t)]}" -v b="${RATE[sqlite  project 1 es256 ($t)]}" \
            'BEGIN { printf "federated (direct mode, keys cached) over deploy token, same run: %.2f (target: at least 0.80)\n", a / b }'
    fi
    if [ -n "${TOKEN_ONLY:-}" ]; then
        if [ -n "${OPEN_LOOP:-}" ]; then
            KEEP_SERVER=1 run_case "sqlite  open loop base" "$sql" es256 10000 project 1 "memory  project 1 es256 ($t)" "$seed"
            open_loop "sqlite  open loop base"
        fi
        run_case "memory  group5 1 es256 ($t)" "$mem" es256 10000 group 1 "" "$seed"
        run_case "sqlite  group5 1 es256 ($t)" "$sql" es256 10000 group 1 "memory  group5 1 es256 ($t)" "$seed"
        if [ -n "${REGAUTH_BENCH_POSTGRES_URL:-}" ]; then
            PGOPTIONS='--client-min-messages=warning' psql -q "$REGAUTH_BENCH_POSTGRES_URL" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
            seed_postgres "$size" "$REGAUTH_BENCH_POSTGRES_URL"
            run_case "postgres project 1 es256 ($t)" "$REGAUTH_BENCH_POSTGRES_URL" es256 10000 project 1 "memory  project 1 es256 ($t)" "$WORK/pg-seed"
            run_case "postgres group5 1 es256 ($t)" "$REGAUTH_BENCH_POSTGRES_URL" es256 10000 group 1 "memory  group5 1 es256 ($t)" "$WORK/pg-seed"
        fi
        continue
    fi
    if [ -n "${FEDERATED_ONLY:-}" ]; then continue; fi
    run_case "sqlite  project 1 es256 nocache ($t)" "$sql" es256 0 project 1 "memory  project 1 es256 ($t)" "$seed"
    if [ "$size" = 1000 ]; then
        run_case "memory  group5 1 es256" "$mem" es256 10000 group 1 "" "$seed"
        run_case "sqlite  group5 1 es256" "$sql" es256 10000 group 1 "memory  group5 1 es256" "$seed"
        run_case "memory  project 10 es256" "$mem" es256 10000 project 10 "" "$seed"
        run_case "sqlite  project 10 es256" "$sql" es256 10000 project 10 "memory  project 10 es256" "$seed"
        run_case "memory  group5 10 es256" "$mem" es256 10000 group 10 "" "$seed"
        run_case "sqlite  group5 10 es256" "$sql" es256 10000 group 10 "memory  group5 10 es256" "$seed"
        run_case "memory  project 1 rs256" "$mem" rs256 10000 project 1 "" "$seed"
        KEEP_SERVER=1 run_case "sqlite  project 1 rs256" "$sql" rs256 10000 project 1 "memory  project 1 rs256" "$seed"
        rs256_against_raw
        KEEP_SERVER=1 run_case "memory  open loop base" "$mem" es256 10000 project 1 "" "$seed"
        open_loop "memory  open loop base"
        KEEP_SERVER=1 run_case "sqlite  open loop base" "$sql" es256 10000 project 1 "memory  open loop base" "$seed"
        open_loop "sqlite  open loop base"
    fi
    if [ -n "${REGAUTH_BENCH_POSTGRES_URL:-}" ]; then
        PGOPTIONS='--client-min-messages=warning' psql -q "$REGAUTH_BENCH_POSTGRES_URL" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
        seed_postgres "$size" "$REGAUTH_BENCH_POSTGRES_URL"
        run_case "postgres project 1 es256 ($t)" "$REGAUTH_BENCH_POSTGRES_URL" es256 10000 project 1 "memory  project 1 es256 ($t)" "$WORK/pg-seed"
        run_case "postgres group5 1 es256 ($t)" "$REGAUTH_BENCH_POSTGRES_URL" es256 10000 group 1 "" "$WORK/pg-seed"
        run_case "postgres project 1 es256 nocache ($t)" "$REGAUTH_BENCH_POSTGRES_URL" es256 0 project 1 "memory  project 1 es256 ($t)" "$WORK/pg-seed"
    fi
done
for variant in "" " nocache"; do
    small="${RATE[sqlite  project 1 es256$variant (1000 tokens)]:-}"
    large="${RATE[sqlite  project 1 es256$variant (1000000 tokens)]:-}"
    if [ -n "$small" ] && [ -n "$large" ]; then
        awk -v a="$small" -v b="$large" -v v="${variant:- cache}" \
            'BEGIN { printf "cost of 1,000,000 tokens over 1,000 (SQLite,%s): %.2fx\n", v, a / b }'
    fi
done
# A 1,000-token secret-scanning report (issue #25): its own script, also runnable alone.
if [ -n "${TOKEN_ONLY:-}${FEDERATED_ONLY:-}" ]; then exit 0; fi
if [ -z "${SKIP_LEAK_REPORT:-}" ]; then bash scripts/bench-leak-report.sh; fi
if [ -z "${SKIP_RESTRICTIONS:-}" ]; then bash scripts/bench-restrictions.sh; fi
# The registry's notifications under a push burst (issue #26): its own script, also runnable alone.
if [ -z "${SKIP_REGISTRY_EVENTS:-}" ]; then bash scripts/bench-registry-events.sh; fi
