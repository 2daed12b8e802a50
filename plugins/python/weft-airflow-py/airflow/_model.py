"""The DAG model that DAG files build when they run against weft's `airflow` package: `DAG`,
operators, TaskFlow tasks, task groups, XCom references and dependencies, recorded as data.

Nothing here executes a task. Every object remembers what the DAG file said, and
`airflow._export` turns the DAGs into the dag-factory structure weft's DAG loader reads."""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
from typing import Any, Dict, List, Optional

# ---- registry of one parse ------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.dags: List["DAG"] = []
        self.dag_stack: List["DAG"] = []
        self.group_stack: List["TaskGroup"] = []
        self.max_tasks = 20_000
        self.task_count = 0
        # set while a task's callable runs (call mode): the weft Context and Airflow's context
        self.call_ctx: Any = None
        self.call_context: Optional[Dict[str, Any]] = None


STATE = _State()


def reset() -> None:
    """Forget every DAG of the previous parse."""
    STATE.dags.clear()
    STATE.dag_stack.clear()
    STATE.group_stack.clear()
    STATE.task_count = 0


def _current_dag() -> Optional["DAG"]:
    return STATE.dag_stack[-1] if STATE.dag_stack else None


def _current_group() -> Optional["TaskGroup"]:
    return STATE.group_stack[-1] if STATE.group_stack else None


def _caller_line() -> int:
    """Line of the DAG file (module `__weft_dag__`) that is running, 0 when unknown."""
    f = inspect.currentframe()
    while f is not None:
        if f.f_globals.get("__name__") == "__weft_dag__":
            return f.f_lineno
        f = f.f_back
    return 0


class AirflowException(Exception):
    pass


class AirflowSkipException(AirflowException):
    pass


class AirflowFailException(AirflowException):
    pass


class AirflowSensorTimeout(AirflowException):
    pass


class DuplicateTaskIdFound(AirflowException):
    pass


# ---- values passed through to weft --------------------------------------------------------


class Param:
    """`airflow.models.param.Param`: a DAG or task parameter with a default and a schema."""

    def __init__(self, default: Any = None, description: Optional[str] = None, **schema: Any):
        self.value = default
        self.description = description
        self.schema = schema


class Asset:
    """`airflow.sdk.Asset` / `airflow.datasets.Dataset`: kept as its URI."""

    def __init__(self, uri: str = "", name: Optional[str] = None, **extra: Any):
        self.uri = uri or (name or "")
        self.name = name or uri
        self.extra = extra

    def __and__(self, other: Any) -> "_AssetExpr":
        return _AssetExpr("__and__", [self, other])

    def __or__(self, other: Any) -> "_AssetExpr":
        return _AssetExpr("__or__", [self, other])

    def __hash__(self) -> int:
        return hash(self.uri)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Asset) and other.uri == self.uri


class AssetAlias:
    """`airflow.sdk.AssetAlias` / `airflow.datasets.DatasetAlias`: a name a task emits asset
    events through (`outlet_events[alias].add(asset)`) and a DAG can be scheduled on."""

    def __init__(self, name: str = "", group: str = "asset"):
        if not isinstance(name, str) or not name.strip():
            raise AirflowException("AssetAlias() needs a non-empty name")
        self.name = name.strip()
        self.group = group

    def __and__(self, other: Any) -> "_AssetExpr":
        return _AssetExpr("__and__", [self, other])

    def __or__(self, other: Any) -> "_AssetExpr":
        return _AssetExpr("__or__", [self, other])

    def __hash__(self) -> int:
        return hash(("alias", self.name))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, AssetAlias) and other.name == self.name

    def __repr__(self) -> str:
        return f"AssetAlias(name={self.name!r})"


# Most asset events one task instance may emit through `outlet_events` (the host refuses more).
MAX_OUTLET_EVENTS = 1000
# Largest `extra` of one asset event, in bytes of JSON (the host refuses more).
MAX_EVENT_EXTRA_BYTES = 64 * 1024


def _checked_extra(extra: Any, what: str) -> Dict[str, Any]:
    import json

    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise AirflowException(f"the extra of {what} must be a dict, got {type(extra).__name__}")
    from . import _export

    out = _export.value(extra)
    size = len(json.dumps(out, separators=(",", ":")))
    if size > MAX_EVENT_EXTRA_BYTES:
        raise AirflowException(
            f"the extra of {what} is {size} bytes of JSON, more than the {MAX_EVENT_EXTRA_BYTES} "
            "an asset event may carry")
    return out


class OutletEventAccessor:
    """`outlet_events[key]`: the `extra` of a plain outlet's event, or (for an alias the task
    names in its `outlets`) the events added through the alias."""

    def __init__(self, key: Any, owner: "OutletEventAccessors"):
        self.key = key
        self.extra: Dict[str, Any] = {}
        self.asset_alias_events: List[Dict[str, Any]] = []
        self._owner = owner

    def add(self, asset: Any, extra: Optional[Dict[str, Any]] = None) -> None:
        """Emit an event for `asset` through this alias when the task succeeds."""
        if not isinstance(self.key, AssetAlias):
            raise AirflowException(
                f"outlet_events[{self.key!r}].add(): events can only be added through an AssetAlias")
        declared = self._owner.declared
        if declared is not None and self.key not in declared:
            raise AirflowException(
                f"{self.key!r} is not among the task's outlets: name it in `outlets` to add "
                "asset events through it")
        if isinstance(asset, str):
            asset = Asset(asset)
        if not isinstance(asset, Asset):
            raise AirflowException(
                f"outlet_events[{self.key!r}].add() needs an Asset, got {type(asset).__name__}")
        if self._owner.count >= MAX_OUTLET_EVENTS:
            raise AirflowException(
                f"a task instance may add at most {MAX_OUTLET_EVENTS} asset events through aliases")
        ev = {"uri": asset.uri, "extra": _checked_extra(extra, f"the event of {asset.uri!r}"),
              "alias": self.key.name}
        self.asset_alias_events.append(ev)
        self._owner.count += 1


class OutletEventAccessors:
    """`outlet_events` in a task's context: one accessor per Asset or AssetAlias key."""

    def __init__(self, declared: Optional[List[Any]]):
        # the task's outlets (None: not known, the host checks them)
        self.declared = declared
        self.count = 0
        self._items: Dict[Any, OutletEventAccessor] = {}

    def __getitem__(self, key: Any) -> OutletEventAccessor:
        if isinstance(key, str):
            key = Asset(key)
        if not isinstance(key, (Asset, AssetAlias)):
            raise KeyError(f"outlet_events is keyed by Asset or AssetAlias, got {type(key).__name__}")
        if key not in self._items:
            self._items[key] = OutletEventAccessor(key, self)
        return self._items[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def export(self) -> List[Dict[str, Any]]:
        """The events to emit when the try succeeds: extras of plain outlets, then the events
        added through aliases."""
        out: List[Dict[str, Any]] = []
        for key, acc in self._items.items():
            if isinstance(key, Asset) and acc.extra:
                if self.declared is not None and key not in self.declared:
                    continue  # Airflow ignores the extra of an asset the task does not emit
                out.append({"uri": key.uri, "extra": _checked_extra(acc.extra, f"{key.uri!r}")})
        for key, acc in self._items.items():
            if isinstance(key, AssetAlias):
                out.extend(acc.asset_alias_events)
        return out


class _AssetExpr:
    def __init__(self, op: str, items: List[Any]):
        self.op = op
        self.items = items

    def __and__(self, other: Any) -> "_AssetExpr":
        return _AssetExpr("__and__", [self, other])

    def __or__(self, other: Any) -> "_AssetExpr":
        return _AssetExpr("__or__", [self, other])


def AssetAll(*assets: Any) -> _AssetExpr:  # noqa: N802 (Airflow's name)
    return _AssetExpr("__and__", list(assets))


def AssetAny(*assets: Any) -> _AssetExpr:  # noqa: N802
    return _AssetExpr("__or__", list(assets))


class Timetable:
    """A timetable object (`CronTriggerTimetable(...)`, custom ones): kept by class and kwargs."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args
        self.kwargs = kwargs


_NO_DEFAULT: Any = object()


class VariableAccessor:
    """`airflow.models.Variable`: variables are read at run time under the task's grant, never
    while the DAG file is parsed. Inside a callable, `Variable.get` asks the host for the secret
    `var/KEY` (`secrets:Get` on `secret:var/KEY` in the task's grant): a variable that is not
    set, or that the grant does not allow, gives the default when one is passed; without a
    default, a missing variable raises KeyError (as Airflow does) and a refused one
    `Sandbox.PermissionDenied` naming the resource."""

    @staticmethod
    def get(
        key: str,
        default_var: Any = _NO_DEFAULT,
        deserialize_json: bool = False,
        default: Any = _NO_DEFAULT,
        **_: Any,
    ) -> Any:
        if default is not _NO_DEFAULT and default_var is _NO_DEFAULT:
            default_var = default
        ctx = STATE.call_ctx
        if ctx is not None:
            return _read_variable(ctx, key, default_var, deserialize_json)
        raise AirflowException(
            f"Variable.get({key!r}) at the top level of a DAG file: weft parses DAG files without "
            "access to variables or secrets; read it inside a task, or use the template "
            f"'{{{{ var.value.{key} }}}}' in an operator argument (rendered at run time under the "
            "task's grant)"
        )

    @staticmethod
    def set(key: str, value: Any, **_: Any) -> None:
        raise AirflowException(f"Variable.set({key!r}) is not allowed while parsing a DAG file")


def _read_variable(ctx: Any, key: Any, default_var: Any, deserialize_json: bool) -> Any:
    import json

    from weft import TaskError

    if not isinstance(key, str) or not key or "/" in key:
        raise AirflowException(f"Variable.get({key!r}): a variable name is one non-empty segment")
    try:
        raw = ctx.secret("var/" + key)
    except TaskError as e:
        if e.error == "Secrets.NotFound" or (
            e.error == "Sandbox.PermissionDenied" and default_var is not _NO_DEFAULT
        ):
            if default_var is _NO_DEFAULT:
                raise KeyError(f"Variable {key} does not exist") from None
            if e.error == "Sandbox.PermissionDenied":
                ctx.warn(f"Variable.get({key!r}): {e.cause}; using the default")
            return default_var
        raise
    if deserialize_json:
        return json.loads(raw)
    return raw


class PokeReturnValue:
    """`airflow.sdk.PokeReturnValue`: a sensor's answer, with the XCom it pushes when done."""

    def __init__(self, is_done: bool, xcom_value: Any = None):
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return bool(self.is_done)


def get_current_context() -> Dict[str, Any]:
    """`airflow.sdk.get_current_context()`: the running task's context (call mode only)."""
    if STATE.call_context is None:
        raise AirflowException("get_current_context() is only available while a task runs")
    return STATE.call_context


class BaseHook:
    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        raise AirflowException(
            f"connection {conn_id!r} read at the top level of a DAG file: weft parses DAG files "
            "without access to connections; use the template '{{ conn."
            + conn_id
            + " }}' or read it inside a task"
        )


# ---- dependencies ---------------------------------------------------------------------------


def _nodes(x: Any) -> List[Any]:
    if isinstance(x, (list, tuple, set)):
        out: List[Any] = []
        for i in x:
            out.extend(_nodes(i))
        return out
    if isinstance(x, XComArg):
        return [x.operator]
    if isinstance(x, _GroupResult):
        return [x.group]
    if isinstance(x, (BaseOperator, TaskGroup)):
        return [x]
    if x is None:
        return []
    raise TypeError(f"cannot set a dependency on {type(x).__name__}")


def _set_edges(upstream: Any, downstream: Any) -> None:
    """Record edges as Airflow does at the time of the call: a task group stands for its
    leaves (as an upstream) or its roots (as a downstream), as they are now."""
    for u in _nodes(upstream):
        for d in _nodes(downstream):
            dag = _dag_of(u) or _dag_of(d)
            if dag is None:
                raise AirflowException("a dependency between tasks that belong to no DAG")
            for a in _ends(u, dag, roots=False):
                for b in _ends(d, dag, roots=True):
                    if a is not b and (a.task_id, b.task_id) not in dag._edge_set:
                        dag._edge_set.add((a.task_id, b.task_id))
                        dag._edges.append((a, b))


def _ends(node: Any, dag: "DAG", roots: bool) -> List["BaseOperator"]:
    if isinstance(node, BaseOperator):
        return [node]
    tasks = node.all_tasks()
    ids = {t.task_id for t in tasks}
    inner = {
        (d if roots else u)
        for (u, d) in dag._edge_set
        if u in ids and d in ids
    }
    return [t for t in tasks if t.task_id not in inner]


def _xcom_sources(value: Any, depth: int = 0) -> List["BaseOperator"]:
    """The operators whose output `value` references (XComArgs, mapped-group arguments and
    task group results, nested in lists and dicts)."""
    out: List[BaseOperator] = []
    if depth > 64:
        return out
    if isinstance(value, XComArg):
        out.append(value.operator)
    elif isinstance(value, _MappedArg):
        out.extend(_xcom_sources(value.source, depth + 1))
    elif isinstance(value, _GroupResult):
        out.extend(_xcom_sources(value.result, depth + 1))
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            out.extend(_xcom_sources(v, depth + 1))
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_xcom_sources(v, depth + 1))
    return out


def _dag_of(node: Any) -> Optional["DAG"]:
    return getattr(node, "dag", None)


class DependencyMixin:
    def __rshift__(self, other: Any) -> Any:
        _set_edges(self, other)
        return other

    def __lshift__(self, other: Any) -> Any:
        _set_edges(other, self)
        return other

    def __rrshift__(self, other: Any) -> Any:
        _set_edges(other, self)
        return self

    def __rlshift__(self, other: Any) -> Any:
        _set_edges(self, other)
        return self

    def set_downstream(self, other: Any) -> None:
        _set_edges(self, other)

    def set_upstream(self, other: Any) -> None:
        _set_edges(other, self)


def chain(*elements: Any) -> None:
    """`airflow.models.baseoperator.chain`: lists of equal length are joined pairwise."""
    for a, b in zip(elements, elements[1:]):
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            if len(a) != len(b):
                raise AirflowException(
                    f"chain() of lists of different lengths ({len(a)} and {len(b)})"
                )
            for x, y in zip(a, b):
                _set_edges(x, y)
        else:
            _set_edges(a, b)


def cross_downstream(from_tasks: Any, to_tasks: Any) -> None:
    _set_edges(list(from_tasks), list(to_tasks))


def chain_linear(*elements: Any) -> None:
    for a, b in zip(elements, elements[1:]):
        _set_edges(a, b)


# ---- DAG ------------------------------------------------------------------------------------

_UNSET: Any = object()


class DAG(DependencyMixin):
    """`airflow.DAG`: a context manager that collects the operators created inside it."""

    def __init__(
        self,
        dag_id: Optional[str] = None,
        description: Optional[str] = None,
        schedule: Any = _UNSET,
        schedule_interval: Any = _UNSET,
        timetable: Any = None,
        start_date: Any = None,
        end_date: Any = None,
        default_args: Optional[Dict[str, Any]] = None,
        catchup: Optional[bool] = None,
        tags: Any = None,
        params: Optional[Dict[str, Any]] = None,
        max_active_runs: Optional[int] = None,
        max_active_tasks: Optional[int] = None,
        concurrency: Optional[int] = None,
        dagrun_timeout: Any = None,
        doc_md: Optional[str] = None,
        **kwargs: Any,
    ):
        if not dag_id or not isinstance(dag_id, str):
            raise AirflowException("DAG() needs a dag_id string")
        self.dag_id = dag_id
        self.line = _caller_line()
        self.settings: Dict[str, Any] = {}
        s = self.settings
        if description is not None:
            s["description"] = description
        if schedule is not _UNSET:
            s["schedule"] = schedule
        elif schedule_interval is not _UNSET:
            s["schedule"] = schedule_interval
        elif timetable is not None:
            s["schedule"] = timetable
        for k, v in (
            ("start_date", start_date),
            ("end_date", end_date),
            ("catchup", catchup),
            ("tags", list(tags) if tags is not None else None),
            ("params", params),
            ("max_active_runs", max_active_runs),
            ("max_active_tasks", max_active_tasks if max_active_tasks is not None else concurrency),
            ("dagrun_timeout", dagrun_timeout),
            ("doc_md", doc_md),
        ):
            if v is not None:
                s[k] = v
        for k, v in kwargs.items():
            if k in _DAG_PASSTHROUGH and v is not None:
                s[k] = v
        self.default_args: Dict[str, Any] = dict(default_args or {})
        self.params = dict(params or {})
        self.tasks: Dict[str, BaseOperator] = {}
        self.groups: Dict[str, TaskGroup] = {}
        self._edges: List[Any] = []
        self._edge_set: set = set()
        self._taskflow_counts: Dict[str, int] = {}
        STATE.dags.append(self)

    def __enter__(self) -> "DAG":
        STATE.dag_stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if STATE.dag_stack and STATE.dag_stack[-1] is self:
            STATE.dag_stack.pop()

    def add_task(self, op: "BaseOperator") -> None:
        if op.task_id in self.tasks:
            raise DuplicateTaskIdFound(
                f"task id {op.task_id!r} has already been added to the DAG {self.dag_id!r}"
            )
        STATE.task_count += 1
        if STATE.task_count > STATE.max_tasks:
            raise AirflowException(
                f"more than {STATE.max_tasks} tasks in one DAG file: weft refuses larger DAG files"
            )
        self.tasks[op.task_id] = op

    @property
    def task_ids(self) -> List[str]:
        return list(self.tasks)

    @property
    def tags(self) -> List[str]:
        return list(self.settings.get("tags") or [])

    def get_task(self, task_id: str) -> "BaseOperator":
        return self.tasks[task_id]

    def test(self, *_: Any, **__: Any) -> None:
        """`dag.test()` under `if __name__ == "__main__"`: nothing to do while parsing."""

    def cli(self) -> None:
        pass


_DAG_PASSTHROUGH = {
    "timezone",
    "render_template_as_native_obj",
    "is_paused_upon_creation",
    "dag_display_name",
    "owner_links",
    "fail_fast",
    "max_consecutive_failed_dag_runs",
    "default_view",
    "orientation",
    "template_searchpath",
    "access_control",
    "on_success_callback",
    "on_failure_callback",
    "sla_miss_callback",
}


def dag(dag_id: Any = None, **dag_kwargs: Any) -> Any:
    """`@dag` / `@dag(...)`: calling the decorated function builds the DAG."""

    def wrap(fn: Any, dag_id: Optional[str] = None) -> Any:
        @functools.wraps(fn)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            d = DAG(dag_id or fn.__name__, **dag_kwargs)
            if fn.__doc__ and "doc_md" not in d.settings:
                d.settings["doc_md"] = inspect.cleandoc(fn.__doc__)
            # the factory's own parameters are DAG params (Airflow's DagParam)
            try:
                sig = inspect.signature(fn)
                for name, p in sig.parameters.items():
                    if p.default is not inspect.Parameter.empty and name not in d.params:
                        d.params[name] = p.default
                        d.settings.setdefault("params", {})[name] = p.default
            except (TypeError, ValueError):
                pass
            with d:
                fn(*args, **kwargs)
            return d

        return factory

    if callable(dag_id):
        return wrap(dag_id)
    return lambda fn: wrap(fn, dag_id)


# ---- task groups ----------------------------------------------------------------------------


class TaskGroup(DependencyMixin):
    """`airflow.utils.task_group.TaskGroup`: task ids inside get the group's id as a prefix."""

    def __init__(
        self,
        group_id: str,
        prefix_group_id: bool = True,
        parent_group: Optional["TaskGroup"] = None,
        dag: Optional[DAG] = None,
        default_args: Optional[Dict[str, Any]] = None,
        tooltip: str = "",
        **_: Any,
    ):
        self.dag = dag or (parent_group.dag if parent_group else None) or _current_dag()
        if self.dag is None:
            raise AirflowException(f"TaskGroup {group_id!r} outside a DAG")
        self.parent = parent_group if parent_group is not None else _current_group()
        self.local_id = group_id
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self.default_args = dict(default_args or {})
        prefix = self.parent.child_prefix() if self.parent else ""
        self.group_id = prefix + group_id
        if self.group_id in self.dag.groups:
            raise DuplicateTaskIdFound(f"task group {self.group_id!r} already exists")
        self.dag.groups[self.group_id] = self
        self.members: List[Any] = []
        self.expand_args: Optional[Dict[str, Any]] = None
        if self.parent:
            self.parent.members.append(self)

    def child_prefix(self) -> str:
        own = self.group_id + "." if self.prefix_group_id else ""
        if not self.prefix_group_id and self.parent:
            return self.parent.child_prefix()
        return own

    def __enter__(self) -> "TaskGroup":
        STATE.group_stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if STATE.group_stack and STATE.group_stack[-1] is self:
            STATE.group_stack.pop()

    def contains(self, op: "BaseOperator") -> bool:
        g = op.group
        while g is not None:
            if g is self:
                return True
            g = g.parent
        return False

    def all_tasks(self) -> List["BaseOperator"]:
        out: List[BaseOperator] = []
        for m in self.members:
            if isinstance(m, TaskGroup):
                out.extend(m.all_tasks())
            else:
                out.append(m)
        return out


def task_group(group_id: Any = None, **group_kwargs: Any) -> Any:
    """`@task_group`: each call of the decorated function makes a group (ids `name`, `name__1`...);
    `.expand(...)` / `.partial(...).expand(...)` make a mapped task group: every task inside is
    mapped over the same list, one instance per element (see `_MappedArg`)."""

    def wrap(fn: Any, gid: Optional[str]) -> Any:
        base = gid or fn.__name__

        def make(args: Any, kwargs: Any, expand: Optional[Dict[str, Any]]) -> "_GroupResult":
            d = _current_dag()
            if d is None:
                raise AirflowException(f"task group {base!r} called outside a DAG")
            parent = _current_group()
            prefix = parent.child_prefix() if parent else ""
            name = base
            n = 0
            while prefix + name in d.groups:
                n += 1
                name = f"{base}__{n}"
            g = TaskGroup(name, **group_kwargs)
            if expand is not None:
                if not expand:
                    raise AirflowException(f"{base}.expand() needs at least one argument to map over")
                g.expand_args = dict(expand)
                kwargs = {**kwargs, **{k: _MappedArg(g, k) for k in expand}}
            with g:
                result = fn(*args, **kwargs)
            return _GroupResult(g, result)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return make(args, kwargs, None)

        class _Partial:
            def __init__(self, fixed: Dict[str, Any]):
                self.fixed = fixed

            def expand(self, **expand: Any) -> Any:
                return make((), self.fixed, expand)

            def expand_kwargs(self, _: Any) -> Any:
                return _unsupported("expand_kwargs() of a @task_group")

        call.expand = lambda **kw: make((), {}, kw)  # type: ignore[attr-defined]
        call.partial = lambda **kw: _Partial(kw)  # type: ignore[attr-defined]
        call.expand_kwargs = lambda _: _unsupported("expand_kwargs() of a @task_group")  # type: ignore[attr-defined]
        return call

    if callable(group_id):
        return wrap(group_id, None)
    return lambda fn: wrap(fn, group_id)


class _MappedArg:
    """An argument of a mapped task group's function: each task that receives it (directly) is
    mapped over the group's list for that argument."""

    def __init__(self, group: "TaskGroup", name: str):
        self.group = group
        self.name = name

    @property
    def source(self) -> Any:
        return self.group.expand_args[self.name]


def mapped_group(group: Optional["TaskGroup"]) -> Optional["TaskGroup"]:
    """The nearest enclosing mapped task group, if any."""
    while group is not None:
        if getattr(group, "expand_args", None) is not None:
            return group
        group = group.parent
    return None


class _GroupResult(DependencyMixin):
    """What calling a `@task_group` function returns: the group for `>>`, its result for XCom."""

    def __init__(self, group: TaskGroup, result: Any):
        self.group = group
        self.result = result
        self.dag = group.dag

    def __getitem__(self, k: Any) -> Any:
        return self.result[k]


def _unsupported(what: str) -> Any:
    raise AirflowException(f"{what} is not supported by weft yet")


# ---- operators ------------------------------------------------------------------------------

# arguments of BaseOperator that default_args fill and weft understands
BASE_ARGS = (
    "owner",
    "email",
    "email_on_failure",
    "email_on_retry",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "trigger_rule",
    "pool",
    "pool_slots",
    "priority_weight",
    "weight_rule",
    "queue",
    "sla",
    "execution_timeout",
    "on_failure_callback",
    "on_success_callback",
    "on_retry_callback",
    "on_execute_callback",
    "depends_on_past",
    "wait_for_downstream",
    "outlets",
    "inlets",
    "do_xcom_push",
    "doc_md",
    "grant",
    "weft_grant",
)


class BaseOperator(DependencyMixin):
    """Every operator class: records its class path, its task id and its keyword arguments."""

    # class path written to the DAG (None: the class's module + name)
    weft_class: Optional[str] = None

    def __init__(
        self,
        task_id: Optional[str] = None,
        dag: Optional[DAG] = None,
        task_group: Optional[TaskGroup] = None,
        default_args: Optional[Dict[str, Any]] = None,
        params: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ):
        if not task_id or not isinstance(task_id, str):
            raise AirflowException(f"{type(self).__name__}() needs a task_id string")
        self.dag = dag or (task_group.dag if task_group else None) or _current_dag()
        if self.dag is None:
            raise AirflowException(
                f"task {task_id!r} belongs to no DAG: create it inside `with DAG(...)`, a @dag "
                "function, or pass dag="
            )
        self.group = task_group if task_group is not None else _current_group()
        prefix = self.group.child_prefix() if self.group else ""
        self.task_id = prefix + task_id
        self.line = _caller_line()
        merged: Dict[str, Any] = {}
        merged.update(self.dag.default_args)
        g = self.group
        chain_args: List[Dict[str, Any]] = []
        while g is not None:
            chain_args.append(g.default_args)
            g = g.parent
        for d in reversed(chain_args):
            merged.update(d)
        merged.update(default_args or {})
        self.settings: Dict[str, Any] = {
            k: v for k, v in merged.items() if k in BASE_ARGS and v is not None
        }
        self.arguments: Dict[str, Any] = {}
        for k, v in kwargs.items():
            if k in BASE_ARGS:
                if v is not None:
                    self.settings[k] = v
            else:
                self.arguments[k] = v
        self.params = dict(params or {})
        self.expand_args: Optional[Dict[str, Any]] = None
        # XComArg.map() functions applied to expanded values in call mode, by argument
        self.expand_maps: Dict[str, Any] = {}
        self.branch = False
        self.multiple_outputs = False
        self.decorator: Optional[str] = None
        self.dag.add_task(self)
        if self.group is not None:
            self.group.members.append(self)

    @property
    def upstream_task_ids(self) -> set:
        return {u.task_id for (u, d) in self.dag._edges if d is self}

    @property
    def downstream_task_ids(self) -> set:
        return {d.task_id for (u, d) in self.dag._edges if u is self}

    @classmethod
    def class_path(cls) -> str:
        return cls.weft_class or f"{cls.__module__}.{cls.__name__}"

    @property
    def output(self) -> "XComArg":
        return XComArg(self)

    @classmethod
    def partial(cls, **kwargs: Any) -> "_OperatorPartial":
        return _OperatorPartial(cls, kwargs)

    def expand(self, **_: Any) -> Any:
        raise AirflowException("expand() is called on Operator.partial(...), not on an operator")

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"


class _OperatorPartial:
    def __init__(self, cls: Any, kwargs: Dict[str, Any]):
        self.cls = cls
        self.kwargs = kwargs

    def expand(self, **expand: Any) -> BaseOperator:
        op = self.cls(**self.kwargs)
        op.expand_args = expand
        return op

    def expand_kwargs(self, kwargs: Any) -> BaseOperator:
        op = self.cls(**self.kwargs)
        op.expand_args = {"**": kwargs}
        for u in _xcom_sources(kwargs):
            if u is not op:
                _set_edges(u, op)
        return op


class XComArg(DependencyMixin):
    """The output of a task (`task.output`, the result of calling a `@task` function)."""

    def __init__(self, operator: BaseOperator, key: str = "return_value"):
        self.operator = operator
        self.key = key
        self.dag = operator.dag
        self.map_fn: Any = None

    def __getitem__(self, key: str) -> "XComArg":
        return XComArg(self.operator, str(key))

    def resolve(self, *_: Any, **__: Any) -> Any:
        raise AirflowException("an XComArg has no value while the DAG file is parsed")

    def map(self, fn: Any) -> "XComArg":
        """`XComArg.map(fn)`: each element goes through `fn` (in the consuming task, at run time)."""
        if not callable(fn):
            raise AirflowException("XComArg.map() needs a callable")
        out = XComArg(self.operator, self.key)
        out.map_fn = fn
        return out

    def zip(self, *_: Any, **__: Any) -> Any:
        return _unsupported("XComArg.zip()")

    def __iter__(self) -> Any:
        raise AirflowException("an XComArg cannot be iterated while the DAG file is parsed")


# ---- datetime helpers ----------------------------------------------------------------------


def days_ago(n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0) -> Any:
    today = _dt.datetime.now(_dt.timezone.utc).replace(
        hour=hour, minute=minute, second=second, microsecond=microsecond
    )
    return today - _dt.timedelta(days=n)
