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
"$WEFT" plugin install --force target/plugins/hostile/spin.wasm
# the parser of Python DAG files (`.py` in $WEFT_HOME/dags), built by scripts/polyglot.sh
if [ -f target/plugins/weft-airflow-py.wasm ]; then
  "$WEFT" plugin install --force target/plugins/weft-airflow-py.wasm
fi
"$WEFT" plugin list

say "An ASL state machine: read a CSV in the sandbox (granted by role read-data), Map over its rows"
"$WEFT" run examples/csv-map.asl.json --input '{}'

say "An AWS console definition (lambda:invoke) running on a plugin"
"$WEFT" run examples/lambda-console-sample.asl.json --input @examples/lambda-console-sample.input.json

say "A hostile operator: an infinite loop stopped by its fuel limit"
"$WEFT" invoke hostile-spin --fuel 50000000 || true

say "An Airflow-style DAG run (one task fails after a retry; cleanup runs with trigger_rule all_done)"
"$WEFT" dag test daily_orders 2024-03-05 || true

say "DAG runs recorded by the scheduler (shown in the UI's grid): a branching DAG and one that retries"
"$WEFT" dag trigger branching --date 2024-03-05 --dags "$WEFT_HOME/dags" || true
"$WEFT" dag trigger retries --date 2024-03-05 --dags "$WEFT_HOME/dags" || true

PORT="${WEFT_DEMO_PORT:-8470}"
say "Starting weft server on http://127.0.0.1:$PORT (Ctrl-C stops it)"
"$WEFT" server --listen "127.0.0.1:$PORT" --no-auth --dags-paused-at-creation false &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; exit 0' INT TERM
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

sfn() { # ACTION JSON
  curl -s "http://127.0.0.1:$PORT/" -H "X-Amz-Target: AWSStepFunctions.$1" \
    -H 'Content-Type: application/x-amz-json-1.0' -d "$2"; echo
}
for ex in order-processing csv-map parallel-fanout retry-then-catch; do
  def=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "examples/$ex.asl.json")
  sfn CreateStateMachine "{\"name\":\"$ex\",\"definition\":$def,\"roleArn\":\"arn:aws:iam::000000000000:role/demo\"}" >/dev/null
  input=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "examples/$ex.input.json")
  sfn StartExecution "{\"stateMachineArn\":\"arn:aws:states:us-east-1:000000000000:stateMachine:$ex\",\"input\":$input}"
done
# one execution waiting on a callback: answer it from the UI (execution page, "Send task success")
approval='{"StartAt":"Ask","States":{"Ask":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","Parameters":{"QueueUrl":"approvals","MessageBody":{"token.$":"$$.Task.Token","order.$":"$.order"}},"TimeoutSeconds":3600,"Next":"Approved"},"Approved":{"Type":"Pass","End":true}}}'
def=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$approval")
sfn CreateStateMachine "{\"name\":\"approval\",\"definition\":$def}" >/dev/null
sfn StartExecution '{"stateMachineArn":"arn:aws:states:us-east-1:000000000000:stateMachine:approval","name":"order-7","input":"{\"order\":7}"}'
say "Open http://127.0.0.1:$PORT/ — the state machines above have executions; Ctrl-C stops the server."
wait $SERVER
