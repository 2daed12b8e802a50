#!/usr/bin/env python3
"""Compare weft's runs of the Python DAG corpus with what Apache Airflow recorded for the same files.

usage: python3 compare.py --weft PATH_TO_WEFT [--dags DIR] [--recorded DIR] [--isolate] [-v]
                          [--home WEFT_HOME] [--allow-expected] [--only DAG_ID ...]

Needs no Airflow: it reads recorded/ (made by record.sh). For every recorded/DAG_ID.json:
  WEFT_HOME=<fresh tmp> weft dag test DAG_ID 2024-03-05 --dags DIR --json      (120 s timeout)
(with --isolate, DIR is a temp folder holding only that DAG's file), and once for the folder:
  WEFT_HOME=<fresh tmp> weft dag list --json --dags DIR
(--home DIR uses that WEFT_HOME for every call instead: one where the Python DAG parser
`weft-airflow-py` is installed, so `.py` files are read at all)
Every call gets the Airflow settings the recording had (RECORDED_SETTINGS below:
AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS=False, Airflow 3's default).

What weft must print (the contract in issue 18 and DESIGN.md):
  dag test: {"dag_id": ID, "state": "success"|"failed",
             "tasks": {"TASK_ID" or "TASK_ID[MAP_INDEX]": {"state": S, "try_number": N,
                       "xcom": RETURN_VALUE_OR_NULL, "xcoms": {KEY: VALUE, ...}}}}
            exit 0 when the run succeeded, 1 when it failed. "xcoms" (every key the task instance
            pushed, return_value included) is needed only for tasks that push keys besides
            return_value (ti.xcom_push, multiple_outputs); without it those keys count as missing.
  dag list: {"import_errors": [{"file": F, "line": N|null, "error": TEXT}, ...], ...}
            F may be a path; its file name is compared.

What is compared, per DAG: the run state; the exit code against it; the set of task instances
(keys); each one's state; its try_number (tries made: 0 for one that never ran, in Airflow as in
weft); every XCom value
(JSON-equal, with booleans never equal to numbers) but Airflow's own bookkeeping keys
(INTERNAL_XCOM_KEYS: skipmixin_key). Per hostile file: that weft reports an import
error for the same file, at the same line (except a timeout, whose line is wherever the loop was
interrupted), whose text names the same exception class (a timeout must say "time").
Intended differences (INTENDED below): a file Airflow loads but a sandbox must refuse.
The recorded `callbacks_printed` lines are not compared (weft's JSON has no field for them).

Prints a diff per DAG and a summary `N/M match` (M = recorded DAGs + the import-error check),
then the closing line `N passed, M failed`; exits 1 on any mismatch.

--allow-expected (what `make test` runs): the DAGs in EXPECTED_MISMATCH below are known gaps,
each with its reason, printed and not counted as failures; every other DAG must match, and an
expected one that matches fails the run too (take it off the list: the list only shrinks).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOGICAL_DATE = "2024-03-05"
TIMEOUT_S = 120
# XCom keys Airflow writes for its own bookkeeping, not user data: recorded, never compared.
# skipmixin_key: which tasks a branch/short-circuit followed ({"followed": [...]}).
INTERNAL_XCOM_KEYS = {"skipmixin_key"}

# Files Airflow loads (it evaluates DAG files with the host's full access) that weft must refuse:
# file name -> why. weft must list them as import errors and must not run their DAGs.
INTENDED = {
    "hostile_open_file.py": "reads /etc/passwd at import time; the sandbox has no filesystem",
}


# Known gaps of weft's Python DAG support: DAG id -> why it does not match Airflow yet. Only
# `--allow-expected` tolerates them; a DAG listed here that matches is an error (remove it).
EXPECTED_MISMATCH: dict = {
}

# The Airflow settings in force when the recordings were made (Airflow 3.3.2's defaults where
# they differ from weft's), given to every weft call: Airflow 3 makes a bare cron string or
# timedelta schedule a trigger timetable (logical date = the tick, empty data interval); weft
# keeps Airflow 2's data intervals unless told otherwise.
RECORDED_SETTINGS = {"AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS": "False"}


def parse_json(out: str):
    out = out.strip()
    try:
        return json.loads(out)
    except ValueError:
        pass
    # tolerate log lines before the document: the longest suffix that parses
    lines = out.splitlines()
    for i in range(len(lines)):
        if lines[i].lstrip().startswith(("{", "[")):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    return None


def same(a, b) -> bool:
    """JSON equality where true/false never equal 1/0 and 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def show(v, limit: int = 160) -> str:
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def run(cmd, home: str):
    env = dict(os.environ, WEFT_HOME=home, **RECORDED_SETTINGS)
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, "", f"timeout after {TIMEOUT_S}s"
    except OSError as e:
        return None, "", f"cannot run weft: {e}"
    return p.returncode, p.stdout, p.stderr


def stderr_tail(err: str) -> str:
    return " | ".join((err or "").strip().splitlines()[-3:])


def recorded_xcoms(rec: dict) -> dict:
    """task key -> {xcom key -> value} from a recording."""
    out: dict = {}
    for x in rec.get("xcoms", []):
        key = x["task_id"] if x["map_index"] < 0 else f"{x['task_id']}[{x['map_index']}]"
        out.setdefault(key, {})[x["key"]] = x["value"]
    return out


def compare_run(rec: dict, rc, got) -> list[str]:
    problems = []
    if not isinstance(got, dict):
        return ["no JSON object on stdout"]
    if got.get("state") != rec["state"]:
        problems.append(f"dag run state: weft {got.get('state')!r}, airflow {rec['state']!r}")
    want_rc = 0 if rec["state"] == "success" else 1
    if rc != want_rc:
        problems.append(f"exit code: weft {rc}, want {want_rc} for a {rec['state']} run")
    gtasks = got.get("tasks")
    if not isinstance(gtasks, dict):
        problems.append("no `tasks` object in weft's JSON")
        gtasks = {}
    wtasks = rec["tasks"]
    wx = recorded_xcoms(rec)
    for key in sorted(set(wtasks) - set(gtasks)):
        problems.append(f"task {key}: missing in weft (airflow: {wtasks[key]['state']})")
    for key in sorted(set(gtasks) - set(wtasks)):
        g = gtasks[key]
        problems.append(f"task {key}: weft has it ({g.get('state') if isinstance(g, dict) else g!r}), "
                        "airflow has no such task instance")
    for key in sorted(set(wtasks) & set(gtasks)):
        w, g = wtasks[key], gtasks[key]
        if not isinstance(g, dict):
            problems.append(f"task {key}: weft entry is not an object: {show(g)}")
            continue
        if g.get("state") != w["state"]:
            problems.append(f"task {key}: state weft {g.get('state')!r}, airflow {w['state']!r}")
        if g.get("try_number") != w["try_number"]:
            problems.append(f"task {key}: try_number weft {g.get('try_number')!r}, airflow {w['try_number']}")
        want = wx.get(key, {})
        got_rv = g.get("xcom")
        want_rv = want.get("return_value")
        if not same(got_rv, want_rv):
            problems.append(f"task {key}: return value weft {show(got_rv)}, airflow {show(want_rv)}")
        skip = INTERNAL_XCOM_KEYS | {"return_value"}
        extra = {k: v for k, v in want.items() if k not in skip}
        gx = g.get("xcoms")
        if isinstance(gx, dict):
            gx = {k: v for k, v in gx.items() if k not in skip}
            for k in sorted(set(extra) | set(gx)):
                if k not in gx:
                    problems.append(f"task {key}: xcom {k!r} missing in weft (airflow {show(extra[k])})")
                elif k not in extra:
                    problems.append(f"task {key}: xcom {k!r} weft {show(gx[k])}, airflow pushed no such key")
                elif not same(gx[k], extra[k]):
                    problems.append(f"task {key}: xcom {k!r} weft {show(gx[k])}, airflow {show(extra[k])}")
        elif extra:
            problems.append(f"task {key}: weft reports no `xcoms` map; airflow pushed "
                            f"{', '.join(repr(k) for k in sorted(extra))}")
    return problems


def compare_import_errors(bag: dict, got) -> list[str]:
    problems = []
    if not isinstance(got, dict) or not isinstance(got.get("import_errors"), list):
        kind = type(got).__name__ if got is not None else "no JSON"
        return [f"`weft dag list --json` gave {kind}, not an object with an `import_errors` list"]
    by_file: dict = {}
    for e in got["import_errors"]:
        if isinstance(e, dict) and isinstance(e.get("file"), str):
            by_file.setdefault(os.path.basename(e["file"]), e)
        else:
            problems.append(f"import error entry without a `file` string: {show(e)}")
    for name, entry in sorted(bag["files"].items()):
        want = entry.get("import_error")
        g = by_file.get(name)
        if name in INTENDED:
            if g is None:
                problems.append(f"{name}: weft reports no import error; it must refuse this file ({INTENDED[name]})")
            continue
        if want is None:
            if g is not None:
                problems.append(f"{name}: weft reports an import error ({show(g.get('error'))}); "
                                f"airflow loads it ({', '.join(entry['dag_ids'])})")
            continue
        if g is None:
            problems.append(f"{name}: no import error in weft; airflow: {want['error']}")
            continue
        timeout = want["exception"] == "AirflowTaskTimeout"
        if not timeout and want["line"] is not None and g.get("line") != want["line"]:
            problems.append(f"{name}: line weft {g.get('line')!r}, airflow {want['line']}")
        text = str(g.get("error", ""))
        if timeout:
            if "time" not in text.lower():
                problems.append(f"{name}: weft's error does not say it timed out: {show(text)}")
        elif want["exception"] and want["exception"] not in text:
            problems.append(f"{name}: weft's error does not name {want['exception']}: {show(text)}")
    listed = got.get("dags")
    if isinstance(listed, list):
        ids = {d.get("dag_id") if isinstance(d, dict) else d for d in listed}
        for name, entry in sorted(bag["files"].items()):
            for dag_id in entry["dag_ids"]:
                if name in INTENDED:
                    if dag_id in ids:
                        problems.append(f"{name}: weft lists {dag_id}, a DAG it must refuse")
                elif dag_id not in ids:
                    problems.append(f"{name}: weft does not list {dag_id}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weft", required=True)
    ap.add_argument("--dags", default=os.path.join(HERE, "dags"))
    ap.add_argument("--recorded", default=os.path.join(HERE, "recorded"))
    ap.add_argument("--isolate", action="store_true",
                    help="run each DAG from a temp folder holding only its file (skips the hostile files)")
    ap.add_argument("--home", default=None,
                    help="use this WEFT_HOME for every call (one where `weft plugin install "
                         "weft-airflow-py.wasm` was run) instead of a fresh one each time")
    ap.add_argument("--only", nargs="*", default=None, help="compare only these DAG ids")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print weft's stderr tail on failure")
    ap.add_argument("--allow-expected", action="store_true",
                    help="tolerate the known gaps in EXPECTED_MISMATCH (printed with their reason); "
                         "fail when one of them matches")
    a = ap.parse_args()
    weft = os.path.abspath(a.weft) if os.path.exists(a.weft) else a.weft
    dags = os.path.abspath(a.dags)
    with open(os.path.join(a.recorded, "dagbag.json")) as f:
        bag = json.load(f)
    recs = []
    for path in sorted(glob.glob(os.path.join(a.recorded, "py_*.json"))):
        with open(path) as f:
            rec = json.load(f)
        if a.only is None or rec["dag_id"] in a.only:
            recs.append(rec)
    matched = total = 0
    expected: list[str] = []  # known gaps that still differ
    stale: list[str] = []  # listed as known gaps, but they match

    def report(name: str, problems: list[str]) -> None:
        nonlocal matched, total
        total += 1
        dag_id = name.split(" ", 1)[0]
        if a.allow_expected and dag_id in EXPECTED_MISMATCH:
            if problems:
                expected.append(dag_id)
                print(f"expected {name}: {EXPECTED_MISMATCH[dag_id]}")
                for p in problems:
                    print(f"    {p}")
            else:
                stale.append(dag_id)
                print(f"STALE    {name}: matches now; remove it from EXPECTED_MISMATCH in compare.py")
            return
        if problems:
            print(f"MISMATCH {name}")
            for p in problems:
                print(f"    {p}")
        else:
            matched += 1
            print(f"match    {name}")

    for rec in recs:
        dag_id = rec["dag_id"]
        home = a.home or tempfile.mkdtemp(prefix="weft-home-")
        folder = dags
        if a.isolate:
            folder = tempfile.mkdtemp(prefix="weft-dags-")
            shutil.copy(os.path.join(dags, rec["file"]), folder)
        try:
            rc, out, err = run([weft, "dag", "test", dag_id, LOGICAL_DATE, "--dags", folder, "--json"], home)
            if rec["file"] in INTENDED:
                problems = []
                got = parse_json(out) if rc is not None else None
                if rc == 0 or (isinstance(got, dict) and "state" in got):
                    problems.append(f"weft ran {dag_id} (exit {rc}), so it loaded {rec['file']}, which "
                                    f"{INTENDED[rec['file']]}; it must refuse the file")
                report(f"{dag_id} (intended difference: weft refuses {rec['file']})", problems)
                continue
            if rc is None:
                report(dag_id, [err])
                continue
            got = parse_json(out)
            problems = compare_run(rec, rc, got)
            if problems and (got is None or a.verbose):
                problems.append(f"weft exit {rc}; stderr: {stderr_tail(err)}")
            report(dag_id, problems)
        finally:
            if home != a.home:
                shutil.rmtree(home, ignore_errors=True)
            if folder != dags:
                shutil.rmtree(folder, ignore_errors=True)

    if a.only is None:
        home = a.home or tempfile.mkdtemp(prefix="weft-home-")
        try:
            rc, out, err = run([weft, "dag", "list", "--json", "--dags", dags], home)
            if rc is None:
                report("import errors (weft dag list --json)", [err])
            else:
                problems = compare_import_errors(bag, parse_json(out))
                if problems and a.verbose:
                    problems.append(f"weft exit {rc}; stderr: {stderr_tail(err)}")
                report("import errors (weft dag list --json)", problems)
        finally:
            if home != a.home:
                shutil.rmtree(home, ignore_errors=True)

    print(f"{matched}/{total} match")
    if a.allow_expected:
        failed = total - matched - len(expected)
        print(f"{matched} passed, {failed} failed, {len(expected)} expected mismatches")
        sys.exit(0 if failed == 0 else 1)
    print(f"{matched} passed, {total - matched} failed")
    sys.exit(0 if matched == total else 1)


if __name__ == "__main__":
    main()
