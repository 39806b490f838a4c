# Sourced by bench.sh and soak.sh: sets OHA to an oha binary (the open-loop load generator),
# installing it into target/bench-tools on first use (a few minutes of compiling).
OHA="$(command -v oha || true)"
if [ -z "$OHA" ]; then
    OHA="$PWD/target/bench-tools/bin/oha"
    if [ ! -x "$OHA" ]; then
        echo "installing oha (open-loop load generator) into target/bench-tools ..." >&2
        cargo install oha --locked --quiet --root "$PWD/target/bench-tools" >&2
    fi
fi

# oha's JSON report on stdin -> "requests errors req/s p50_ms p99_ms". The requests oha cancels
# when -z ends ("aborted due to deadline") are an artefact of stopping the generator, not an
# answer of the server: not errors.
oha_summary() {
    python3 -c '
import json, sys
r = json.load(sys.stdin)
codes = r.get("statusCodeDistribution", {})
errors = sum(n for code, n in codes.items() if code != "200") + sum(
    n for kind, n in r.get("errorDistribution", {}).items() if "deadline" not in kind)
p = r.get("latencyPercentiles", {})
ms = lambda v: "%.2f" % ((v or 0) * 1000)
print(sum(codes.values()), errors, round(r["summary"].get("requestsPerSec", 0)), ms(p.get("p50")), ms(p.get("p99")))
'
}
