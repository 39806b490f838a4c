#!/usr/bin/env bash
# The registry's notifications under a burst (issue #26): a 50-layer image pushed by 20
# clients at once (skopeo, each with a deploy token of its own) to the real registry
# (Debian's docker-registry, distribution 2.8) configured with the notifications block
# `regauth serve` prints. While the pushes run, the registry's own queue for regauth
# (`Pending` in its /debug/vars) is sampled every 100 ms; the figures are its peak and mean,
# the events per second regauth took, how long after the last push the queue was empty, and
# what the trail holds afterwards (each manifest push, and each blob push or cross-repository
# mount — skopeo mounts blobs it pushed to another repository before — exactly once). The same
# burst, first, to a fresh registry whose notifications go to a receiver that only answers 200:
# the registry's own share of its queue (it sends one event per request, a new connection
# each, while it serves the pushes on the same cores), beside regauth's.
# Then the receiver alone, sent one envelope at a time as the registry sends them (its queue
# delivers serially): envelopes per second and the latency, the capacity to compare with the
# burst's arrival rate.
#
# Runs on this machine, to 127.0.0.1 only. Called by scripts/bench.sh; alone:
#   bash scripts/bench-registry-events.sh
#   CLIENTS=5 LAYERS=10 bash scripts/bench-registry-events.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLIENTS="${CLIENTS:-20}"
LAYERS="${LAYERS:-50}"
LAYER_KB="${LAYER_KB:-64}"
ROOT="$PWD"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
need() { # binary package
    command -v "$1" >/dev/null 2>&1 && return
    as_root apt-get install -y -q "$2" >/dev/null || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$2" >/dev/null; }
}
need docker-registry docker-registry
need skopeo skopeo
need python3 python3
need curl curl
need sqlite3 sqlite3
cargo build --profile dist --quiet --bin regauth
BIN="$ROOT/target/dist/regauth"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    cd "$ROOT"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SECRET="Bearer bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export REGAUTH_DATABASE_URL="sqlite://$WORK/regauth.db?mode=rwc" REGAUTH_KEYS_DIR="$WORK/keys" RUST_LOG=warn
cd "$WORK"
"$BIN" migrate >/dev/null
"$BIN" group create acme >/dev/null
"$BIN" project create acme/web >/dev/null
for i in $(seq 1 "$CLIENTS"); do
    "$BIN" deploy-token create --project acme/web --name "pusher-$i" --scopes read_registry,write_registry --json
done >"$WORK/tokens.jsonl"

REGAUTH_PORT="$(free_port)"
REGAUTH_REGISTRY_EVENTS_SECRET="$SECRET" REGAUTH_LISTEN="127.0.0.1:$REGAUTH_PORT" \
    "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
for _ in $(seq 1 300); do grep -q '^regauth listening' "$WORK/serve.out" && break; sleep 0.1; done
grep -q '^regauth listening' "$WORK/serve.out" || { cat "$WORK/serve.err" >&2; echo "regauth did not start" >&2; exit 1; }

# The image: LAYERS random layers of LAYER_KB each, as an OCI layout.
python3 - "$WORK/image" "$LAYERS" "$LAYER_KB" <<'PY'
import hashlib, io, json, os, sys, tarfile
root, layers, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, digest), "wb").write(data)
    return "sha256:" + digest, len(data)
descriptors, diff_ids = [], []
for n in range(layers):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        content = os.urandom(kb * 1024)
        info = tarfile.TarInfo(f"layer{n}.bin"); info.size = len(content); info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    digest, size = put(out.getvalue())
    descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
    diff_ids.append(digest)
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
config_digest, config_size = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
    "layers": descriptors}).encode()
manifest_digest, manifest_size = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": manifest_digest, "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
    open(os.path.join(root, "index.json"), "w"))
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
PY

# The registry's own share of its queue: the same burst with its notifications sent to a
# receiver that answers 200 and does nothing else (a few lines of Python, like regauth's
# receiver one request at a time), against the same regauth for the logins.
BASELINE_PORT="$(free_port)"
python3 - "$BASELINE_PORT" >"$WORK/baseline.log" 2>&1 <<'PY' &
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
PY
PIDS+=($!)

# Log every client in to a registry (the logins are not part of the burst).
login_all() { # registry port
    local i=0 line user secret
    while read -r line; do
        i=$((i + 1))
        user="$(printf '%s' "$line" | python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])')"
        secret="$(printf '%s' "$line" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
        printf '%s' "$secret" | skopeo login --tls-verify=false --authfile "$WORK/auth-$i.json" -u "$user" --password-stdin "127.0.0.1:$1" >/dev/null
    done <"$WORK/tokens.jsonl"
}

# One burst: a registry of its own (fresh storage) with the notifications block regauth
# printed, sent to NOTIFY_URL; every client pushes at once while the registry's queue is
# sampled. Prints "peak mean samples push_seconds drain_seconds delivered events_per_second".
burst() { # label notify_url
    local label="$1" notify_url="$2" registry_port debug_port registry_pid
    registry_port="$(free_port)"; debug_port="$(free_port)"
    {
        cat <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/storage-$label
http:
  addr: 127.0.0.1:$registry_port
  secret: bench-$registry_port
  debug:
    addr: 127.0.0.1:$debug_port
auth:
  token:
    realm: http://127.0.0.1:$REGAUTH_PORT/jwt/auth
    service: container_registry
    issuer: regauth
    rootcertbundle: $WORK/keys/bundle.crt
YAML
        sed -n '/^notifications:$/,/^[^ ]/p' "$WORK/serve.out" | sed '/^notifications:$/!{/^[^ ]/d}' |
            SECRET="$SECRET" NOTIFY_URL="$notify_url" python3 -c '
import json, os, re, sys
text = sys.stdin.read().replace("\"<the value of registry_events_secret>\"", json.dumps(os.environ["SECRET"]))
print(re.sub(r"url: .*", "url: " + os.environ["NOTIFY_URL"], text, count=1))'
    } >"$WORK/registry-$label.yml"
    grep -q '^notifications:' "$WORK/registry-$label.yml" || { echo "serve printed no notifications block" >&2; exit 1; }
    docker-registry serve "$WORK/registry-$label.yml" >"$WORK/registry-$label.log" 2>&1 &
    registry_pid=$!
    PIDS+=($registry_pid)
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$debug_port/debug/vars" >/dev/null && break; sleep 0.1; done
    pending() { # the registry's queue for regauth: pending events, events delivered
        curl -fs "http://127.0.0.1:$debug_port/debug/vars" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["registry"]["notifications"]["endpoints"]:
    if e["name"] == "regauth":
        print(e["Metrics"]["Pending"], e["Metrics"]["Successes"])'
    }
    login_all "$registry_port"
    local started pushed drained="" failed=0 sampler now_pending delivered samples="$WORK/pending-$label.txt"
    : >"$samples"
    started="$(date +%s.%N)"
    local pushes=()
    for i in $(seq 1 "$CLIENTS"); do
        skopeo copy --quiet --dest-tls-verify=false --authfile "$WORK/auth-$i.json" \
            "oci:$WORK/image:v1" "docker://127.0.0.1:$registry_port/acme/web/app$i:v1" >"$WORK/push-$label-$i.log" 2>&1 &
        pushes+=($!)
    done
    ( while true; do pending >>"$samples" || true; sleep 0.1; done ) &
    sampler=$!
    PIDS+=($sampler)
    for pid in "${pushes[@]}"; do wait "$pid" || failed=$((failed + 1)); done
    pushed="$(date +%s.%N)"
    [ "$failed" -eq 0 ] || { cat "$WORK"/push-"$label"-*.log >&2; echo "$failed pushes failed" >&2; exit 1; }
    # Until the registry's queue is empty (at most 60 s after the last push).
    for _ in $(seq 1 600); do
        read -r now_pending _ < <(pending)
        if [ "$now_pending" = 0 ]; then drained="$(date +%s.%N)"; break; fi
        sleep 0.1
    done
    kill "$sampler" 2>/dev/null || true
    [ -n "$drained" ] || { echo "the registry's queue did not drain within 60 s ($label)" >&2; exit 1; }
    read -r _ delivered < <(pending)
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
    python3 - "$samples" "$started" "$pushed" "$drained" "$delivered" <<'PY'
import sys
samples, started, pushed, drained, delivered = sys.argv[1:]
values = [int(line.split()[0]) for line in open(samples) if line.strip()]
print(max(values or [0]), "%.1f" % (sum(values) / max(len(values), 1)), len(values),
      "%.1f" % (float(pushed) - float(started)), "%.1f" % max(0.0, float(drained) - float(pushed)),
      delivered, "%.0f" % (int(delivered) / (float(drained) - float(started))))
PY
}

report() { # label, then burst's figures
    local label="$1"; shift
    printf '%s: %s events delivered, pushes took %s s (%s events/s), registry queue: peak %s, mean %s over %s samples, empty %s s after the last push' \
        "$label" "$6" "$4" "$7" "$1" "$2" "$3" "$5"
}

# In this shell (not a subshell), so that a failure stops the script and its PIDs are known.
burst baseline "http://127.0.0.1:$BASELINE_PORT/events" >"$WORK/baseline.figures"
burst regauth "http://127.0.0.1:$REGAUTH_PORT/api/v4/container_registry_event/events" >"$WORK/regauth.figures"
read -r -a baseline <"$WORK/baseline.figures"
read -r -a measured <"$WORK/regauth.figures"

# The receiver's own time per envelope (its latency histogram): sum / count.
receiver_ms="$(curl -fs "http://127.0.0.1:$REGAUTH_PORT/metrics" | python3 -c '
import sys
values = {}
for line in sys.stdin:
    if "/api/v4/container_registry_event/events" in line and line.startswith("regauth_http_request_duration_seconds_"):
        name = line.split("{")[0].rsplit("_", 1)[1]
        values[name] = values.get(name, 0) + float(line.split()[-1])
print("%.1f" % (1000 * values.get("sum", 0) / max(values.get("count", 1), 1)))')"

# Everything delivered is recorded within a moment (the inbox's recorder gathers 50 ms).
expected_manifests="$CLIENTS"; expected_blobs=$(( CLIENTS * (LAYERS + 1) ))
for _ in $(seq 1 100); do
    [ "$(sqlite3 "$WORK/regauth.db" 'SELECT COUNT(*) FROM registry_event_inbox')" = 0 ] && break
    sleep 0.1
done
read -r manifests blobs < <(sqlite3 "$WORK/regauth.db" "SELECT
    SUM(action = 'push' AND target_kind = 'manifest'),
    SUM(action IN ('push', 'mount') AND target_kind = 'blob') FROM registry_events" | tr '|' ' ')
echo "registry events burst ($LAYERS layers x $CLIENTS clients, skopeo, registry 2.8, SQLite):" \
    "$(report "to regauth" "${measured[@]}"), receiver ${receiver_ms} ms per envelope (mean);" \
    "$(report "to a receiver that only answers" "${baseline[@]}");" \
    "trail: ${manifests:-0}/$expected_manifests manifest pushes, ${blobs:-0}/$expected_blobs blob pushes and mounts"
[ "${manifests:-0}" -eq "$expected_manifests" ] && [ "${blobs:-0}" -eq "$expected_blobs" ] ||
    { echo "the trail does not hold exactly the pushes" >&2; exit 1; }

first_user="$(head -n1 "$WORK/tokens.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])')"
SECRET="$SECRET" USERNAME="$first_user" python3 - "$REGAUTH_PORT" <<'PY'
import http.client, json, os, sys, time, uuid
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
headers = {"Authorization": os.environ["SECRET"],
           "Content-Type": "application/vnd.docker.distribution.events.v1+json"}
latencies = []
for n in range(2000):
    event = {"id": str(uuid.uuid4()), "timestamp": "2026-12-05T10:00:00Z", "action": "push",
             "target": {"mediaType": "application/octet-stream", "digest": "sha256:%064x" % n,
                        "size": 1, "repository": "acme/web/serial"},
             "request": {"addr": "127.0.0.1:5555", "useragent": "bench"},
             "actor": {"name": os.environ["USERNAME"]}}
    started = time.perf_counter()
    connection.request("POST", "/api/v4/container_registry_event/events",
                       json.dumps({"events": [event]}), headers)
    response = connection.getresponse()
    response.read()
    latencies.append(time.perf_counter() - started)
    if response.status != 200:
        sys.exit(f"envelope {n}: {response.status}")
latencies.sort()
print("registry events receiver alone (one envelope at a time, SQLite): %.0f envelopes/s, p50 %.2f ms, p99 %.2f ms"
      % (len(latencies) / sum(latencies), 1000 * latencies[len(latencies) // 2], 1000 * latencies[len(latencies) * 99 // 100]))
PY
