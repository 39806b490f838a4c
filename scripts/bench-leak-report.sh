#!/usr/bin/env bash
# A GitHub secret-scanning report of 1,000 leaked tokens (issue #25), answered in how long?
# GitHub's partner program waits 30 s for an answer. The report is signed with a key this
# script makes (openssl, ECDSA P-256), every token is real, so every one is looked up, revoked
# in its own transaction with its audit record, and answered in the feedback.
#
#   bash scripts/bench-leak-report.sh        (called at the end of scripts/bench.sh too)
#   REGAUTH_BENCH_LEAK_TOKENS=5000 bash scripts/bench-leak-report.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOKENS="${REGAUTH_BENCH_LEAK_TOKENS:-1000}"
cargo build --profile dist --quiet --bin regauth
BIN="$ROOT/target/dist/regauth"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
export REGAUTH_DATABASE_URL="sqlite://$WORK/regauth.db?mode=rwc"
export REGAUTH_KEYS_DIR="$WORK/keys"
unset REGAUTH_CONFIG

"$BIN" migrate >/dev/null 2>&1
"$BIN" group create bench >/dev/null
"$BIN" project create bench/app >/dev/null
printf 'leak report: creating %s deploy tokens...\n' "$TOKENS"
: >"$WORK/tokens.jsonl"
for i in $(seq 1 "$TOKENS"); do
    "$BIN" deploy-token create --project bench/app --name "leak-$i" --scopes read_registry --json >>"$WORK/tokens.jsonl"
done

# GitHub's key list, with a key of our own, and the signed report.
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/github.key" 2>/dev/null
openssl ec -in "$WORK/github.key" -pubout -out "$WORK/github.pub" 2>/dev/null
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
pem = open(f"{work}/github.pub").read()
json.dump({"public_keys": [{"key_identifier": "bench", "key": pem, "is_current": True}]},
          open(f"{work}/keys.json", "w"))
tokens = [json.loads(line)["token"] for line in open(f"{work}/tokens.jsonl") if line.strip()]
report = [{"token": t, "type": "regauth_deploy_token", "url": f"https://github.com/acme/app/blob/main/f{i}", "source": "commit"}
          for i, t in enumerate(tokens)]
open(f"{work}/report.json", "w").write(json.dumps(report))
PY
SIGNATURE="$(openssl dgst -sha256 -sign "$WORK/github.key" "$WORK/report.json" | base64 -w0)"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
REGAUTH_LISTEN="127.0.0.1:$PORT" REGAUTH_GITHUB_SECRET_SCANNING_KEYS_FILE="$WORK/keys.json" \
    "$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/-/readiness" >/dev/null 2>&1 && break
    sleep 0.1
done

SECONDS_TAKEN="$(curl -s -o "$WORK/answer.json" -w '%{time_total}' -X POST \
    -H 'Content-Type: application/json' \
    -H 'Github-Public-Key-Identifier: bench' \
    -H "Github-Public-Key-Signature: $SIGNATURE" \
    --data-binary "@$WORK/report.json" \
    "http://127.0.0.1:$PORT/-/secret-scanning/github")"
python3 - "$WORK/answer.json" "$TOKENS" "$SECONDS_TAKEN" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
tokens, seconds = int(sys.argv[2]), float(sys.argv[3])
real = sum(1 for finding in answer if finding.get("label") == "true_positive")
print(f"leak report: {tokens} tokens answered in {seconds:.2f} s "
      f"({real} revoked; GitHub waits 30 s)")
if real != tokens:
    sys.exit(f"leak report: only {real} of {tokens} tokens were revoked")
PY
