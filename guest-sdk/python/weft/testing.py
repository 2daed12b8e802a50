"""Helpers to unit-test an operator under plain CPython (no sandbox, no component build):

    import app, weft.testing as wt
    assert wt.run(app.run, {"x": 1})["x"] == 1
    err = wt.run_error(app.run, {"bad": True}); assert err.error == "DataQuality.Failed"
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional

from . import Context, TaskError, _call, _local

LOGS = _local.LOGS


def context(task: str = "test", attempt: int = 1, params: Optional[Dict[str, Any]] = None) -> Context:
    return Context({"task": task, "attempt": attempt, "params": params or {}})


def run(fn: Callable[..., Any], input: Any, ctx: Optional[Context] = None) -> Any:
    """Calls an @operator function as the sandbox would: JSON round trip, errors as TaskError."""
    value = json.loads(json.dumps(input))
    out = _call("run", lambda: fn(value, ctx or context()))
    return json.loads(json.dumps(out))


def run_error(fn: Callable[..., Any], input: Any, ctx: Optional[Context] = None) -> TaskError:
    try:
        run(fn, input, ctx)
    except TaskError as e:
        return e
    raise AssertionError("the operator succeeded; a TaskError was expected")


def set_http_handler(handler: Optional[Callable[[Any], Any]]) -> None:
    """`handler(request) -> weft._local.http.Response` (or raise weft._local.Err(HttpError))."""
    _local.http.handler = handler
