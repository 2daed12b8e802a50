#!/usr/bin/env bash
# `make bench`: figures for the performance targets in DESIGN.md (no thresholds asserted).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weft-cli
WEFT="$PWD/target/release/weft"
export WEFT_HOME="$PWD/target/bench-home"
mkdir -p "$WEFT_HOME"
"$WEFT" plugin install --force target/plugins/echo.wasm >/dev/null
echo "== warm/cold plugin invocation, store put/get (weft bench invoke)"
"$WEFT" bench invoke --plugin echo --iterations 20000 --threads 2
echo "== ASL interpreter overhead per sandboxed task (weft bench chain)"
"$WEFT" bench chain
echo "== cost of traces per state: Pass chain and task chain, traced vs untraced (weft bench traces)"
"$WEFT" bench traces
echo "== the built-in HTTP Task per call against a loopback server (weft bench http)"
"$WEFT" bench http --iterations 2000
echo "== Standard durable transitions with group commit: 64 and 128 executions running at once"
"$WEFT" bench standard --iterations 4000 --threads 1
"$WEFT" bench standard --iterations 4000 --threads 2
echo "== the same on PostgreSQL (a throwaway cluster of scripts/pg.sh): 1 node, then 2 nodes of one process"
PG_STATE="${TMPDIR:-/tmp}/weft-pg-bench-$$"
if PG_ENV=$(WEFT_PG_STATE="$PG_STATE" bash scripts/pg.sh start --stop-with $$); then
  eval "$PG_ENV"
  "$WEFT" bench standard --iterations 2000 --threads 2 --db "$WEFT_TEST_PG" --nodes 1
  "$WEFT" bench standard --iterations 2000 --threads 2 --db "$WEFT_TEST_PG" --nodes 2
  WEFT_PG_STATE="$PG_STATE" bash scripts/pg.sh stop
else
  echo "(PostgreSQL could not be started here: skipped)"
fi
echo "== 100,000 executions parked in a Wait: resident memory, then restart and resume time"
"$WEFT" bench idle --iterations 100000
echo "== web UI landing page: executions by status per state machine over 10,000 executions"
"$WEFT" bench summary --iterations 10000
echo "== DAG scheduler: 10,000-task wide/deep DAGs, upstream->downstream latency, 3-year daily catchup"
"$WEFT" bench dag --plugin echo --threads 2
"$WEFT" bench dag --plugin none --threads 2
echo "== remote workers: round trip queued -> result committed, tasks/s with 1 and 2 workers beside local"
"$WEFT" bench remote --iterations 1000
echo "== Python DAG files: parser compile, uncached/cached parse of a 100-task file, a @task try (weft bench python)"
"$WEFT" plugin install --force target/plugins/weft-airflow-py.wasm >/dev/null
"$WEFT" bench python --iterations 200
echo "== Distributed Map over a local bucket: 100,000 JSONL items read, results exported"
WEFT_BIN="$WEFT" bash scripts/bench-buckets.sh
echo "== ASL express engine (cargo bench -p weft-asl)"
cargo bench -p weft-asl --bench express
echo "== DAG run (cargo bench -p weft-dag)"
cargo bench -p weft-dag --bench dag_run
echo "== SigV4 verification per API request (cargo bench -p weft-server --bench sigv4)"
cargo bench -p weft-server --bench sigv4
