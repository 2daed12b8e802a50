#!/usr/bin/env bash
# Runs the weft-asl fuzz targets (host/asl/fuzz: the definition parser and the JSONata
# evaluator) for a bounded time each: FUZZ_SECONDS (default 60). Installs cargo-fuzz when
# missing. On a stable toolchain the sanitizer flags cargo-fuzz needs are unlocked with
# RUSTC_BOOTSTRAP=1. Exits non-zero when a target finds a crash (the input is kept under
# host/asl/fuzz/artifacts/).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
targets=(parse_definition jsonata_eval)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

cd "$root/host/asl"
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    # work on a copy so new inputs found in CI do not dirty the tree
    work="$(mktemp -d)"
    cp -r "$corpus/." "$work/"
    echo "fuzz: $t for ${seconds}s"
    # -rss_limit_mb: an input that makes the evaluator allocate past its budgets fails;
    # the stack limit is the default thread's, smaller than the server's
    cargo fuzz run "$t" "$work" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=20
    rm -rf "$work"
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
