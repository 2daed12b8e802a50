#!/usr/bin/env bash
# Build every Python and JavaScript operator (plugins/python/*, plugins/js/*) into a weft
# component with componentize-py / componentize-js, through `weft-polyglot` (the same code as
# `weft plugin build`, host/plugins/src/build.rs).
#
# Outputs:  target/plugins/NAME.wasm + NAME.plugin.json (dq-check, reshape, ...)
#           target/plugins/hostile/NAME.wasm for plugins/*/hostile (py-hostile, js-hostile: one component per language, one attack per call)
# Tools:    componentize-py (pip --target) and componentize-js (npm) installed on first use into
#           $WEFT_POLYGLOT_TOOLS (default target/polyglot-tools); a clear error when PyPI / npm
#           cannot be reached. Needs python3 (with pip) and node/npm on PATH.
# Scratch:  target/polyglot-build (generated entry modules, bundled requirements, stamps).
# No-op (well under 1 s) when nothing changed since the last successful run.
#
# Options: --force (rebuild everything), -q (quieter).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FORCE=0 QUIET=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -q|--quiet) QUIET=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "polyglot: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
say() { echo "polyglot: $*" >&2; }

OUT="$ROOT/target/plugins"
TOOLS="${WEFT_POLYGLOT_TOOLS:-$ROOT/target/polyglot-tools}"
WORK="$ROOT/target/polyglot-build"
STAMP="$WORK/.polyglot-stamp"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/weft-polyglot"
CARGO="${HOST_CARGO:-cargo}"

shopt -s nullglob
operators=(plugins/python/*/ plugins/js/*/)
if [ ${#operators[@]} -eq 0 ]; then say "no operators under plugins/python or plugins/js"; exit 0; fi

# ---- fast path ---------------------------------------------------------------------------
up_to_date() {
  [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ -x "$BIN" ] || return 1
  local newer f
  newer="$(find plugins/python plugins/js guest-sdk/python guest-sdk/js guest-sdk/wit host/plugins/src \
      scripts/polyglot.sh \( -name node_modules -o -name __pycache__ \) -prune -o -type f -newer "$STAMP" -print -quit 2>/dev/null || true)"
  [ -z "$newer" ] || return 1
  while IFS= read -r f; do [ -z "$f" ] || [ -f "$f" ] || return 1; done < "$STAMP"
  return 0
}
if up_to_date; then
  [ "$QUIET" = 1 ] || say "up to date ($(grep -c '\.wasm$' "$STAMP") components)"
  exit 0
fi

# ---- prerequisites -----------------------------------------------------------------------
need() {
  command -v "$1" >/dev/null 2>&1 || { say "error: $1 is not on PATH; $2"; exit 1; }
}
need python3 "install Python 3.10+ with pip (componentize-py runs on it)"
python3 -m pip --version >/dev/null 2>&1 || { say "error: python3 has no pip (apt-get install python3-pip)"; exit 1; }
need npm "install Node.js 18+ with npm (componentize-js runs on it)"

say "building the build tool (cargo build -p weft-plugins --bin weft-polyglot)"
"$CARGO" build -q -p weft-plugins --bin weft-polyglot

mkdir -p "$OUT/hostile" "$TOOLS" "$WORK"
normal=() hostile=()
for d in "${operators[@]}"; do
  case "$(basename "$d")" in
    hostile) hostile+=("$d") ;;
    *) normal+=("$d") ;;
  esac
done
force_arg=()
[ "$FORCE" = 1 ] && force_arg=(--force)
t0=$(date +%s)
outputs="$(mktemp)"
trap 'rm -f "$outputs"' EXIT
run_group() {
  local dest="$1"; shift
  [ $# -gt 0 ] || return 0
  "$BIN" "${force_arg[@]}" --json --out "$dest" --tools "$TOOLS" --work "$WORK" "$@" \
    | python3 -c 'import json,sys
for l in sys.stdin:
    b=json.loads(l); print(b["wasm"]); print(b["sidecar"])
    sys.stderr.write("polyglot: %s %s@%s (%s, %s, %.1f MB)\n" % ("built" if b["rebuilt"] else "up to date:", b["name"], b["version"], b["lang"], b["world"], b["bytes"]/1e6))' \
    >> "$outputs"
}
run_group "$OUT" "${normal[@]}"
run_group "$OUT/hostile" "${hostile[@]}"
cp "$outputs" "$STAMP"
say "done in $(( $(date +%s) - t0 )) s: $(grep -c '\.wasm$' "$STAMP") components"
