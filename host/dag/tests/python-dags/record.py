#!/usr/bin/env python3
"""Record what Apache Airflow does with every DAG file in dags/ (run by record.sh, inside its venv).

For the folder it records, in recorded/dagbag.json, what Airflow's DagBag makes of each file (the
DAG ids it defines, or the import error Airflow stores for it: file, line, the error's last line,
the exception class and the traceback), with the dagbag_import_timeout in force. For every DAG it
runs `airflow dags test DAG_ID 2024-03-05` in a subprocess and writes recorded/DAG_ID.json with
what it then reads back from Airflow's metadata DB: the DAG run's state, every task instance's
state and try number (mapped ones keyed TASK_ID[MAP_INDEX], as weft keys them), every XCom
(task_id, map_index, key, JSON value) and, for DAGs with callbacks, the `CALLBACK ...` marker
lines the callbacks printed into the run's output.

usage: record.py --dags DIR --out DIR --logs DIR [--only DAG_ID ...]
Needs AIRFLOW_HOME and the AIRFLOW__* settings record.sh exports (sqlite metadata DB).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time

LOGICAL_DATE = "2024-03-05"
RUN_TIMEOUT_S = 600
FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
CALLBACK = re.compile(r"^CALLBACK .*$", re.M)  # the marker lines callbacks.py prints


def airflow_version() -> str:
    import airflow

    return airflow.__version__


def sanitize(text: str, dags_dir: str) -> str:
    """Drop machine-specific paths from a traceback so recordings are reproducible."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(__import__("airflow").__file__)))
    text = text.replace(site + os.sep, "<site-packages>/")
    text = text.replace(os.path.abspath(dags_dir) + os.sep, "")
    text = re.sub(r"PID: \d+", "PID: <pid>", text)
    return text


def summarize_import_error(rel_file: str, stacktrace: str) -> dict:
    """Airflow's import error as the weft contract names it: file, line, error (+ class, traceback)."""
    base = os.path.basename(rel_file)
    lines = stacktrace.splitlines()
    line_no = None
    for ln in lines:
        m = FRAME.match(ln)
        if m and os.path.basename(m.group("file")) == base:
            line_no = int(m.group("line"))  # the last frame in the DAG file itself
    # the exception line: the last unindented line that is not a traceback header
    error = ""
    for ln in lines:
        if ln and not ln[0].isspace() and not ln.startswith("Traceback") and not ln.startswith("*"):
            if re.match(r"^[A-Za-z_][\w.]*(: |$)", ln):
                error = ln.strip()
    exc = error.split(":", 1)[0].rsplit(".", 1)[-1] if error else ""
    return {"file": base, "line": line_no, "error": error, "exception": exc, "traceback": stacktrace}


def parse_folder(dags_dir: str) -> dict:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    timeout = conf.getfloat("core", "dagbag_import_timeout")
    files = {}
    for name in sorted(os.listdir(dags_dir)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(dags_dir, name)
        started = time.perf_counter()
        bag = DagBag(dag_folder=path)
        elapsed = time.perf_counter() - started
        entry: dict = {"dag_ids": sorted(bag.dags)}
        if bag.import_errors:
            (rel, trace), = bag.import_errors.items()
            entry["import_error"] = summarize_import_error(rel, sanitize(trace, dags_dir))
        if elapsed >= timeout:
            entry["note"] = f"parse stopped by dagbag_import_timeout after {elapsed:.1f}s"
        files[name] = entry
        print(f"parsed {name}: {entry['dag_ids'] or entry.get('import_error', {}).get('error')}", flush=True)
    return {
        "dagbag_import_timeout_s": timeout,
        "dagbag_import_error_traceback_depth": conf.getint("core", "dagbag_import_error_traceback_depth"),
        "files": files,
    }


def db_path() -> str:
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        sys.exit(f"record.py reads the metadata DB with sqlite3; AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is {url}")
    return url[len(prefix):]


def read_run(dag_id: str) -> dict:
    """The DAG run of LOGICAL_DATE, its task instances and XComs, from the metadata DB."""
    db = sqlite3.connect(db_path())
    db.row_factory = sqlite3.Row
    runs = db.execute(
        "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND logical_date LIKE ? ORDER BY id DESC",
        (dag_id, LOGICAL_DATE + "%"),
    ).fetchall()
    if not runs:
        return {"state": None, "tasks": {}, "xcoms": [], "problem": "no DAG run in the metadata DB"}
    run_id, state = runs[0]["run_id"], runs[0]["state"]
    tasks = {}
    for r in db.execute(
        "SELECT task_id, map_index, state, try_number, max_tries FROM task_instance "
        "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
        (dag_id, run_id),
    ):
        key = r["task_id"] if r["map_index"] < 0 else f"{r['task_id']}[{r['map_index']}]"
        tasks[key] = {
            "task_id": r["task_id"],
            "map_index": r["map_index"],
            "state": r["state"],
            "try_number": r["try_number"],
            "max_tries": r["max_tries"],
        }
    xcoms = []
    for r in db.execute(
        "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = ? AND run_id = ? "
        "ORDER BY task_id, map_index, key",
        (dag_id, run_id),
    ):
        raw = r["value"]
        if isinstance(raw, bytes):
            raw = raw.decode()
        if raw is None or isinstance(raw, (int, float)):
            value = raw  # sqlite keeps a JSON number as a number
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                value = {"__unparsed__": raw}
        xcoms.append({"task_id": r["task_id"], "map_index": r["map_index"], "key": r["key"], "value": value})
    db.close()
    return {"state": state, "tasks": tasks, "xcoms": xcoms}


def run_dag(dag_id: str, file: str, logs_dir: str, dags_dir: str, common: dict) -> dict:
    cmd = ["airflow", "dags", "test", dag_id, LOGICAL_DATE]
    log_path = os.path.join(logs_dir, dag_id + ".log")
    started = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            p = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
            exit_code = p.returncode
        except subprocess.TimeoutExpired:
            exit_code = None
    elapsed = time.perf_counter() - started
    outcome = read_run(dag_id)
    with open(log_path, errors="replace") as log:
        text = log.read()
    callbacks = sorted(set(m.group(0).strip() for m in CALLBACK.finditer(text)))
    record = {
        "dag_id": dag_id,
        "file": file,
        "logical_date": LOGICAL_DATE + "T00:00:00+00:00",
        "recorded_with": dict(common, command=" ".join(cmd), exit_code=exit_code),
        "state": outcome["state"],
        "tasks": outcome["tasks"],
        "xcoms": outcome["xcoms"],
    }
    if "problem" in outcome:
        record["problem"] = outcome["problem"]
    src = open(os.path.join(dags_dir, file)).read()
    if "callback" in src:
        record["callbacks_printed"] = callbacks
    print(f"ran {dag_id}: {record['state']} ({len(record['tasks'])} task instances, "
          f"{len(record['xcoms'])} xcoms, exit {exit_code}, {elapsed:.1f}s)", flush=True)
    return record


def write_json(path: str, value) -> None:
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dags", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--logs", required=True)
    ap.add_argument("--only", nargs="*", default=None, help="record only these DAG ids")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.logs, exist_ok=True)
    common = {
        "airflow": airflow_version(),
        "python": platform.python_version(),
        "metadata_db": "sqlite",
    }
    bag = parse_folder(a.dags)
    bag["recorded_with"] = dict(common, how="DagBag(dag_folder=FILE) per file, as the DAG processor parses")
    write_json(os.path.join(a.out, "dagbag.json"), bag)  # cheap: every file was parsed above
    for file, entry in bag["files"].items():
        for dag_id in entry["dag_ids"]:
            if a.only is not None and dag_id not in a.only:
                continue
            write_json(os.path.join(a.out, dag_id + ".json"), run_dag(dag_id, file, a.logs, a.dags, common))


if __name__ == "__main__":
    main()
