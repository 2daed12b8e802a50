#!/usr/bin/env bash
# Runs every example: each examples/NAME.asl.json with NAME.input.json must produce
# NAME.expected.json (an output, or {"Error","Cause"} for a failing run); each DAG with an
# examples/dags/ID.expected.json must give those task states. Plugins come from a bundle
# packed from target/plugins, so packing and installing are exercised too.
set -euo pipefail
cd "$(dirname "$0")/.."
WEFT="$PWD/target/debug/weft"
export WEFT_HOME="$PWD/target/examples-home"
mkdir -p "$WEFT_HOME"
"$WEFT" plugin pack target/plugins -o target/examples-bundle.zip >/dev/null
"$WEFT" plugin install --force target/examples-bundle.zip >/dev/null
"$WEFT" plugin verify >/dev/null

compare() { # expected-file actual-json
  python3 - "$1" "$2" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1])); got = json.loads(sys.argv[2])
def eq(a, b):
    if isinstance(a, bool) or isinstance(b, bool): return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)): return a == b
    if isinstance(a, dict) and isinstance(b, dict): return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list): return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b))
    return a == b
if not eq(exp, got):
    print("    expected: %s\n    got:      %s" % (json.dumps(exp, sort_keys=True), json.dumps(got, sort_keys=True))); sys.exit(1)
PY
}

# A local ingest endpoint for examples/dags/etl_daily (127.0.0.1 only).
ingest='
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        n = len(json.loads(body or b"{}").get("orders", []))
        out = json.dumps({"accepted": n}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 18471), H).serve_forever()
'
python3 -c "$ingest" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 0.3

fail=0; n=0
for def in examples/*.asl.json examples/polyglot/*.asl.json; do
  name=$(basename "$def" .asl.json); dir=$(dirname "$def"); n=$((n+1))
  "$WEFT" validate "$def" >/dev/null
  out=$("$WEFT" run "$def" --input "@$dir/$name.input.json" || true)
  if compare "$dir/$name.expected.json" "$out"; then echo "ok   $name" >&2; else echo "FAIL $name" >&2; fail=1; fi
done
for exp in examples/dags/*.expected.json examples/polyglot/*.dag.expected.json; do
  id=$(basename "$exp" .expected.json); id=${id%.dag}; n=$((n+1))
  out=$("$WEFT" dag test "$id" 2024-03-05 --json --dags "$(dirname "$exp")" 2>/dev/null || true)
  states=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(json.dumps({"state": r["state"], "tasks": {k: v["state"] for k, v in r["tasks"].items()}}))' "$out")
  if compare "$exp" "$states"; then echo "ok   dag $id" >&2; else echo "FAIL dag $id" >&2; fail=1; fi
  # The same DAG through the persistent scheduler (`dag trigger`) must agree.
  if [ "$(dirname "$exp")" = examples/dags ]; then
    n=$((n+1))
    out=$("$WEFT" dag trigger "$id" --date "2024-03-05T$(date -u +%H:%M:%S.%N | cut -c1-15)Z" --json --dags examples/dags 2>/dev/null || true)
    states=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(json.dumps({"state": r["state"], "tasks": {k: v["state"] for k, v in r["tasks"].items()}}))' "$out")
    if compare "$exp" "$states"; then echo "ok   dag trigger $id" >&2; else echo "FAIL dag trigger $id" >&2; fail=1; fi
  fi
done
# examples/server: callbacks need the durable server; a reviewer answers through `weft sm`
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SERVER_HOME=$(mktemp -d)
cp -r "$WEFT_HOME/blobs" "$WEFT_HOME/db" "$SERVER_HOME/" 2>/dev/null || true
WEFT_HOME="$SERVER_HOME" "$WEFT" server --listen "127.0.0.1:$PORT" --no-auth 2>"$SERVER_HOME/server.log" &
SERVER_PID=$!
trap 'kill $server $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; rm -rf "$SERVER_HOME"' EXIT
# only weft's own answer counts: a bare connect may reach itself before the server listens
for _ in $(seq 100); do [ "$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1).read().decode())" 2>/dev/null)" = ok ] && break; sleep 0.1; done
sm() { WEFT_HOME="$SERVER_HOME" "$WEFT" sm --endpoint "http://127.0.0.1:$PORT" "$@"; }
for def in examples/server/*.asl.json; do
  name=$(basename "$def" .asl.json); dir=$(dirname "$def"); n=$((n+1))
  sm create "$name" "$def" >/dev/null
  arn=$(sm start "$name" --name run --input "@$dir/$name.input.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["executionArn"])')
  token=""
  for _ in $(seq 100); do
    token=$(sm history "$arn" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["events"]:
    if e["type"] == "TaskScheduled":
        print(json.loads(e["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]); break')
    [ -n "$token" ] && break; sleep 0.1
  done
  sm send-success "$token" --output "@$dir/$name.answer.json" >/dev/null
  out=""
  for _ in $(seq 100); do
    d=$(sm describe "$arn")
    st=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$d")
    if [ "$st" != RUNNING ]; then out=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("output", "null"))' "$d"); break; fi
    sleep 0.1
  done
  if compare "$dir/$name.expected.json" "$out"; then echo "ok   server $name (callback answered with weft sm)" >&2; else echo "FAIL server $name" >&2; fail=1; fi
done
[ "$fail" = 0 ] || { echo "examples failed" >&2; exit 1; }
echo "$n examples passed" >&2
