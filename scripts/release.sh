#!/usr/bin/env bash
# Builds a release of regauth: one statically linked x86_64 Linux binary, and a tarball with
# it, LICENSE, README.md and docs/, plus the tarball's SHA-256 checksum, in dist/.
#
#   bash scripts/release.sh            # dist/regauth-<version>-x86_64-linux.tar.gz (+ .sha256)
#   bash scripts/release.sh --binary   # only dist/regauth (the Dockerfile's build stage)
#
# Static with glibc, not musl: this toolchain has no musl target (and none can be fetched
# here), so the binary is linked with `-C target-feature=+crt-static` for
# x86_64-unknown-linux-gnu. It runs on any x86_64 Linux without shared libraries, with one
# glibc caveat: resolving host names (a PostgreSQL or SMTP host given by name) loads glibc's
# NSS modules at run time, which must be those of the glibc it was built with (Debian 12's
# 2.36 here, as in the image's debian:bookworm-slim base). IP addresses need nothing.
#
# GIT_COMMIT names the commit when there is no git checkout (a source tarball, a container
# build context); otherwise `git rev-parse` does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

binary_only=""
case "${1:-}" in
    "") ;;
    --binary) binary_only=1 ;;
    *) echo "usage: $0 [--binary]" >&2; exit 2 ;;
esac

log() { printf 'release: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# TARGET=x86_64-unknown-linux-musl where that target is installed (`rustup target add`): the
# same checks apply, and no NSS caveat.
TARGET="${TARGET:-x86_64-unknown-linux-gnu}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$VERSION" ] || die "no version in Cargo.toml"

log "building regauth $VERSION for $TARGET, statically linked"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --profile dist --locked --bin regauth --target "$TARGET"
BUILT="${CARGO_TARGET_DIR:-target}/$TARGET/dist/regauth"

# Static, or no release: a binary asking for a loader or shared libraries would fail on a
# system without them. (ldd answers "statically linked" with success for a static-pie.)
command -v readelf >/dev/null 2>&1 || die "readelf (binutils) is needed to check the binary"
if readelf -l "$BUILT" | grep -q 'program interpreter'; then
    die "$BUILT asks for a program interpreter: not static"
fi
if readelf -d "$BUILT" | grep -q '(NEEDED)'; then
    readelf -d "$BUILT" | grep '(NEEDED)' >&2
    die "$BUILT needs shared libraries: not static"
fi
"$BUILT" --version >&2

mkdir -p dist
cp "$BUILT" dist/regauth
strip dist/regauth 2>/dev/null || true
if [ -n "$binary_only" ]; then
    log "dist/regauth ($(du -h dist/regauth | cut -f1))"
    exit 0
fi

NAME="regauth-$VERSION-x86_64-linux"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/$NAME"
cp dist/regauth LICENSE README.md "$STAGE/$NAME/"
cp -r docs "$STAGE/$NAME/docs"
# Reproducible order, owner and times in the archive.
tar --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
    -C "$STAGE" -czf "dist/$NAME.tar.gz" "$NAME"
(cd dist && sha256sum "$NAME.tar.gz" > "$NAME.tar.gz.sha256")
log "dist/$NAME.tar.gz ($(du -h "dist/$NAME.tar.gz" | cut -f1)), binary $(du -h dist/regauth | cut -f1)"
log "checksum: dist/$NAME.tar.gz.sha256 (check with: sha256sum -c $NAME.tar.gz.sha256)"
