#!/usr/bin/env bash
# Long fuzzing run of the property tests in tests/fuzz.rs (not part of every CI run, which
# tries 64 cases per property). Optimised build; each round draws fresh random input.
#
#   bash scripts/fuzz.sh                      # 1 round of 100000 cases per property
#   PROPTEST_CASES=1000000 FUZZ_ROUNDS=5 bash scripts/fuzz.sh
#   bash scripts/fuzz.sh key_loader           # only the properties whose name matches
#
# A failing case is shrunk, printed, and saved to tests/fuzz.proptest-regressions (commit
# it): every later run replays it first. Turn it into a named regression test and fix it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PROPTEST_CASES="${PROPTEST_CASES:-100000}"
rounds="${FUZZ_ROUNDS:-1}"
cargo build --release --tests --test fuzz
start=$(date +%s)
for round in $(seq 1 "$rounds"); do
    printf '==> fuzz round %s/%s: %s cases per property\n' "$round" "$rounds" "$PROPTEST_CASES" >&2
    cargo test --release --test fuzz -- --test-threads="${FUZZ_THREADS:-2}" "$@"
done
printf '==> fuzz: %s round(s) of %s cases per property ran clean in %s s\n' \
    "$rounds" "$PROPTEST_CASES" "$(( $(date +%s) - start ))" >&2
