#!/usr/bin/env bash
# Soak test (not part of CI): token requests on SQLite at 80% of the measured maximum rate
# (the open-loop maximum, see below) for 10 minutes, with an open-loop load generator (oha
# with -q and --latency-correction: requests leave on schedule whether or not earlier ones have answered, so a slowdown shows up in the
# latencies instead of lowering the load). Prints, minute by minute, the requests, errors,
# p50/p99 and the server's resident memory, then checks:
#   zero errors, p99 within 2x of the first minute's, RSS within +-10% of the first minute's.
# Traffic goes to 127.0.0.1 only.
#
#   bash scripts/soak.sh                       # 10 min at 80% of max
#   MINUTES=3 bash scripts/soak.sh             # shorter
#   RATE=2000 bash scripts/soak.sh             # a fixed rate instead of 80% of the measured max
#   PROFILE=debug bash scripts/soak.sh         # the debug build (no release build needed)
#
# Needs python3; oha is installed into target/bench-tools on first use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MINUTES="${MINUTES:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
PROFILE="${PROFILE:-release}"
export PATH="$PATH:$HOME/.cargo/bin"

. scripts/oha.sh
if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --bin regauth
    BIN="$PWD/target/release/regauth"
else
    cargo build --quiet --bin regauth
    BIN="$PWD/target/debug/regauth"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export REGAUTH_DATABASE_URL="sqlite://$WORK/regauth.db?mode=rwc" REGAUTH_KEYS_DIR="$WORK/keys"
export REGAUTH_LISTEN=127.0.0.1:0 RUST_LOG="${RUST_LOG:-warn}"
cd "$WORK"
"$BIN" migrate >/dev/null
"$BIN" group create soak >/dev/null
"$BIN" project create soak/web >/dev/null
created="$("$BIN" deploy-token create --project soak/web --name soak --scopes read_registry --json)"
user="$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["username"])')"
secret="$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
port=""
for _ in $(seq 1 100); do
    port="$(sed -n 's/^regauth listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/serve.out")"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$WORK/serve.err"; echo "error: server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port/jwt/auth?service=container_registry&scope=repository:soak/web:pull"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }


echo "regauth soak: $BIN ($PROFILE), SQLite, GET /jwt/auth (Basic, one pull scope), $(nproc) cores, load $(uptime | sed 's/.*load average: //') before start"
if [ -z "${RATE:-}" ]; then
    # The maximum this generator can drive open loop: first the closed-loop rate, then what
    # the server answers when offered that rate open loop. Usually the same; lower when the
    # open-loop generator's own cost on the same cores limits it, and then the soak follows.
    read -r _ _ closed _ _ < <("$OHA" -z 15s -c "$CONNECTIONS" --no-tui --output-format json -a "$user:$secret" "$url" | oha_summary)
    read -r answered _ _ _ _ < <("$OHA" -z 15s -q "$closed" --latency-correction -c "$CONNECTIONS" --no-tui --output-format json -a "$user:$secret" "$url" | oha_summary)
    max=$((answered / 15))
    RATE=$((max * 8 / 10))
    echo "measured maximum: $closed req/s closed loop, $max req/s answered open loop when offered that ($CONNECTIONS connections, 15 s each); soak rate: $RATE req/s (80% of the open-loop maximum)"
    sleep 5 # let the queue of the saturating run drain
else
    echo "soak rate: $RATE req/s (given)"
fi

printf '%-6s %9s %7s %8s %9s %9s %10s\n' minute requests errors "req/s" "p50 ms" "p99 ms" "RSS MiB"
first_p99="" first_rss="" total_errors=0 worst_ratio=0 worst_rss=0
for minute in $(seq 1 "$MINUTES"); do
    read -r total errors rps p50 p99 < <("$OHA" -z 60s -q "$RATE" --latency-correction -c "$CONNECTIONS" \
        --no-tui --output-format json -a "$user:$secret" "$url" | oha_summary)
    rss="$(rss_kib)"
    printf '%-6s %9s %7s %8s %9s %9s %10s\n' "$minute" "$total" "$errors" "$rps" "$p50" "$p99" "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k/1024}')"
    total_errors=$((total_errors + errors))
    if [ -z "$first_p99" ]; then first_p99="$p99"; first_rss="$rss"; continue; fi
    worst_ratio="$(awk -v a="$p99" -v b="$first_p99" -v w="$worst_ratio" 'BEGIN {r = (b > 0) ? a / b : 0; print (r > w) ? r : w}')"
    worst_rss="$(awk -v a="$rss" -v b="$first_rss" -v w="$worst_rss" 'BEGIN {d = (a - b) * 100 / b; if (d < 0) d = -d; print (d > w) ? d : w}')"
done

verdict=0
echo
printf 'errors: %s (want 0)\n' "$total_errors"
printf 'worst p99 / first minute p99: %.2fx (want <= 2)\n' "$worst_ratio"
printf 'largest RSS change vs first minute: %.1f%% (want <= 10%%)\n' "$worst_rss"
[ "$total_errors" -eq 0 ] || verdict=1
awk -v r="$worst_ratio" 'BEGIN {exit !(r <= 2)}' || verdict=1
awk -v d="$worst_rss" 'BEGIN {exit !(d <= 10)}' || verdict=1
if [ "$verdict" -eq 0 ]; then echo "soak: passed"; else echo "soak: FAILED"; fi
exit "$verdict"
