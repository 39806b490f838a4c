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
