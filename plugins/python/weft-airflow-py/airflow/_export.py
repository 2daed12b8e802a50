"""Turns the DAGs a DAG file built into the dag-factory structure weft's loader reads: one
mapping per DAG with `default_args`-free task entries (settings already merged), `tasks` as a
list (local ids and `task_group_name`, as the loader prefixes them), `task_groups` by local
name and `dependencies` as full task ids. Values become
JSON: datetimes ISO 8601 strings, timedeltas `{"seconds": N}`, XComArgs `+task` references,
callables their names, other objects their class path."""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any, Dict, List

from ._model import (
    DAG,
    Asset,
    AssetAlias,
    BaseOperator,
    Param,
    TaskGroup,
    Timetable,
    XComArg,
    _AssetExpr,
    _GroupResult,
    _MappedArg,
)

MAX_DEPTH = 64


def value(v: Any, depth: int = 0) -> Any:
    """A Python value as JSON."""
    if depth > MAX_DEPTH:
        raise ValueError("a value nested deeper than 64 levels")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, enum.Enum):
        return value(v.value, depth + 1)
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.timezone.utc)
        return v.isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return {"seconds": v.total_seconds()}
    if isinstance(v, XComArg):
        return reference(v)
    if isinstance(v, Param):
        out = {"default": value(v.value, depth + 1)}
        if v.description:
            out["description"] = v.description
        for k, s in v.schema.items():
            if k in ("type", "title", "enum", "minimum", "maximum"):
                out[k] = value(s, depth + 1)
        return out
    if isinstance(v, Asset):
        return v.uri
    if isinstance(v, AssetAlias):
        return {"__type__": "airflow.sdk.AssetAlias", "name": v.name}
    if isinstance(v, _AssetExpr):
        return {v.op: [value(i, depth + 1) for i in v.items]}
    if isinstance(v, Timetable):
        out = {"__type__": f"{type(v).__module__}.{type(v).__name__}"}
        if v.args:
            out["__args__"] = [value(x, depth + 1) for x in v.args]
        out.update({k: value(x, depth + 1) for k, x in v.kwargs.items()})
        return out
    if isinstance(v, _GroupResult):
        return value(v.result, depth + 1)
    if isinstance(v, (list, tuple, set, frozenset)):
        return [value(i, depth + 1) for i in v]
    if isinstance(v, dict):
        return {str(k): value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (BaseOperator, TaskGroup)):
        return getattr(v, "task_id", None) or getattr(v, "group_id", "")
    if callable(v):
        return getattr(v, "__qualname__", None) or getattr(v, "__name__", repr(v))
    if hasattr(v, "total_seconds"):  # pendulum durations
        return {"seconds": float(v.total_seconds())}
    return {"__type__": f"{type(v).__module__}.{type(v).__name__}", "repr": repr(v)[:200]}


def reference(x: XComArg) -> str:
    """An XComArg as dag-factory writes it: `+task` or `+task['key']` (task ids inside groups
    keep their dots: `+group.task`); weft resolves it to the upstream's XCom at run time."""
    tid = x.operator.task_id
    return f"+{tid}" if x.key == "return_value" else f"+{tid}['{x.key}']"


def _expand_source(v: Any) -> Any:
    if isinstance(v, _MappedArg):
        return _expand_source(v.source)
    if isinstance(v, _GroupResult):
        return _expand_source(v.result)
    if isinstance(v, XComArg):
        if v.key == "return_value":
            return f"+{v.operator.task_id}"
        return "{{ ti.xcom_pull(task_ids='%s', key='%s') }}" % (v.operator.task_id, v.key)
    return value(v)


def _task_edges(d: DAG) -> Dict[str, List[str]]:
    ups: Dict[str, List[str]] = {t: [] for t in d.tasks}
    for u, v in d._edges:
        ups[v.task_id].append(u.task_id)
    return ups


def _settings(s: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in s.items():
        if k == "weft_grant":
            k = "grant"
        if k in ("email", "email_on_failure", "email_on_retry", "sla", "depends_on_past",
                 "wait_for_downstream", "inlets", "do_xcom_push", "doc_md",
                 "on_failure_callback", "on_success_callback", "on_retry_callback",
                 "on_execute_callback"):
            # Airflow-only settings weft does not act on (e-mail, SLAs, inlets, callbacks);
            # `outlets` are kept: their assets get events when the task succeeds
            continue
        if k == "outlets":
            # the assets and aliases (lineage entities such as `File` are not assets)
            items = v if isinstance(v, (list, tuple, set, frozenset)) else [v]
            kept = [i for i in items if isinstance(i, (Asset, AssetAlias, str))]
            if kept:
                out[k] = value(kept)
            continue
        out[k] = value(v)
    return out


def export_dag(d: DAG) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in d.settings.items():
        if k in ("on_success_callback", "on_failure_callback", "sla_miss_callback", "access_control",
                 "owner_links", "template_searchpath"):
            continue
        if k == "schedule" and v is None:
            out[k] = None
            continue
        out[k] = value(v)
    if "params" in d.settings or d.params:
        out["params"] = value(d.params)
    groups: Dict[str, Any] = {}
    for g in d.groups.values():
        # keyed by full group id: a dotted id (`outer.inner`) names its parent group itself, so
        # two groups with the same local name in different parents stay apart
        entry: Dict[str, Any] = {}
        if g.tooltip:
            entry["tooltip"] = g.tooltip
        groups[g.group_id] = entry
    ups = _task_edges(d)
    tasks: List[Dict[str, Any]] = []
    for tid, op in d.tasks.items():
        # the innermost enclosing group whose id prefixes the task id (groups with
        # prefix_group_id=False prefix nothing)
        owner = op.group
        while owner is not None and not tid.startswith(owner.group_id + "."):
            owner = owner.parent
        grouped = owner is not None
        t: Dict[str, Any] = {"task_id": tid[len(owner.group_id) + 1:] if owner is not None else tid}
        if op.decorator:
            t["decorator"] = op.decorator
        else:
            t["operator"] = type(op).class_path()
        if grouped:
            t["task_group_name"] = owner.group_id
        t.update(_settings(op.settings))
        if op.branch:
            t["branch"] = True
        if op.multiple_outputs:
            t["multiple_outputs"] = True
        if op.params:
            t["params"] = value(op.params)
        for k, v in op.arguments.items():
            t[k] = value(v)
        if op.expand_args is not None:
            t["expand"] = {k: _expand_source(v) for k, v in op.expand_args.items()}
        if ups[tid]:
            t["dependencies"] = ups[tid]
        tasks.append(t)
    out["tasks"] = tasks
    if groups:
        out["task_groups"] = groups
    return out


def export(dags: List[DAG]) -> Dict[str, Any]:
    """Every DAG of the file (the last definition of a dag id wins, as in Airflow's DagBag)."""
    found: Dict[str, Any] = {}
    lines: Dict[str, int] = {}
    task_lines: Dict[str, Dict[str, int]] = {}
    for d in dags:
        found[d.dag_id] = export_dag(d)
        lines[d.dag_id] = d.line
        task_lines[d.dag_id] = {tid: op.line for tid, op in d.tasks.items()}
    return {"dags": found, "lines": lines, "task_lines": task_lines}
