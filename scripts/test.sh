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

step "cargo test"
cargo test --workspace

if [ -z "${WEFT_SKIP_CONFORMANCE:-}" ]; then
  step "ASL conformance (recorded on AWS) through the weft binary"
  python3 "$SHARED/asl-conformance/run.py" --weft "$WEFT" -v | tail -25
  step "DAG conformance (recorded from Airflow) through the weft binary"
  python3 "$SHARED/dag-conformance/run.py" --weft "$WEFT" --plugins "$WEFT_PLUGINS_DIR" -v | tail -25
fi

if [ -x scripts/examples.sh ]; then
  step "examples"
  bash scripts/examples.sh
fi
echo "all tests passed" >&2
