#!/usr/bin/env bash
# The set-up `make demo` needs, and only that: the one binary the demo runs and the tool that
# turns guests into components, in one cargo invocation so they share every dependency
# (`cargo build -p weft-cli --bin weft -p weft-plugins --bin weft-componentize`, not the whole
# workspace with its test targets), then the guest toolchain and the Rust operators
# (scripts/guests.sh, which finds its tool already built), then the Python DAG parser component
# weft-airflow-py and the other Python/JavaScript operators (scripts/polyglot.sh), so `.py` DAG
# files in $WEFT_HOME/dags load out of the box. Each phase says what it does and roughly how
# long is left; the estimates are the last run's own times on this machine (kept in
# target/.demo-timings), else typical times on a 2-core machine. Idempotent: a second run is a
# few seconds of no-ops.
set -euo pipefail
cd "$(dirname "$0")/.."

TIMINGS=target/.demo-timings
mkdir -p target
PHASES=(weft guests python)
declare -A WHAT=(
  [weft]="the weft binary and the componentize tool (cargo's progress bar below)"
  [guests]="guest toolchain (Debian's rustc-web, lld, wasi-libc when missing) and the Rust operators"
  [python]="the Python DAG parser (weft-airflow-py) and the Python/JavaScript operators (componentize-py from PyPI)"
)
declare -A TYPICAL=([weft]=540 [guests]=120 [python]=90)   # seconds, a fresh 2-core machine
estimate() { # PHASE -> seconds
  local s
  s="$(sed -n "s/^$1 //p" "$TIMINGS" 2>/dev/null | tail -n1)"
  echo "${s:-${TYPICAL[$1]}}"
}
fmt() { local s=$1; if [ "$s" -ge 60 ]; then echo "~$(( (s + 30) / 60 )) min"; else echo "~${s} s"; fi; }

run_phase() { # PHASE COMMAND...
  local phase=$1 i left=0 p t0 took; shift
  for p in "${PHASES[@]}"; do
    if [ "$left" -gt 0 ] || [ "$p" = "$phase" ]; then left=$(( left + $(estimate "$p") )); fi
  done
  for i in "${!PHASES[@]}"; do [ "${PHASES[$i]}" = "$phase" ] && break; done
  printf '\n\033[1m[%d/%d] %s\033[0m  (this step %s, set-up left %s)\n' \
    "$((i + 1))" "${#PHASES[@]}" "${WHAT[$phase]}" "$(fmt "$(estimate "$phase")")" "$(fmt "$left")" >&2
  t0=$SECONDS
  "$@"
  took=$(( SECONDS - t0 ))
  printf '      done in %d s\n' "$took" >&2
  # keep the time of runs that did real work, so a later fresh run estimates from it
  if [ "$took" -ge 20 ]; then
    { grep -v "^$phase " "$TIMINGS" 2>/dev/null || true; echo "$phase $took"; } > "$TIMINGS.new"
    mv "$TIMINGS.new" "$TIMINGS"
  fi
}

run_phase weft cargo build -p weft-cli --bin weft -p weft-plugins --bin weft-componentize
run_phase guests bash scripts/guests.sh
# Python DAG files need the parser component; without Python/pip/npm the rest of the demo still
# runs, and this says what is missing
polyglot() {
  bash scripts/polyglot.sh || echo "demo-setup: warning: the Python DAG parser was not built (see above); .py DAG files will be import errors until \`bash scripts/polyglot.sh\` succeeds" >&2
}
run_phase python polyglot
