#!/usr/bin/env bash
# `make test`: the guests, one build of the workspace, lint, every cargo test, the conformance
# suites against the real binary, and the examples. Prints a table of each step's time at the end
# (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
# CI builds from scratch once: incremental artifacts would only cost disk and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export WEFT_PLUGINS_DIR="$PWD/target/plugins"
WEFT="$PWD/target/debug/weft"

SHARED="${WEFT_SHARED:-$(cd .. && pwd)/shared}"
if [ ! -d "$SHARED/asl-conformance/cases" ]; then
  echo "WARNING: conformance cases not found at $SHARED (set WEFT_SHARED); skipping them" >&2
  export WEFT_SKIP_CONFORMANCE=1
fi

STEP_NAMES=() STEP_SECS=() STEP_T0=0 SUITE_T0=$SECONDS
close_step() {
  if [ "${#STEP_NAMES[@]}" -gt "${#STEP_SECS[@]}" ]; then STEP_SECS+=($((SECONDS - STEP_T0))); fi
}
step() {
  close_step
  STEP_NAMES+=("$*") STEP_T0=$SECONDS
  printf '\n==> %s\n' "$*" >&2
}
timing_table() {
  local status=${1:-$?} i
  close_step
  printf '\n%-8s  %s\n' "seconds" "step (make test)" >&2
  for i in "${!STEP_SECS[@]}"; do printf '%8d  %s\n' "${STEP_SECS[$i]}" "${STEP_NAMES[$i]}" >&2; done
  printf '%8d  %s\n' "$((SECONDS - SUITE_T0))" "total$([ "$status" = 0 ] || echo " (failed)")" >&2
}
PG_STARTED=
on_exit() {
  local status=$?
  if [ -n "$PG_STARTED" ]; then bash scripts/pg.sh stop || true; fi
  timing_table "$status"
}
trap on_exit EXIT

step "guests: Rust operators (scripts/guests.sh)"
bash scripts/guests.sh
step "guests: Python and JavaScript operators (scripts/polyglot.sh)"
bash scripts/polyglot.sh
step "build the workspace once (every later step reuses it)"
cargo build --workspace --all-targets

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

step "PostgreSQL for the storage backend tests (scripts/pg.sh; stopped at the end)"
if [ -z "${WEFT_TEST_PG:-}" ]; then
  # a cluster of this run's own, stopped at the end (or when this script dies)
  PG_STARTED=1
  export WEFT_PG_STATE="${TMPDIR:-/tmp}/weft-pg-make-test-$$"
  eval "$(bash scripts/pg.sh start --stop-with $$)"
fi
# (the PostgreSQL fixtures fail instead of skipping when the cluster is missing)
export WEFT_TEST_PG WEFT_REQUIRE_PG=1

# A Python venv at $1; Debian splits the venv module out (python3-venv): installed when missing.
venv() {
  python3 -m venv "$1" 2>/dev/null || {
    rm -rf "$1"
    $([ "$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    python3 -m venv "$1"
  }
}

step "moto's S3 server for the bucket wire tests (a venv under target/)"
if [ ! -x target/moto-venv/bin/moto_server ]; then
  venv target/moto-venv
  target/moto-venv/bin/pip install --quiet 'moto[server]'
fi
# (host/engine/tests/buckets_s3.rs starts it on a free port; it fails instead of skipping here)
export WEFT_MOTO_SERVER="$PWD/target/moto-venv/bin/moto_server" WEFT_REQUIRE_MOTO=1

step "cargo test (the web UI's browser test saves screenshots under target/screenshots/)"
cargo test --workspace

step "the server's API suites again, each server on a fresh PostgreSQL database"
WEFT_SERVER_TEST_DB=postgres cargo test --workspace --test api --test sfn_more_api --test map_runs \
  --test security_api --test resource_map_api --test airflow_api --test ui_api \
  --test request_guard --test v1_policy

step "fuzz the definition parser and the JSONata evaluator for a bounded time (scripts/fuzz.sh)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh

step "boto3 against weft server"
python3 -m pip install --quiet boto3
python3 host/server/tests/boto3_client.py

step "apache-airflow-client and airflowctl against weft server (a venv under target/)"
AIRFLOW_VENV="$PWD/target/airflow-client-venv"
[ -x "$AIRFLOW_VENV/bin/python" ] || venv "$AIRFLOW_VENV"
"$AIRFLOW_VENV/bin/pip" install --quiet 'apache-airflow-client>=3,<4' 'apache-airflow-ctl'
AIRFLOWCTL="$AIRFLOW_VENV/bin/airflowctl" "$AIRFLOW_VENV/bin/python" host/server/tests/airflow_api_client.py

step "Python DAG corpus: recordings complete, compare.py checked against a replaying stand-in (no Airflow)"
python3 host/dag/tests/python-dags/test_corpus.py

step "Python DAG corpus: weft's runs against Airflow 3's recordings (compare.py; known gaps listed in it)"
PYDAG_HOME="$(mktemp -d "${TMPDIR:-/tmp}/weft-pydags-XXXXXX")"
WEFT_HOME="$PYDAG_HOME" "$WEFT" plugin install --force "$WEFT_PLUGINS_DIR/weft-airflow-py.wasm" >/dev/null
WEFT_HOME="$PYDAG_HOME" "$WEFT" plugin install --force "$WEFT_PLUGINS_DIR/echo.wasm" >/dev/null
# Airflow's recordings were made with dagbag_import_timeout = 5 s
WEFT_DAGBAG_IMPORT_TIMEOUT=5 python3 host/dag/tests/python-dags/compare.py --weft "$WEFT" \
  --home "$PYDAG_HOME" --isolate --allow-expected
rm -rf "$PYDAG_HOME"

if [ -z "${WEFT_SKIP_CONFORMANCE:-}" ]; then
  step "ASL (recorded on AWS) and DAG (recorded from Airflow) conformance through the weft binary"
  bash scripts/conformance.sh "$SHARED" "$WEFT" "$WEFT_PLUGINS_DIR"
fi

if [ -x scripts/examples.sh ]; then
  step "examples"
  bash scripts/examples.sh
fi
echo "all tests passed" >&2
