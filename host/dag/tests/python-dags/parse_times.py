#!/usr/bin/env python3
"""Time Apache Airflow's parse of each DAG file (run by record.sh, inside its venv).

For every file in dags/ and bench/dag_100_tasks.py it measures, with Airflow's own
`DagBag(dag_folder=FILE)` (what the DAG processor runs per file):
  - cold_process_ms: wall time of a fresh `python` process that imports Airflow and parses the
    file once (interpreter start + `import airflow` + parse);
  - first_parse_ms: the first parse in a fresh process once `airflow.dag_processing.dagbag` is
    imported (includes importing the modules the file itself pulls in: airflow.sdk, providers);
  - warm_parse_ms: median (and min/max) of REPEAT further parses in that same process (modules
    cached; the file's own module is executed again each time, as the DAG processor does).
and the wall time of `airflow dags reserialize` for the whole dags/ folder (one process), and the
per-task cost of a @task callable in Airflow: `airflow dags test` of bench/dag_100_tasks.py, with
each task instance's duration read back from the metadata DB (p50, p90).
Writes JSON with the machine (nproc, CPU model, Python and Airflow versions).

usage: parse_times.py --dags DIR --bench DIR --out FILE [--repeat N]
       parse_times.py --one FILE --repeat N      (the in-process measurement; prints JSON)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPEAT = 20


def measure_one(path: str, repeat: int) -> dict:
    t0 = time.perf_counter()
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    import_ms = (time.perf_counter() - t0) * 1000
    timeout_s = conf.getfloat("core", "dagbag_import_timeout")

    def parse() -> tuple[float, int, int]:
        started = time.perf_counter()
        bag = DagBag(dag_folder=path)
        ms = (time.perf_counter() - started) * 1000
        return ms, sum(len(d.tasks) for d in bag.dags.values()), len(bag.import_errors)

    first, tasks, errors = parse()
    # a file stopped by dagbag_import_timeout costs the timeout every time: measure it once
    n = 0 if first >= timeout_s * 1000 * 0.9 else repeat
    warm = [parse()[0] for _ in range(n)]
    out = {
        "import_airflow_ms": round(import_ms, 1),
        "first_parse_ms": round(first, 2),
        "tasks": tasks,
        "import_errors": errors,
    }
    if warm:
        out["warm_parse_ms"] = {
            "median": round(statistics.median(warm), 2),
            "min": round(min(warm), 2),
            "max": round(max(warm), 2),
            "n": len(warm),
        }
    else:
        out["warm_parse_ms"] = None
        out["note"] = f"stopped by dagbag_import_timeout ({timeout_s:g} s); not repeated"
    return out


def cold_process_ms(path: str) -> float:
    code = "import sys\nfrom airflow.dag_processing.dagbag import DagBag\nDagBag(dag_folder=sys.argv[1])\n"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, path], check=False, capture_output=True)
    return round((time.perf_counter() - started) * 1000, 1)


def task_overhead(bench_dir: str) -> dict:
    """Run the 100-task DAG with `airflow dags test` and read each task instance's duration.

    The DAG folder is bench/ alone, so the run does not parse the corpus (nor its looping file).
    """
    import sqlite3

    env = dict(os.environ, AIRFLOW__CORE__DAGS_FOLDER=os.path.abspath(bench_dir))
    cmd = [os.path.join(os.path.dirname(sys.executable), "airflow"), "dags", "test", "py_bench_100_tasks", "2024-03-05"]
    started = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url.startswith("sqlite:///"):
        return {"problem": "needs the sqlite metadata DB record.sh sets up"}
    db = sqlite3.connect(url[len("sqlite:///"):])
    rows = db.execute(
        "SELECT ti.duration, ti.state FROM task_instance ti JOIN dag_run dr ON dr.run_id = ti.run_id "
        "AND dr.dag_id = ti.dag_id WHERE ti.dag_id = 'py_bench_100_tasks' AND dr.logical_date LIKE '2024-03-05%'"
    ).fetchall()
    db.close()
    durations = sorted(d * 1000 for d, state in rows if d is not None and state == "success")
    if not durations:
        return {"problem": f"no successful task instances (exit {r.returncode})"}

    def pct(q: float) -> float:
        return round(durations[min(len(durations) - 1, int(q * len(durations)))], 1)

    return {
        "command": " ".join(cmd[1:]),
        "exit_code": r.returncode,
        "tasks": len(durations),
        "task_duration_ms": {"p50": pct(0.5), "p90": pct(0.9), "min": round(durations[0], 1),
                             "max": round(durations[-1], 1)},
        "run_wall_s": round(wall, 2),
        "run_wall_per_task_ms": round(wall * 1000 / len(durations), 1),
        "note": "task_duration_ms is Airflow's own task_instance.duration (start to end of the try, in the "
                "dags test process); run_wall includes the CLI's start, the DAG parse and scheduling",
    }


def machine() -> dict:
    import airflow

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "airflow": airflow.__version__,
        "platform": platform.platform(),
        # the machine is shared: the load when timing started says how noisy the figures are
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dags")
    ap.add_argument("--bench")
    ap.add_argument("--out")
    ap.add_argument("--one")
    ap.add_argument("--repeat", type=int, default=REPEAT)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(measure_one(a.one, a.repeat)))
        return
    if not (a.dags and a.out):
        ap.error("--dags and --out are required")
    files = [os.path.join(a.dags, n) for n in sorted(os.listdir(a.dags)) if n.endswith(".py")]
    if a.bench:
        files.append(os.path.join(a.bench, "dag_100_tasks.py"))
    host = machine()
    results = {}
    for path in files:
        cold = cold_process_ms(path)
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", path, "--repeat", str(a.repeat)],
                           capture_output=True, text=True, check=False)
        try:
            entry = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            entry = {"problem": (p.stderr or "no output").strip().splitlines()[-1:]}
        entry["cold_process_ms"] = cold
        name = os.path.relpath(path, os.path.dirname(a.dags.rstrip("/")))
        results[name] = entry
        warm = entry.get("warm_parse_ms") or {}
        print(f"{name}: cold process {cold:.0f} ms, first parse {entry.get('first_parse_ms')} ms, "
              f"warm median {warm.get('median')} ms", flush=True)
    started = time.perf_counter()
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "airflow"), "dags", "reserialize"],
                       capture_output=True, text=True, check=False)
    reserialize_s = round(time.perf_counter() - started, 2)
    overhead = task_overhead(a.bench) if a.bench else None
    if overhead:
        print(f"@task overhead (dags test of the 100-task DAG): {overhead}", flush=True)
    doc = {
        "machine": host,
        "method": (
            "DagBag(dag_folder=FILE) timed in-process with time.perf_counter; cold_process_ms is a fresh "
            "interpreter importing Airflow and parsing once; warm is the median of further parses in one "
            "process. dagbag_import_timeout was "
            f"{os.environ.get('AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT', '30 (default)')} s."
        ),
        "files": results,
        "task_overhead_100_task_dag": overhead,
        "dags_reserialize_folder": {
            "command": "airflow dags reserialize",
            "wall_s": reserialize_s,
            "exit_code": r.returncode,
            "note": "the whole dags/ folder in one CLI process, including interpreter start and the looping "
                    "file's dagbag_import_timeout",
        },
    }
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"airflow dags reserialize (dags/): {reserialize_s} s, exit {r.returncode}")


if __name__ == "__main__":
    main()
