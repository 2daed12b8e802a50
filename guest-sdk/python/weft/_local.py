"""A stand-in for the host imports when an operator runs under plain CPython (unit tests):
logs go to `weft.testing.LOGS`, secrets come from `WEFT_SECRET_<NAME>`, HTTP is refused unless a
test installs a handler with `weft.testing.set_http_handler`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, List, Optional, Tuple


class Err(Exception):
    def __init__(self, value: Any):
        super().__init__(value)
        self.value = value


class _Types:
    class Level(Enum):
        TRACE = 0
        DEBUG = 1
        INFO = 2
        WARN = 3
        ERROR = 4

    @dataclass
    class TaskError:
        error: str
        cause: str


types = _Types

LOGS: List[Tuple[str, str]] = []
HEARTBEATS = [0]


class _Host:
    @staticmethod
    def log(level: Any, msg: str) -> None:
        LOGS.append((level.name.lower(), msg))

    @staticmethod
    def heartbeat() -> None:
        HEARTBEATS[0] += 1

    @staticmethod
    def get_secret(name: str) -> str:
        # As on the host: only names of ASCII letters, digits and `_` have an environment
        # variable (one-to-one, case-insensitive); other names live in the host's secrets.json.
        if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
            raise Err(f"Secrets.NotFound: no secret named `{name}` is set (only names of letters, digits and _ come from WEFT_SECRET_<NAME>)")
        env = "WEFT_SECRET_" + name.upper()
        v = os.environ.get(env)
        if v is None:
            raise Err(f"Secrets.NotFound: no secret named `{name}` is set (set {env} in tests)")
        return v


host = _Host


class _Http:
    @dataclass
    class Request:
        method: str
        url: str
        headers: List[Tuple[str, str]]
        body: Optional[bytes]
        timeout_ms: Optional[int]

    @dataclass
    class Response:
        status: int
        headers: List[Tuple[str, str]]
        body: bytes

    @dataclass
    class HttpError:
        error: str
        cause: str

    handler: Optional[Callable[[Any], Any]] = None

    @classmethod
    def send(cls, req: Any) -> Any:
        if cls.handler is None:
            raise Err(cls.HttpError("Sandbox.PermissionDenied", f"no HTTP in local tests: {req.method} {req.url} (use weft.testing.set_http_handler)"))
        return cls.handler(req)


http = _Http
