"""The part of `pendulum` that DAG files use at their top level (`pendulum.datetime(...)`,
`pendulum.duration(...)`, `pendulum.timezone(...)`, `pendulum.now()`...), on the standard
library's datetime: weft ships it so DAG files parse without third-party packages. Named time
zones other than UTC become fixed-offset-free zone names kept in the datetime's `tzinfo` name
(weft's loader reads the ISO 8601 string)."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Optional, Union

UTC = _dt.timezone.utc
DateTime = _dt.datetime
Date = _dt.date
Duration = _dt.timedelta


def timezone(name: Union[str, Any] = "UTC") -> Any:
    if not isinstance(name, str) or name.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return UTC
    try:
        import zoneinfo

        return zoneinfo.ZoneInfo(name)
    except Exception:  # no tz database in the sandbox: keep UTC
        return UTC


def datetime(
    year: int,
    month: int = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
    tz: Optional[Union[str, Any]] = "UTC",
    **_: Any,
) -> _dt.datetime:
    zone = timezone(tz) if tz is not None else None
    return _dt.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)


def date(year: int, month: int = 1, day: int = 1) -> _dt.date:
    return _dt.date(year, month, day)


def duration(
    days: float = 0, seconds: float = 0, microseconds: float = 0, milliseconds: float = 0,
    minutes: float = 0, hours: float = 0, weeks: float = 0, **_: Any,
) -> _dt.timedelta:
    return _dt.timedelta(days=days, seconds=seconds, microseconds=microseconds,
                         milliseconds=milliseconds, minutes=minutes, hours=hours, weeks=weeks)


def now(tz: Any = "UTC") -> _dt.datetime:
    return _dt.datetime.now(timezone(tz))


def today(tz: Any = "UTC") -> _dt.datetime:
    return now(tz).replace(hour=0, minute=0, second=0, microsecond=0)


def yesterday(tz: Any = "UTC") -> _dt.datetime:
    return today(tz) - _dt.timedelta(days=1)


def parse(text: str, tz: Any = "UTC", **_: Any) -> _dt.datetime:
    d = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=timezone(tz))
