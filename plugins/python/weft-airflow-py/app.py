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
    # the traceback starts at the DAG file, as Airflow's does: the parser's own frames (this
    # module exec-ing the file) are not the user's business; a syntax error shows no frames
    shown = tb
    while shown is not None and shown.tb_frame.f_code.co_filename != path:
        shown = shown.tb_next
    if shown is None and not isinstance(exc, SyntaxError):
        shown = tb
    text = "".join(traceback.format_exception(type(exc), exc, shown))
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
              "show_return_value_in_logs", "ignore_downstream_trigger_rules", "poke_interval",
              "timeout", "mode", "soft_fail", "exponential_backoff", "max_wait"}

# Largest value one `ti.xcom_push` may push, in bytes of JSON (the host caps every XCom too).
MAX_PUSH_BYTES = 1 << 20
# Most keys one task instance may push.
MAX_PUSH_KEYS = 1000

# Error name a sensor callable answers "not yet" with (weft_dag::SENSOR_NOT_READY).
SENSOR_NOT_READY = "Weft.SensorNotReady"

_UNSET = object()


class _TaskInstance:
    """The `ti` a callable receives: its ids, and XCom push/pull within its own DAG run.

    `xcom_pull` reads the run's XComs the host sent with the call (`xcoms`: task id -> list of
    [map_index, {key: value}]); `xcom_push` collects values the host stores once the try
    succeeds. Other DAGs' and other runs' XComs are out of reach."""

    def __init__(self, raw, xcoms, op=None):
        self.dag_id = raw.get("dag_id")
        self.task_id = raw.get("task_id")
        self.run_id = raw.get("run_id")
        self.map_index = raw.get("map_index", -1)
        self.try_number = raw.get("try_number", 1)
        self.task = op
        self._xcoms = xcoms
        self.pushed = {}

    def xcom_push(self, key, value):
        if not isinstance(key, str) or not key:
            raise airflow._model.AirflowException("ti.xcom_push needs a non-empty string key")
        v = airflow._export.value(value)
        size = len(json.dumps(v))
        if size > MAX_PUSH_BYTES:
            raise TaskError("Weft.XComTooLarge",
                            f"ti.xcom_push(key={key!r}) of {size} bytes; the XCom limit is {MAX_PUSH_BYTES} bytes")
        if key not in self.pushed and len(self.pushed) >= MAX_PUSH_KEYS:
            raise TaskError("Weft.XComTooLarge", f"more than {MAX_PUSH_KEYS} XCom keys pushed by one task")
        self.pushed[key] = v

    def _one(self, task_id, key, map_index):
        if task_id == self.task_id and key in self.pushed and map_index in (None, self.map_index):
            return self.pushed[key]
        if self._xcoms is None:
            raise airflow._model.AirflowException(
                "ti.xcom_pull: the host sent no XComs for this call")
        entries = self._xcoms.get(task_id)
        if not entries:
            return None
        if map_index is not None:
            for i, m in entries:
                if i == map_index:
                    return m.get(key)
            return None
        if len(entries) == 1 and entries[0][0] < 0:
            return entries[0][1].get(key)
        return [m.get(key) for i, m in entries if i >= 0]

    def xcom_pull(self, task_ids=None, dag_id=None, key="return_value", include_prior_dates=False,
                  map_indexes=None, default=None, run_id=None, **_):
        if dag_id is not None and dag_id != self.dag_id:
            raise airflow._model.AirflowException(
                f"ti.xcom_pull(dag_id={dag_id!r}): weft lets a task read XComs of its own DAG run "
                f"only ({self.dag_id!r})")
        if run_id is not None and run_id != self.run_id:
            raise airflow._model.AirflowException(
                f"ti.xcom_pull(run_id={run_id!r}): weft lets a task read XComs of its own DAG run "
                f"only ({self.run_id!r})")
        if include_prior_dates:
            raise airflow._model.AirflowException(
                "ti.xcom_pull(include_prior_dates=True): weft reads XComs of the current run only")
        if key is None:
            key = "return_value"
        single = task_ids is None or isinstance(task_ids, str)
        ids = [self.task_id if task_ids is None else task_ids] if single else list(task_ids)
        if isinstance(map_indexes, (list, tuple)):
            single = False
            out = [self._one(t, key, m) for t in ids for m in map_indexes]
        else:
            out = [self._one(t, key, map_indexes) for t in ids]
        if single:
            v = out[0]
            return default if v is None else v
        return out

    def get_dagrun(self):
        return _DagRun({"run_id": self.run_id})


class _DagRun:
    def __init__(self, raw):
        self.run_id = raw.get("run_id")
        self.conf = raw.get("conf") or {}
        self.logical_date = raw.get("logical_date")


def _datetime(text):
    """An ISO 8601 timestamp from the host as an aware datetime (None when absent)."""
    import datetime as _dt

    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _context(raw, templates_dict, ti, op, dag, raw_args=None):
    raw_args = raw_args or {}
    triggering = raw_args.get("__weft_triggering_asset_events") or {}
    logical = raw.get("logical_date") or ""
    ds = logical[:10]
    when = _datetime(logical)
    ctx = {
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": logical,
        "ts_nodash": when.strftime("%Y%m%dT%H%M%S") if when else "",
        "logical_date": when,
        "execution_date": when,
        "data_interval_start": _datetime(raw.get("data_interval_start")) or when,
        "data_interval_end": _datetime(raw.get("data_interval_end")) or when,
        "dag_id": raw.get("dag_id"),
        "task_id": raw.get("task_id"),
        "run_id": raw.get("run_id"),
        "params": raw.get("params") or {},
        "ti": ti,
        "task_instance": ti,
        "task": op,
        "dag": dag,
        "dag_run": _DagRun(raw),
        "map_index": raw.get("map_index", -1),
        "try_number": raw.get("try_number", 1),
        "templates_dict": templates_dict,
        "outlet_events": airflow._model.OutletEventAccessors(_declared_outlets(op, raw_args)),
        "triggering_asset_events": triggering,
        "triggering_dataset_events": triggering,
        "inlet_events": _InletEvents(triggering),
    }
    return ctx


class _Event(dict):
    """An asset event as the context shows it: a mapping whose keys read as attributes too."""

    def __getattr__(self, name):
        try:
            v = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return _Event(v) if isinstance(v, dict) else v


class _InletEvents:
    """`inlet_events[Asset(...)]` / `inlet_events[AssetAlias(...)]`: the events that triggered
    the run (oldest first) of that asset, or emitted through that alias. weft keeps no wider
    history here: an asset or alias that did not trigger the run has no events."""

    def __init__(self, triggering):
        self._events = [e for evs in (triggering or {}).values() for e in (evs or [])]
        self._events.sort(key=lambda e: e.get("id") or 0)

    def __getitem__(self, key):
        if isinstance(key, str):
            key = airflow._model.Asset(key)
        if isinstance(key, airflow._model.AssetAlias):
            return [_Event(e) for e in self._events
                    if any(a.get("name") == key.name for a in e.get("source_aliases") or [])]
        if isinstance(key, airflow._model.Asset):
            return [_Event(e) for e in self._events if e.get("uri") == key.uri]
        raise KeyError(f"inlet_events is keyed by Asset or AssetAlias, got {type(key).__name__}")


def _declared_outlets(op, raw_args):
    """The Asset / AssetAlias objects a task names in `outlets` (the host sends them as
    `__weft_outlets`; the host checks the emitted events again)."""
    if "__weft_outlets" in raw_args:
        v = _outlet_objects(raw_args["__weft_outlets"])
    elif isinstance(op, _YamlTask):
        return None
    else:
        v = getattr(op, "settings", {}).get("outlets")
    if v is None:
        return []
    if not isinstance(v, (list, tuple, set, frozenset)):
        v = [v]
    out = []
    for o in v:
        if isinstance(o, str):
            o = airflow._model.Asset(o)
        out.append(o)
    return out


def _outlet_objects(v):
    """`outlets` as the host sends them (URIs, `{__type__, uri|name}` objects) as objects."""
    if v is None:
        return []
    if isinstance(v, dict) and "datasets" in v and "__type__" not in v:
        v = v["datasets"]
    if not isinstance(v, list):
        v = [v]
    out = []
    for o in v:
        if isinstance(o, dict):
            cls = str(o.get("__type__") or "").rsplit(".", 1)[-1]
            args = o.get("__args__") or []
            if cls in ("AssetAlias", "DatasetAlias"):
                out.append(airflow._model.AssetAlias(o.get("name") or (args[0] if args else "")))
            else:
                out.append(airflow._model.Asset(o.get("uri") or o.get("name") or (args[0] if args else "")))
        elif isinstance(o, str):
            out.append(airflow._model.Asset(o))
    return out


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


# keys of a YAML task that name its callable or configure it (not arguments of the callable)
_YAML_KEYS = {"python_callable_name", "python_callable_file", "do_xcom_push"}


def _is_kind(op, cls_name, decorator):
    """Whether `op` is of class `cls_name` or made by `decorator` (`airflow.decorators.task.X`,
    also spelt `airflow.sdk.task.X` or `airflow.sdk.definitions.decorators.task.X`)."""
    name = op.kind_name if isinstance(op, _YamlTask) else type(op).__name__
    deco = op.decorator or ""
    variant = decorator.rsplit(".task", 1)[-1]
    return name == cls_name or (deco.startswith("airflow.") and deco.endswith(".task" + variant))


class _YamlTask:
    """What call mode needs of a task of a YAML (dag-factory) DAG whose callable lives in a
    Python file beside it: its kind (from the decorator or operator class) and its arguments."""

    def __init__(self, fn, operator, arguments):
        self.python_callable = fn
        self.decorator = operator if operator.startswith("airflow.") and ".task" in operator else None
        self.arguments = arguments
        self.settings = {"do_xcom_push": arguments.get("do_xcom_push")}
        self.expand_maps = {}
        self.task_id = None
        self._cls = operator.rsplit(".", 1)[-1]

    @property
    def kind_name(self):
        return self._cls


def _load_callable(path, source, name):
    """Run a Python file as a module and return its callable `name` (a dotted qualified name)."""
    airflow._model.reset()
    _forget_dag_modules()
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise TaskError("Airflow.DagImportError", f"{path}:{e.lineno or 0}: SyntaxError: {e.msg}") from None
    module = types.ModuleType("__weft_dag__")
    module.__file__ = path
    sys.modules["__weft_dag__"] = module
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        err = _error(path, e)["import_error"]
        raise TaskError("Airflow.DagImportError", f"{path}:{err['line']}: {err['error']}") from None
    finally:
        sys.modules.pop("__weft_dag__", None)
    obj = module
    for part in str(name).split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            break
    if obj is not None and hasattr(obj, "function") and hasattr(obj, "kind"):
        obj = obj.function  # a @task-decorated function: its plain function
    if not callable(obj):
        raise TaskError("Airflow.CallableNotFound", f"{path} defines no callable {name!r}")
    return obj


def call(input, ctx):
    path, source = input.get("path"), input.get("source")
    if input.get("callable") is not None:  # a YAML task's callable from a Python file
        fn = _load_callable(path, source, input["callable"])
        a = input.get("arguments") or {}
        return _run_callable(input, ctx, fn, _YamlTask(fn, str(input.get("operator") or ""), a), None)
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
    return _run_callable(input, ctx, fn, op, dag)


def _run_callable(input, ctx, fn, op, dag):
    a = input.get("arguments") or {}
    args = list(a.get("op_args") or [])
    kwargs = dict(a.get("op_kwargs") or {})
    for k, v in a.items():
        if (k in _TASK_KEYS or k in airflow._model.BASE_ARGS or k.startswith("__weft")
                or k in _YAML_KEYS):
            continue
        if k == "**":  # one element of expand_kwargs: a mapping of arguments
            if "**" in op.expand_maps:
                v = op.expand_maps["**"](v)
            if not isinstance(v, dict):
                raise TaskError("Weft.MappingFailed",
                                f"expand_kwargs needs a mapping of arguments per element, got {type(v).__name__}")
            kwargs.update(v)
            continue
        if k in op.expand_maps:
            v = op.expand_maps[k](v)
        kwargs[k] = v  # mapped (expanded) arguments
    ti = _TaskInstance(ctx.raw, input.get("xcoms"), op)
    context = _context(ctx.raw, a.get("templates_dict"), ti, op, dag, a)
    airflow._model.STATE.call_ctx = ctx
    airflow._model.STATE.call_context = context
    try:
        result = fn(*args, **_call_kwargs(fn, args, kwargs, context))
    finally:
        airflow._model.STATE.call_ctx = None
        airflow._model.STATE.call_context = None
    skip = None
    if _is_kind(op, "PythonSensor", "airflow.decorators.task.sensor"):
        if isinstance(result, airflow._model.PokeReturnValue):
            done, result = bool(result.is_done), result.xcom_value
        else:
            done, result = bool(result), None
        if not done:
            raise TaskError(SENSOR_NOT_READY, "the sensor's callable returned False")
    elif getattr(op, "branch", False) or _is_kind(
            op, "BranchPythonOperator", "airflow.decorators.task.branch"):
        # a branch's answer picks the tasks to follow; Airflow pushes no return value for it
        follow = airflow._export.value(result)
        out = {"value": None, "xcoms": ti.pushed, "follow": follow}
        events = context["outlet_events"].export()
        if events:
            out["asset_events"] = events
        return {"__weft_call__": out}
    elif _is_kind(op, "ShortCircuitOperator", "airflow.decorators.task.short_circuit"):
        if not result:
            ignore = op.arguments.get("ignore_downstream_trigger_rules", True)
            skip = "all" if ignore is not False else "direct"
            result = None
    if op.settings.get("do_xcom_push") is False:
        result = None
    out = {"value": airflow._export.value(result), "xcoms": ti.pushed}
    events = context["outlet_events"].export()
    if events:
        out["asset_events"] = events
    if skip:
        out["skip_downstream"] = skip
    return {"__weft_call__": out}


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
