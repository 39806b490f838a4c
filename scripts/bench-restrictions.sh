#!/usr/bin/env bash
# The token path with and without restrictions (issue #27): one server (release build,
# SQLite, ES256), two project tokens with the same scopes, one with an address allow-list
# (127.0.0.0/8 and nine other blocks), repository patterns and a group allow-list above it.
# The cases run interleaved A B A B ... (ROUNDS pairs) because the machine is noisy; each
# figure is wrk's req/s, then the medians and their ratio. Load goes to 127.0.0.1 only.
#
#   bash scripts/bench-restrictions.sh            # 3 pairs of 6 s, 32 connections
#   ROUNDS=5 DURATION=8s bash scripts/bench-restrictions.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-6s}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-3}"
ROOT="$PWD"
command -v wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --profile dist --quiet --bin regauth
BIN="$ROOT/target/dist/regauth"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export REGAUTH_LISTEN="127.0.0.1:$PORT"
"$BIN" serve >serve.log 2>&1 &
SERVER_PID=$!
until curl -fs -o /dev/null "http://$REGAUTH_LISTEN/-/health"; do sleep 0.2; done
"$BIN" group create acme >/dev/null
"$BIN" project create acme/web >/dev/null
RANGES="10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,198.18.0.0/15,2001:db8::/32,fd00::/8,192.0.2.0/24,203.0.113.0/24,127.0.0.0/8"
"$BIN" group update acme --allow-from "127.0.0.0/8,10.0.0.0/8" >/dev/null
"$BIN" deploy-token create --project acme/web --name plain --scopes read_registry,write_registry --json >plain.json
"$BIN" deploy-token create --project acme/web --name fenced --scopes read_registry,write_registry \
    --allow-from "$RANGES" --repositories "tools/*,**/cache,app" --json >fenced.json
auth() { python3 -c 'import base64,json,sys; t=json.load(open(sys.argv[1])); print("Basic "+base64.b64encode((t["username"]+":"+t["token"]).encode()).decode())' "$1"; }
URL="http://$REGAUTH_LISTEN/jwt/auth?service=container_registry&scope=repository:acme/web/app:pull,push"
# Both grant the same access: the fenced token's patterns admit acme/web/app.
curl -fs -H "Authorization: $(auth plain.json)" "$URL" | grep -q '"token"'
curl -fs -H "Authorization: $(auth fenced.json)" "$URL" | grep -q '"token"'
rate() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: $(auth "$1")" "$URL" | awk '/Requests\/sec/ {print $2}'; }
A=(); B=()
for round in $(seq 1 "$ROUNDS"); do
    a="$(rate plain.json)"; b="$(rate fenced.json)"
    A+=("$a"); B+=("$b")
    printf 'round %d  unrestricted %10s req/s   restricted %10s req/s\n' "$round" "$a" "$b"
done
python3 - "${A[*]}" "${B[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median   unrestricted {ma:10.0f} req/s   restricted {mb:10.0f} req/s   restricted/unrestricted {mb / ma:.3f}")
PY
