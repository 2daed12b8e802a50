"""weft-airflow-py: parses a Python DAG file inside weft's sandbox.

input  {"path": "dags/etl.py", "source": "<the file's text>"}
output {"dags": {DAG_ID: <dag-factory structure>}, "lines": {DAG_ID: LINE}}
    or {"import_error": {"line": N, "error": "ModuleNotFoundError: No module named 'pandas'",
                         "traceback": "Traceback (most recent call last): ..."}}

The file's top level runs against weft's `airflow` package (this component's `airflow/`), with
no filesystem, network or secrets (the host gives this component an empty grant), under the
host's fuel, memory and time limits. Python callables are recorded by name, never called."""

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


@operator
def run(input, ctx):
    if not isinstance(input, dict):
        raise TaskError("Input.Invalid", 'expected {"path": FILE, "source": TEXT}')
    path, source = input.get("path"), input.get("source")
    if not isinstance(path, str) or not isinstance(source, str):
        raise TaskError("Input.Invalid", 'expected {"path": FILE, "source": TEXT} (strings)')
    return parse(path, source)
