#!/usr/bin/env bash
# Distributed Map over a local bucket: a 100,000-item JSON Lines source read by ItemReader, one
# Pass per item, results exported by ResultWriter (COMPACT JSONL, then NONE JSON). Prints
# wall time, items/s and peak memory of each `weft run`. Usage: scripts/bench-buckets.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
WEFT="${WEFT_BIN:-$PWD/target/release/weft}"
[ -x "$WEFT" ] || WEFT="$PWD/target/debug/weft"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home/buckets/data/in" "$WORK/home/roles"
python3 - "$WORK" "$N" <<'EOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/home/buckets/data/in/items.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": i, "name": f"item-{i}"}) + "\n")
json.dump({"buckets": {"data": {"local": "buckets/data"}}}, open(f"{work}/home/buckets.json", "w"))
json.dump({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                          "Resource": "arn:aws:s3:::data/*"}]}, open(f"{work}/home/roles/bench.json", "w"))
for t, o in [("COMPACT", "JSONL"), ("NONE", "JSON")]:
    json.dump({"StartAt": "Rows", "States": {"Rows": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                       "Parameters": {"Bucket": "data", "Key": "in/items.jsonl"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "data", "Prefix": "out"},
                         "WriterConfig": {"OutputType": o, "Transformation": t}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"id.$": "$.id"}, "End": True}}},
        "End": True}}}, open(f"{work}/rows-{t}.asl.json", "w"))
EOF
for t in COMPACT NONE; do
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$WORK/mem" env WEFT_HOME="$WORK/home" "$WEFT" run "$WORK/rows-$t.asl.json" --role bench --input '{}' >/dev/null
  end=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[3]:8} {int(sys.argv[4])} items in {s:.2f} s: {int(sys.argv[4])/s:,.0f} items/s read and written, peak {int(sys.argv[5])//1024} MiB')" "$start" "$end" "$t" "$N" "$(cat "$WORK/mem")"
done
