#!/usr/bin/env bash
# `make demo`: installs the example plugins into the embedded store ($WEFT_HOME, default ./.weft),
# runs example pipelines through the sandbox, then serves the API (and UI) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
WEFT="$PWD/target/debug/weft"
export WEFT_HOME="${WEFT_HOME:-$PWD/.weft}"
mkdir -p "$WEFT_HOME/dags"
cp examples/dags/*.yaml "$WEFT_HOME/dags/"
mkdir -p "$WEFT_HOME/roles"
cp examples/roles/*.json "$WEFT_HOME/roles/"

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "Packing the plugins into a bundle and installing it into $WEFT_HOME"
"$WEFT" plugin pack target/plugins -o target/demo-bundle.zip >/dev/null
"$WEFT" plugin install --force target/demo-bundle.zip
"$WEFT" plugin list

say "An ASL state machine: read a CSV in the sandbox (granted by role read-data), Map over its rows"
"$WEFT" run examples/csv-map.asl.json --input '{}'

say "An AWS console definition (lambda:invoke) running on a plugin"
"$WEFT" run examples/lambda-console-sample.asl.json --input @examples/lambda-console-sample.input.json

say "A hostile operator: an infinite loop stopped by its fuel limit"
"$WEFT" invoke hostile-spin --fuel 50000000 || true

say "An Airflow-style DAG run (one task fails after a retry; cleanup runs with trigger_rule all_done)"
"$WEFT" dag test daily_orders 2024-03-05 || true

if "$WEFT" server --help >/dev/null 2>&1; then
  say "Serving the Step Functions API (and the web UI) on http://127.0.0.1:8470 — Ctrl-C stops it"
  for f in examples/order-processing examples/csv-map examples/parallel-fanout; do
    cp "$f.asl.json" "$WEFT_HOME/" ; done
  exec "$WEFT" server --listen 127.0.0.1:8470 --no-auth
fi
