#!/usr/bin/env python3
"""Checks of the Python DAG corpus itself, runnable without Airflow and without weft.

- The recordings are complete and say what README.md claims each DAG exercises (every DAG file
  has its recording, the hostile files are import errors, mapped, skipped, retried and failed
  task instances are there).
- compare.py passes against a stand-in weft that replays the recordings exactly, and reports a
  mismatch (exit 1, naming the DAG) for each kind of difference it must catch: a task state, an
  XCom value (true is not 1), a missing pushed key, a try number, an import error's line, a
  hostile file that runs, and the JSON that today's weft prints (a list from `dag list`).

usage: python3 test_corpus.py [-v]       (stdlib unittest)
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DAGS = os.path.join(HERE, "dags")
RECORDED = os.path.join(HERE, "recorded")
sys.path.insert(0, HERE)
import compare  # noqa: E402

# A stand-in for the weft binary: answers `dag test` and `dag list` from the recordings, then
# applies the perturbation named by FAKE_WEFT_MODE.
FAKE_WEFT = r'''#!/usr/bin/env python3
import json, os, sys
rec_dir, mode = os.environ["FAKE_RECORDED"], os.environ.get("FAKE_WEFT_MODE", "exact")
intended = json.loads(os.environ["FAKE_INTENDED"])
args = sys.argv[1:]
bag = json.load(open(os.path.join(rec_dir, "dagbag.json")))
if args[:2] == ["dag", "list"]:
    if mode == "legacy":
        print(json.dumps([]))
        sys.exit(0)
    errors, dags = [], []
    for name, entry in bag["files"].items():
        e = entry.get("import_error")
        if name in intended:
            if mode != "runs-open-file":
                errors.append({"file": "dags/" + name, "line": 17, "error": "PermissionError: no filesystem"})
            continue
        if e:
            line = e["line"] + (1 if mode == "wrong-line" and "raises" in name else 0)
            err = "timed out after 30 s" if e["exception"] == "AirflowTaskTimeout" else e["error"].rsplit(".", 1)[-1]
            if e["exception"] == "ModuleNotFoundError" or e["exception"] == "RuntimeError" or e["exception"] == "SyntaxError":
                err = e["error"]
            errors.append({"file": name, "line": line, "error": err})
        dags += [{"dag_id": d} for d in entry["dag_ids"]]
    print(json.dumps({"dags": dags, "import_errors": errors}))
    sys.exit(0)
if args[:2] == ["dag", "test"]:
    dag_id = args[2]
    if mode == "legacy":
        print(f"error: DAG `{dag_id}` not found", file=sys.stderr)
        sys.exit(2)
    rec = json.load(open(os.path.join(rec_dir, dag_id + ".json")))
    if rec["file"] in intended and mode != "runs-open-file":
        print("error: import error", file=sys.stderr)
        sys.exit(2)
    tasks = {}
    for key, t in rec["tasks"].items():
        tasks[key] = {"state": t["state"], "try_number": t["try_number"], "duration_s": 0.001,
                      "xcom": None, "xcoms": {}}
    for x in rec["xcoms"]:
        key = x["task_id"] if x["map_index"] < 0 else f"{x['task_id']}[{x['map_index']}]"
        tasks[key]["xcoms"][x["key"]] = x["value"]
        if x["key"] == "return_value":
            tasks[key]["xcom"] = x["value"]
    target = os.environ.get("FAKE_TARGET")
    if dag_id == target:
        if mode == "flip-state":
            k = sorted(tasks)[0]
            tasks[k]["state"] = "failed" if tasks[k]["state"] != "failed" else "success"
        elif mode == "bool-for-int":
            for t in tasks.values():
                if t["xcom"] == 45:
                    t["xcom"] = True
        elif mode == "drop-key":
            for t in tasks.values():
                t["xcoms"] = {k: v for k, v in t["xcoms"].items() if k == "return_value"}
        elif mode == "no-xcoms-map":
            for t in tasks.values():
                del t["xcoms"]
        elif mode == "try-number":
            for t in tasks.values():
                if t["try_number"] == 2:
                    t["try_number"] = 1
    print("a log line before the document")
    print(json.dumps({"dag_id": dag_id, "state": rec["state"], "tasks": tasks}, indent=2))
    sys.exit(0 if rec["state"] == "success" else 1)
sys.exit(f"fake weft: unexpected arguments {args}")
'''


def recordings() -> dict:
    out = {}
    for path in glob.glob(os.path.join(RECORDED, "py_*.json")):
        with open(path) as f:
            rec = json.load(f)
        out[rec["dag_id"]] = rec
    return out


class Recordings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(RECORDED, "dagbag.json")) as f:
            cls.bag = json.load(f)
        cls.recs = recordings()

    def test_every_file_is_recorded(self):
        files = sorted(n for n in os.listdir(DAGS) if n.endswith(".py"))
        self.assertEqual(files, sorted(self.bag["files"]))
        ids = sorted(d for e in self.bag["files"].values() for d in e["dag_ids"])
        self.assertEqual(ids, sorted(self.recs))
        loaded = [n for n, e in self.bag["files"].items() if e["dag_ids"] and not n.startswith("hostile_")]
        self.assertGreaterEqual(len(loaded), 15)
        for dag_id, rec in self.recs.items():
            self.assertIn(rec["state"], ("success", "failed"), dag_id)
            self.assertEqual(rec["recorded_with"]["exit_code"], 0 if rec["state"] == "success" else 1, dag_id)

    def test_hostile_files_are_import_errors_with_lines(self):
        errors = {n: e["import_error"] for n, e in self.bag["files"].items() if "import_error" in e}
        self.assertEqual(
            sorted(errors),
            ["hostile_infinite_loop.py", "hostile_missing_import.py", "hostile_raises.py", "hostile_syntax_error.py"],
        )
        self.assertEqual(errors["hostile_infinite_loop.py"]["exception"], "AirflowTaskTimeout")
        self.assertEqual(errors["hostile_missing_import.py"]["exception"], "ModuleNotFoundError")
        self.assertEqual(errors["hostile_raises.py"]["exception"], "RuntimeError")
        self.assertEqual(errors["hostile_syntax_error.py"]["exception"], "SyntaxError")
        for name, e in errors.items():
            self.assertIsInstance(e["line"], int, name)
            with open(os.path.join(DAGS, name)) as f:
                self.assertLessEqual(e["line"], len(f.read().splitlines()), name)
        self.assertEqual(self.bag["files"]["hostile_open_file.py"]["dag_ids"], ["py_hostile_open_file"])
        self.assertEqual(self.bag["dagbag_import_timeout_s"], 5.0)

    def test_recordings_show_what_the_dags_exercise(self):
        r = self.recs
        states = {s for rec in r.values() for t in rec["tasks"].values() for s in [t["state"]]}
        self.assertTrue({"success", "failed", "skipped", "upstream_failed"} <= states, states)
        flaky = r["py_retries"]["tasks"]["flaky"]
        self.assertEqual((flaky["state"], flaky["try_number"]), ("success", 2))
        self.assertEqual(r["py_retries"]["tasks"]["always_fails"]["try_number"], 3)
        self.assertIn("add_one[2]", r["py_dynamic_mapping_basic"]["tasks"])
        self.assertEqual(len([k for k in r["py_dynamic_mapping_basic"]["tasks"] if k.startswith("multiply[")]), 6)
        keys = {x["key"] for x in r["py_tutorial_taskflow_etl"]["xcoms"] if x["task_id"] == "transform"}
        self.assertEqual(keys, {"return_value", "total_order_value", "order_count"})
        rendered = [x["value"] for x in r["py_params_templates"]["xcoms"] if x["task_id"] == "render"][0]
        self.assertEqual(rendered["day"], "2024-03-05")
        self.assertEqual(r["py_callbacks"]["callbacks_printed"][:1], ["CALLBACK dag_failure"])

    def test_only_intended_differences_are_listed(self):
        for name in compare.INTENDED:
            self.assertIn(name, self.bag["files"])
            self.assertNotIn("import_error", self.bag["files"][name])


class CompareScript(unittest.TestCase):
    """compare.py against a stand-in weft: passes when equal, fails on each kind of difference."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="weft-corpus-test-")
        cls.fake = os.path.join(cls.tmp, "weft")
        with open(cls.fake, "w") as f:
            f.write(FAKE_WEFT)
        os.chmod(cls.fake, os.stat(cls.fake).st_mode | stat.S_IXUSR)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_compare(self, mode: str, target: str = "", only=None, extra=()):
        env = dict(os.environ, FAKE_RECORDED=RECORDED, FAKE_WEFT_MODE=mode, FAKE_TARGET=target,
                   FAKE_INTENDED=json.dumps(sorted(compare.INTENDED)))
        cmd = [sys.executable, os.path.join(HERE, "compare.py"), "--weft", self.fake, *extra]
        if only:
            cmd += ["--only", *only]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        return p.returncode, p.stdout

    def test_exact_replay_matches(self):
        rc, out = self.run_compare("exact")
        n = len(recordings()) + 1
        self.assertEqual(rc, 0, out)
        self.assertIn(f"{n}/{n} match", out)
        self.assertTrue(out.rstrip().endswith(f"{n} passed, 0 failed"), out)

    def test_expected_mismatches_are_tolerated_only_while_they_differ(self):
        # a known gap that still differs: printed with its reason, not a failure
        target = "py_trigger_rules"
        path = os.path.join(self.tmp, "compare_with_gap.py")
        with open(os.path.join(HERE, "compare.py")) as f:
            text = f.read()
        start = text.index("EXPECTED_MISMATCH: dict = {")
        end = text.index("\n}\n", start) + 3
        text = text[:start] + f"EXPECTED_MISMATCH: dict = {{{target!r}: 'a reason'}}\n" + text[end:]
        with open(path, "w") as f:
            f.write(text.replace('HERE = os.path.dirname(os.path.abspath(__file__))',
                                 f'HERE = {HERE!r}', 1))
        env = dict(os.environ, FAKE_RECORDED=RECORDED, FAKE_WEFT_MODE="flip-state",
                   FAKE_TARGET=target, FAKE_INTENDED=json.dumps(sorted(compare.INTENDED)))
        run = lambda mode: subprocess.run(  # noqa: E731
            [sys.executable, path, "--weft", self.fake, "--allow-expected", "--only", target],
            env=dict(env, FAKE_WEFT_MODE=mode), capture_output=True, text=True, timeout=600)
        p = run("flip-state")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"expected {target}: a reason", p.stdout)
        # the gap closed: the list must shrink, so the run fails
        p = run("exact")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(f"STALE    {target}", p.stdout)

    def test_every_expected_mismatch_is_a_recorded_dag_with_a_reason(self):
        ids = set(recordings())
        for dag_id, why in compare.EXPECTED_MISMATCH.items():
            self.assertIn(dag_id, ids)
            self.assertTrue(why.strip())

    def test_a_task_state_differs(self):
        rc, out = self.run_compare("flip-state", "py_trigger_rules", only=["py_trigger_rules"])
        self.assertEqual(rc, 1, out)
        self.assertIn("MISMATCH py_trigger_rules", out)
        self.assertIn("state weft", out)

    def test_true_is_not_one(self):
        rc, out = self.run_compare("bool-for-int", "py_branch_python_operator", only=["py_branch_python_operator"])
        self.assertEqual(rc, 1, out)
        self.assertIn("task score: return value weft true, airflow 45", out)

    def test_a_pushed_key_is_missing(self):
        rc, out = self.run_compare("drop-key", "py_tutorial_taskflow_etl", only=["py_tutorial_taskflow_etl"])
        self.assertEqual(rc, 1, out)
        self.assertIn("xcom 'total_order_value' missing in weft", out)
        rc, out = self.run_compare("no-xcoms-map", "py_tutorial_taskflow_etl", only=["py_tutorial_taskflow_etl"])
        self.assertEqual(rc, 1, out)
        self.assertIn("weft reports no `xcoms` map", out)

    def test_a_try_number_differs(self):
        rc, out = self.run_compare("try-number", "py_retries", only=["py_retries"])
        self.assertEqual(rc, 1, out)
        self.assertIn("task flaky: try_number weft 1, airflow 2", out)

    def test_import_error_line_and_intended_difference(self):
        rc, out = self.run_compare("wrong-line")
        self.assertEqual(rc, 1, out)
        self.assertIn("hostile_raises.py: line weft", out)
        rc, out = self.run_compare("runs-open-file")
        self.assertEqual(rc, 1, out)
        self.assertIn("hostile_open_file.py: weft reports no import error", out)
        self.assertIn("MISMATCH py_hostile_open_file", out)

    def test_todays_weft_output_is_a_clear_mismatch(self):
        rc, out = self.run_compare("legacy")
        self.assertEqual(rc, 1, out)
        self.assertIn("not an object with an `import_errors` list", out)
        # only the intended difference "matches": today's weft refuses the .py file it cannot read
        self.assertIn(f"1/{len(recordings()) + 1} match", out)
        self.assertIn("match    py_hostile_open_file", out)

    def test_json_equality_is_strict_about_booleans(self):
        self.assertTrue(compare.same({"a": [1, 2.0]}, {"a": [1.0, 2]}))
        self.assertFalse(compare.same(True, 1))
        self.assertFalse(compare.same([False], [0]))
        self.assertFalse(compare.same({"a": 1}, {"a": 1, "b": None}))
        self.assertFalse(compare.same("1", 1))


if __name__ == "__main__":
    unittest.main()
