"""weft-airflow-py: parses a Python DAG file inside weft's sandbox.

Parse mode:
input  {"path": "dags/etl.py", "source": "<the file's text>", "packages": "/weft/site-packages"?}
output {"dags": {DAG_ID: <dag-factory structure>}, "lines": {DAG_ID: LINE}, "task_lines": ...}
    or {"import_error": {"line": N, "error": "ModuleNotFoundError: No module named 'pandas'",
                         "traceback": "Traceback (most recent call last): ..."}}
The file's top level runs against weft's `airflow` package (this component's `airflow/`), with
no filesystem, network or secrets (the host gives this component an empty grant), under the
host's fuel, memory and time limits. Python callables are recorded, never called. With
"packages" (both modes), the DAG folder's pure-Python packages (requirements.txt), which the host
preopened read-only at that path, are importable: the path is appended to sys.path.

Call mode (a Python callable task run by the DAG runner, under the task's grant):
input  {"mode": "call", "path", "source", "dag_id", "task_id",
        "arguments": {"op_args": [...], "op_kwargs": {...}, mapped arguments...}}
ctx    the try's context (dag_id, run_id, logical_date, params, map_index, try_number)
output the callable's return value (a branch callable: the task ids to follow; a
       short-circuit callable that returns a falsy value: {"branch": []}, skipping downstream).
The file's top level runs again, then the task's function is called with its arguments (the
upstream XComs already resolved by the host) and the Airflow context its signature asks for."""

# Standard-library modules DAG files commonly import, loaded at build time so they are part of
# the component's snapshot (the sandbox has no filesystem to import them from later).
import base64  # noqa: F401
import calendar  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import csv  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import io  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import logging  # noqa: F401
import math  # noqa: F401
import os  # noqa: F401
import pathlib  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import string  # noqa: F401
import sys
import textwrap  # noqa: F401
import time  # noqa: F401
import traceback
import types
import typing  # noqa: F401
import uuid  # noqa: F401

import airflow
import airflow._export
import airflow._model
import pendulum  # noqa: F401
from weft import TaskError, operator

# Largest traceback returned (the host caps the whole output too).
MAX_TRACEBACK_CHARS = 8000
# Most tasks one DAG file may define.
MAX_TASKS = 20_000

# the modules a DAG file may import are the ones above plus anything under `airflow.`
_PRELOADED = set(sys.modules)


def _error(path, exc, line=None):
    tb = exc.__traceback__
    frames = traceback.extract_tb(tb) if tb is not None else []
    if line is None:
        line = 0
        for fr in frames:
            if fr.filename == path:
                line = fr.lineno or 0
        if isinstance(exc, SyntaxError) and exc.filename == path:
            line = exc.lineno or line
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    message = f"{type(exc).__name__}: {exc}"
    return {"import_error": {"line": int(line), "error": message[:2000], "traceback": text}}


def _forget_dag_modules():
    # a DAG file's own modules (and failed imports) must not leak into the next parse
    for name in list(sys.modules):
        if name not in _PRELOADED and not name.startswith("airflow."):
            del sys.modules[name]


def parse(path, source):
    airflow._model.reset()
    airflow._model.STATE.max_tasks = MAX_TASKS
    _forget_dag_modules()
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        return _error(path, e, e.lineno or 0)
    module = types.ModuleType("__weft_dag__")
    module.__file__ = path
    sys.modules["__weft_dag__"] = module
    try:
        exec(code, module.__dict__)
        return airflow._export.export(airflow._model.STATE.dags)
    except (Exception, SystemExit, KeyboardInterrupt) as e:  # the DAG file's own failures
        return _error(path, e)
    finally:
        sys.modules.pop("__weft_dag__", None)
        airflow._model.reset()


# arguments that configure the task rather than being passed to the callable
_TASK_KEYS = {"python_callable", "op_args", "op_kwargs", "templates_dict", "multiple_outputs",
              "show_return_value_in_logs", "ignore_downstream_trigger_rules"}


class _TaskInstance:
    """The `ti` a callable receives. XComs reach callables as arguments (TaskFlow) only."""

    def __init__(self, raw):
        self.dag_id = raw.get("dag_id")
        self.task_id = raw.get("task_id")
        self.run_id = raw.get("run_id")
        self.map_index = raw.get("map_index", -1)
        self.try_number = raw.get("try_number", 1)

    def xcom_pull(self, *_, **__):
        raise airflow._model.AirflowException(
            "ti.xcom_pull inside a Python callable is not supported by weft yet: pass the "
            "upstream's result as an argument (TaskFlow) or use an xcom_pull template in op_kwargs"
        )

    def xcom_push(self, *_, **__):
        raise airflow._model.AirflowException(
            "ti.xcom_push is not supported by weft yet: return the value instead"
        )


class _DagRun:
    def __init__(self, raw):
        self.run_id = raw.get("run_id")
        self.conf = raw.get("conf") or {}
        self.logical_date = raw.get("logical_date")


def _context(raw, templates_dict):
    logical = raw.get("logical_date") or ""
    ds = logical[:10]
    ctx = {
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": logical,
        "logical_date": logical,
        "execution_date": logical,
        "run_id": raw.get("run_id"),
        "params": raw.get("params") or {},
        "ti": _TaskInstance(raw),
        "task_instance": _TaskInstance(raw),
        "dag_run": _DagRun(raw),
        "map_index": raw.get("map_index", -1),
        "try_number": raw.get("try_number", 1),
        "templates_dict": templates_dict,
    }
    return ctx


def _call_kwargs(fn, args, kwargs, context):
    """Airflow passes the context entries the callable names, or all with **kwargs."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return kwargs
    params = sig.parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        extra = {k: v for k, v in context.items() if k not in kwargs}
        return {**extra, **kwargs}
    out = dict(kwargs)
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    taken = {p.name for p in positional[: len(args)]}
    for name in params:
        if name in context and name not in out and name not in taken:
            out[name] = context[name]
    return out


def call(input, ctx):
    path, source = input.get("path"), input.get("source")
    parsed = parse_keep(path, source)
    if isinstance(parsed, dict):  # the file no longer imports
        e = parsed["import_error"]
        raise TaskError("Airflow.DagImportError", f"{path}:{e['line']}: {e['error']}")
    dag = next((d for d in parsed if d.dag_id == input.get("dag_id")), None)
    if dag is None:
        raise TaskError("Airflow.DagNotFound", f"{path} no longer defines DAG {input.get('dag_id')!r}")
    op = dag.tasks.get(input.get("task_id"))
    fn = getattr(op, "python_callable", None)
    if fn is None:
        raise TaskError("Airflow.TaskNotFound", f"DAG {dag.dag_id!r} has no Python task {input.get('task_id')!r}")
    a = input.get("arguments") or {}
    args = list(a.get("op_args") or [])
    kwargs = dict(a.get("op_kwargs") or {})
    for k, v in a.items():
        if k not in _TASK_KEYS and k not in airflow._model.BASE_ARGS:
            kwargs[k] = v  # mapped (expanded) arguments
    context = _context(ctx.raw, a.get("templates_dict"))
    result = fn(*args, **_call_kwargs(fn, args, kwargs, context))
    if type(op).__name__ == "ShortCircuitOperator" or op.decorator == "airflow.decorators.task.short_circuit":
        return result if result else {"branch": []}
    return airflow._export.value(result)


def parse_keep(path, source):
    """Run the file's top level and return its DAG objects (or the import error)."""
    airflow._model.reset()
    airflow._model.STATE.max_tasks = MAX_TASKS
    _forget_dag_modules()
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        return _error(path, e, e.lineno or 0)
    module = types.ModuleType("__weft_dag__")
    module.__file__ = path
    sys.modules["__weft_dag__"] = module
    try:
        exec(code, module.__dict__)
        return list(airflow._model.STATE.dags)
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        return _error(path, e)
    finally:
        sys.modules.pop("__weft_dag__", None)


# where the host shows the DAG folder's pure-Python packages (requirements.txt), read-only
PACKAGES_PATH = "/weft/site-packages"


def _bootstrap_packages(input):
    """Put the DAG folder's packages on sys.path when the host preopened them for this call."""
    wanted = isinstance(input, dict) and input.get("packages") == PACKAGES_PATH
    if wanted and PACKAGES_PATH not in sys.path:
        sys.path.append(PACKAGES_PATH)
    elif not wanted and PACKAGES_PATH in sys.path:
        sys.path.remove(PACKAGES_PATH)
    sys.path_importer_cache.pop(PACKAGES_PATH, None)


@operator
def run(input, ctx):
    _bootstrap_packages(input)
    if isinstance(input, dict) and input.get("mode") == "call":
        return call(input, ctx)
    if not isinstance(input, dict):
        raise TaskError("Input.Invalid", 'expected {"path": FILE, "source": TEXT}')
    path, source = input.get("path"), input.get("source")
    if not isinstance(path, str) or not isinstance(source, str):
        raise TaskError("Input.Invalid", 'expected {"path": FILE, "source": TEXT} (strings)')
    return parse(path, source)
