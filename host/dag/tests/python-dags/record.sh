#!/usr/bin/env bash
# Re-record what Apache Airflow does with the DAG files in dags/ (see README.md beside this file).
#
#   bash host/dag/tests/python-dags/record.sh            # record everything (~5 min on 2 cores)
#   bash host/dag/tests/python-dags/record.sh --times    # only the parse-time figures
#   bash host/dag/tests/python-dags/record.sh --only py_retries py_callbacks
#
# Installs Apache Airflow $AIRFLOW_VERSION from PyPI into target/airflow-venv (pinned by
# airflow-constraints.txt, the versions this recording was made with; set AIRFLOW_CONSTRAINTS to
# another constraints file, e.g. Airflow's published one, to override), makes a fresh
# AIRFLOW_HOME with a sqlite metadata DB under target/airflow-record-home, and runs record.py
# (states, try numbers, XComs, import errors -> recorded/) and parse_times.py
# (recorded/airflow-parse-times.json). Nothing in the tests needs Airflow: they read recorded/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../.." && pwd)"
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
VENV="${WEFT_AIRFLOW_VENV:-$ROOT/target/airflow-venv}"
HOME_DIR="${WEFT_AIRFLOW_HOME:-$ROOT/target/airflow-record-home}"
CONSTRAINTS="${AIRFLOW_CONSTRAINTS:-$HERE/airflow-constraints.txt}"
PYTHON="${PYTHON:-python3}"

mode=all
only=()
case "${1:-}" in
  --times) mode=times ;;
  --only) shift; mode=only; only=("$@") ;;
  "") ;;
  *) echo "usage: record.sh [--times | --only DAG_ID...]" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/airflow" ]; then
  echo "== installing apache-airflow==$AIRFLOW_VERSION into $VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    apt-get install -y python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --upgrade pip
  if [ -f "$CONSTRAINTS" ]; then
    "$VENV/bin/pip" install -q "apache-airflow==$AIRFLOW_VERSION" --constraint "$CONSTRAINTS"
  else
    "$VENV/bin/pip" install -q "apache-airflow==$AIRFLOW_VERSION"
  fi
fi

rm -rf "$HOME_DIR"
mkdir -p "$HOME_DIR/logs"
export AIRFLOW_HOME="$HOME_DIR"
export AIRFLOW__CORE__DAGS_FOLDER="$HERE/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$HOME_DIR/airflow.db"
# Airflow's default is 30 s; 5 s keeps the looping file's recording short (recorded in dagbag.json)
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=5
# Airflow 3's default, pinned: compare.py gives weft the same (RECORDED_SETTINGS)
export AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS=False
export PYTHONWARNINGS=ignore
export PATH="$VENV/bin:$PATH"

echo "== airflow db migrate ($AIRFLOW_HOME)"
airflow db migrate >"$HOME_DIR/logs/db-migrate.log" 2>&1

if [ "$mode" != times ]; then
  echo "== recording DAG runs into $HERE/recorded"
  if [ "$mode" = only ]; then
    "$VENV/bin/python" "$HERE/record.py" --dags "$HERE/dags" --out "$HERE/recorded" --logs "$HOME_DIR/logs" --only "${only[@]}"
  else
    "$VENV/bin/python" "$HERE/record.py" --dags "$HERE/dags" --out "$HERE/recorded" --logs "$HOME_DIR/logs"
  fi
fi
if [ "$mode" != only ]; then
  echo "== timing Airflow's parse of each file"
  "$VENV/bin/python" "$HERE/parse_times.py" --dags "$HERE/dags" --bench "$HERE/bench" \
    --out "$HERE/recorded/airflow-parse-times.json"
fi
if [ "$mode" = all ]; then
  "$VENV/bin/pip" freeze --exclude-editable | LC_ALL=C sort >"$HERE/airflow-constraints.txt"
fi
echo "== done; run logs are in $HOME_DIR/logs"
