"""weft's Python guest SDK: write an operator as a plain decorated function.

    from weft import operator, Context, TaskError

    @operator
    def run(input: dict, ctx: Context) -> dict:
        rows = ctx.read_text(input["path"]).splitlines()
        if not rows:
            raise TaskError("DataQuality.Failed", f"{input['path']} is empty")
        ctx.log(f"{len(rows)} rows")
        return {"rows": len(rows)}

`weft plugin build DIR` (or scripts/polyglot.sh) turns the module into a WebAssembly component of
the `weft:operator` `task` world with componentize-py; `@sensor def poke(ctx) -> bool` makes a
`sensor-task` component instead. Inside the sandbox the host imports (log, heartbeat, secrets,
HTTP) are real; under plain CPython (unit tests) a local stand-in is used, see `weft.testing`.

Errors: raise `TaskError(error, cause)` for an ASL/Airflow error name of your choice. Any other
exception becomes an error named after its class (like AWS Lambda: `ValueError`, `KeyError`...),
so ASL `Retry`/`Catch` copied from Lambda workflows keeps matching. File-system permission
errors (paths outside the grant) become `Sandbox.PermissionDenied` with the path; denied HTTP
hosts and secrets do too. A `MemoryError` is not caught: the sandbox reports it as
`Sandbox.MemoryLimit`.
"""

from __future__ import annotations

import errno as _errno
import json as _json
import os as _os
import sys as _sys
import traceback as _traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

__all__ = [
    "operator",
    "sensor",
    "Context",
    "TaskError",
    "Response",
]

__version__ = "0.1.0"


class TaskError(Exception):
    """A task failure: `error` becomes ASL's Error (matched by Retry/Catch), `cause` its Cause."""

    def __init__(self, error: str, cause: str = ""):
        super().__init__(f"{error}: {cause}")
        self.error = str(error)
        self.cause = str(cause)


# ---- host bindings (real inside the component, a local stand-in elsewhere) -------------------

try:  # inside a componentize-py component
    from wit_world.imports import host as _host  # type: ignore
    from wit_world.imports import http as _http  # type: ignore
    from wit_world.imports import types as _types  # type: ignore
    from componentize_py_types import Err as _Err  # type: ignore

    IN_SANDBOX = True
except ImportError:  # plain CPython: unit tests of an operator
    from . import _local as _local_host

    _host = _local_host.host
    _http = _local_host.http
    _types = _local_host.types
    _Err = _local_host.Err
    IN_SANDBOX = False

_LEVELS = {
    "trace": _types.Level.TRACE,
    "debug": _types.Level.DEBUG,
    "info": _types.Level.INFO,
    "warn": _types.Level.WARN,
    "warning": _types.Level.WARN,
    "error": _types.Level.ERROR,
}

# errnos that mean "outside what the grant preopened" (EPERM from cap-std's containment,
# ENOTCAPABLE when no preopen covers the path, EACCES / EROFS for writes to read-only grants).
_DENIED_ERRNOS = {_errno.EPERM, _errno.EACCES, getattr(_errno, "ENOTCAPABLE", 76), _errno.EROFS}


def _denied(e: OSError, path: Any = None, action: str = "access") -> Optional[TaskError]:
    if isinstance(e, PermissionError) or e.errno in _DENIED_ERRNOS:
        p = path if path is not None else (e.filename or "?")
        return TaskError(
            "Sandbox.PermissionDenied",
            f"cannot {action} {p}: the operator's grant does not cover it ({e.strerror or e})",
        )
    return None


def _outside_grant(path: Any) -> bool:
    """Whether no ancestor of `path` exists: inside the sandbox, only granted directories (and
    what lies below them) exist, so such a path is outside every grant (wasi-libc reports ENOENT
    for paths no preopen covers)."""
    try:
        p = _os.path.abspath(_os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    parent = _os.path.dirname(p)
    while parent and parent != "/":
        if _os.path.isdir(parent):
            return False
        parent = _os.path.dirname(parent)
    return True


def _file_error(e: OSError, path: Any, action: str) -> TaskError:
    d = _denied(e, path, action)
    if d is not None:
        return d
    if isinstance(e, FileNotFoundError) and IN_SANDBOX and _outside_grant(path):
        return TaskError(
            "Sandbox.PermissionDenied",
            f"cannot {action} {path}: no directory granted to this operator contains it",
        )
    if isinstance(e, FileNotFoundError):
        return TaskError("File.NotFound", f"cannot {action} {path}: no such file or directory")
    if isinstance(e, IsADirectoryError):
        return TaskError("File.IsADirectory", f"cannot {action} {path}: it is a directory")
    return TaskError("File.Error", f"cannot {action} {path}: {e.strerror or e}")


class Response:
    """An HTTP response from `Context.http`."""

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return None

    def __repr__(self) -> str:
        return f"Response(status={self.status}, {len(self.body)} bytes)"


class Context:
    """What the host tells an operator about this invocation, and the host's services."""

    def __init__(self, raw: Optional[Dict[str, Any]] = None):
        raw = raw if isinstance(raw, dict) else {}
        self.raw: Dict[str, Any] = raw
        self.task: str = str(raw.get("task", ""))
        self.attempt: int = int(raw.get("attempt", 1) or 1)
        self.params: Dict[str, Any] = raw.get("params") or {}

    # -- logging ---------------------------------------------------------------------------
    def log(self, *msg: Any, level: str = "info") -> None:
        """Appends a line to the task log (`weft invoke --logs`, the UI's task log)."""
        lv = _LEVELS.get(level.lower())
        if lv is None:
            raise ValueError(f"unknown log level {level!r} (trace, debug, info, warn, error)")
        _host.log(lv, " ".join(str(m) for m in msg))

    def debug(self, *msg: Any) -> None:
        self.log(*msg, level="debug")

    def info(self, *msg: Any) -> None:
        self.log(*msg, level="info")

    def warn(self, *msg: Any) -> None:
        self.log(*msg, level="warn")

    def error(self, *msg: Any) -> None:
        self.log(*msg, level="error")

    def heartbeat(self) -> None:
        """Tells the host the task is alive (ASL HeartbeatSeconds)."""
        _host.heartbeat()

    # -- secrets ---------------------------------------------------------------------------
    def secret(self, name: str) -> str:
        """A secret the grant allows (`secrets:Get` on `secret:NAME`); TaskError otherwise."""
        try:
            return _host.get_secret(name)
        except _Err as e:
            reason = str(e.value)
            err, _, cause = reason.partition(": ")
            if cause and "." in err and " " not in err:
                raise TaskError(err, cause) from None
            raise TaskError("Sandbox.PermissionDenied", reason) from None

    # -- files (only the directories the grant names exist inside the sandbox) ------------
    def open(self, path: str, mode: str = "r", encoding: Optional[str] = None, newline: Optional[str] = None):
        """`open()` whose permission errors become `Sandbox.PermissionDenied` (with the path)."""
        try:
            if "b" in mode:
                return open(path, mode)
            return open(path, mode, encoding=encoding or "utf-8", newline=newline)
        except OSError as e:
            raise _file_error(e, path, "write" if any(c in mode for c in "wax+") else "read") from None

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        with self.open(path, "r", encoding=encoding) as f:
            try:
                return f.read()
            except OSError as e:
                raise _file_error(e, path, "read") from None

    def read_bytes(self, path: str) -> bytes:
        with self.open(path, "rb") as f:
            try:
                return f.read()
            except OSError as e:
                raise _file_error(e, path, "read") from None

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> int:
        with self.open(path, "w", encoding=encoding) as f:
            try:
                return f.write(text)
            except OSError as e:
                raise _file_error(e, path, "write") from None

    def write_bytes(self, path: str, data: bytes) -> int:
        with self.open(path, "wb") as f:
            try:
                return f.write(data)
            except OSError as e:
                raise _file_error(e, path, "write") from None

    def listdir(self, path: str) -> List[str]:
        try:
            return sorted(_os.listdir(path))
        except OSError as e:
            raise _file_error(e, path, "list") from None

    def exists(self, path: str) -> bool:
        """Whether `path` exists; a path outside the grant raises `Sandbox.PermissionDenied`."""
        try:
            _os.stat(path)
            return True
        except FileNotFoundError as e:
            if IN_SANDBOX and _outside_grant(path):
                raise _file_error(e, path, "stat") from None
            return False
        except OSError as e:
            raise _file_error(e, path, "stat") from None

    # -- HTTP (only the hosts the grant allows with http:Request) ---------------------------
    def http(
        self,
        method: str,
        url: str,
        headers: Optional[Union[Dict[str, str], Iterable[Tuple[str, str]]]] = None,
        body: Optional[Union[bytes, str]] = None,
        json: Any = None,
        timeout_ms: Optional[int] = None,
        check: bool = False,
    ) -> Response:
        """Sends a request through the host; a host the grant does not name raises
        `TaskError("Sandbox.PermissionDenied", ...)`. With `check=True` a non-2xx status raises
        `TaskError("Http.Status<code>", ...)`."""
        hs: List[Tuple[str, str]] = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if json is not None:
            body = _json.dumps(json)
            if not any(k.lower() == "content-type" for k, _ in hs):
                hs.append(("content-type", "application/json"))
        data = body.encode("utf-8") if isinstance(body, str) else body
        req = _http.Request(method=method.upper(), url=url, headers=hs, body=data, timeout_ms=timeout_ms)
        try:
            r = _http.send(req)
        except _Err as e:
            v = e.value
            raise TaskError(getattr(v, "error", "Http.Error"), getattr(v, "cause", str(v))) from None
        resp = Response(r.status, list(r.headers), bytes(r.body))
        if check and not resp.ok:
            raise TaskError(f"Http.Status{resp.status}", f"{method.upper()} {url} returned {resp.status}: {resp.text[:200]}")
        return resp

    def get(self, url: str, **kw: Any) -> Response:
        return self.http("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Response:
        return self.http("POST", url, **kw)


# ---- registration and dispatch ---------------------------------------------------------------

_registered: Dict[str, Callable[..., Any]] = {}


def operator(fn: Callable[[Any, Context], Any]) -> Callable[[Any, Context], Any]:
    """Marks `fn(input, ctx) -> JSON-able` as the component's `run` export."""
    if "run" in _registered:
        raise RuntimeError(f"two @operator functions: {_registered['run'].__name__} and {fn.__name__}")
    _registered["run"] = fn
    return fn


def sensor(fn: Callable[[Context], bool]) -> Callable[[Context], bool]:
    """Marks `fn(ctx) -> bool` as the component's `poke` export (`sensor-task` world)."""
    if "poke" in _registered:
        raise RuntimeError(f"two @sensor functions: {_registered['poke'].__name__} and {fn.__name__}")
    _registered["poke"] = fn
    return fn


def _where(e: BaseException) -> str:
    tb = _traceback.extract_tb(e.__traceback__)
    for fr in reversed(tb):
        if "/weft/" not in fr.filename.replace("\\", "/"):
            return f" (at {_os.path.basename(fr.filename)}:{fr.lineno} in {fr.name})"
    return ""


def _to_task_error(e: BaseException) -> TaskError:
    if isinstance(e, TaskError):
        return e
    if isinstance(e, OSError):
        d = _denied(e)
        if d is not None:
            return d
        if isinstance(e, FileNotFoundError) and e.filename is not None:
            return _file_error(e, e.filename, "open")
    if isinstance(e, RecursionError):
        return TaskError("Sandbox.StackOverflow", f"maximum recursion depth exceeded{_where(e)}")
    msg = str(e) or repr(e)
    return TaskError(type(e).__name__, f"{msg}{_where(e)}")


def _call(name: str, thunk: Callable[[], Any]) -> Any:
    """Runs user code, turning exceptions into TaskError (MemoryError propagates: the host
    reports it as Sandbox.MemoryLimit)."""
    try:
        return thunk()
    except MemoryError:
        raise
    except BaseException as e:  # noqa: BLE001 - every failure must become a named error
        raise _to_task_error(e) from None


def _parse_ctx(ctx: str) -> Context:
    try:
        raw = _json.loads(ctx) if ctx else {}
    except ValueError:
        raw = {}
    return Context(raw)


def dispatch_run(input: str, ctx: str) -> str:
    """The `run` export: JSON in, JSON out, TaskError raised."""
    fn = _registered.get("run")
    if fn is None:
        raise TaskError("States.TaskFailed", "this component has no @operator function")
    try:
        value = _json.loads(input) if input else None
    except ValueError as e:
        raise TaskError("States.Runtime", f"the input is not JSON: {e}") from None
    c = _parse_ctx(ctx)
    out = _call("run", lambda: fn(value, c))
    try:
        return _json.dumps(out, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TaskError("States.TaskFailed", f"the operator's result is not JSON-serializable: {e}") from None


def dispatch_poke(ctx: str) -> bool:
    fn = _registered.get("poke")
    if fn is None:
        raise TaskError("States.TaskFailed", "this component has no @sensor function")
    c = _parse_ctx(ctx)
    return bool(_call("poke", lambda: fn(c)))


def _wit_error(e: TaskError):
    return _Err(_types.TaskError(error=e.error, cause=e.cause))
