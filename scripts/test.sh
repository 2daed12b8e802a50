#!/usr/bin/env bash
# `make test`: lint, every cargo test, the conformance suites against the real binary, and the
# examples. Expects `make guests build` to have run (the Makefile does that first).
set -euo pipefail
cd "$(dirname "$0")/.."
export WEFT_PLUGINS_DIR="$PWD/target/plugins"
WEFT="$PWD/target/debug/weft"

SHARED="${WEFT_SHARED:-$(cd .. && pwd)/shared}"
if [ ! -d "$SHARED/asl-conformance/cases" ]; then
  echo "WARNING: conformance cases not found at $SHARED (set WEFT_SHARED); skipping them" >&2
  export WEFT_SKIP_CONFORMANCE=1
fi

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "guest SDK tests (README example included)"
bash scripts/guests.sh --test -q

step "browser test prerequisites (Debian's chromium + chromium-driver)"
bash scripts/browser-deps.sh
# the browser test fails (instead of skipping) when the browser is missing
export WEFT_BROWSER_TESTS=1

step "cargo test (the web UI's browser test saves screenshots under target/screenshots/)"
cargo test --workspace

step "fuzz the definition parser and the JSONata evaluator for a bounded time (scripts/fuzz.sh)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh

step "boto3 against weft server"
python3 -m pip install --quiet boto3
python3 host/server/tests/boto3_client.py

if [ -z "${WEFT_SKIP_CONFORMANCE:-}" ]; then
  step "ASL (recorded on AWS) and DAG (recorded from Airflow) conformance through the weft binary"
  bash scripts/conformance.sh "$SHARED" "$WEFT" "$WEFT_PLUGINS_DIR"
fi

if [ -x scripts/examples.sh ]; then
  step "examples"
  bash scripts/examples.sh
fi
echo "all tests passed" >&2
