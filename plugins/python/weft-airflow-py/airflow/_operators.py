"""The operators weft knows by name (empty, Python, branch, short-circuit) and TaskFlow's
`@task` with its variants (`.branch`, `.short_circuit`, `.sensor`, ...), `.expand`, `.partial`,
`.override` and `multiple_outputs`. Python callables are recorded by name, never run here."""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional

from ._model import (
    AirflowException,
    BaseOperator,
    XComArg,
    _current_dag,
    _current_group,
    _MappedArg,
    _xcom_sources,
    mapped_group,
)


class EmptyOperator(BaseOperator):
    weft_class = "airflow.operators.empty.EmptyOperator"


class DummyOperator(BaseOperator):
    weft_class = "airflow.operators.dummy.DummyOperator"


def callable_name(fn: Any) -> str:
    """How a Python callable is named in the DAG (its qualified name in the DAG file)."""
    if isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not name:
        raise AirflowException(f"python_callable {fn!r} is not a function")
    return str(name)


class PythonOperator(BaseOperator):
    weft_class = "airflow.operators.python.PythonOperator"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any = None,
        op_kwargs: Any = None,
        templates_dict: Any = None,
        **kwargs: Any,
    ):
        if not callable(python_callable):
            raise AirflowException("python_callable must be callable")
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.arguments["python_callable"] = callable_name(python_callable)
        if op_args:
            self.arguments["op_args"] = list(op_args)
        if op_kwargs:
            self.arguments["op_kwargs"] = dict(op_kwargs)
        if templates_dict:
            self.arguments["templates_dict"] = templates_dict


class BranchPythonOperator(PythonOperator):
    weft_class = "airflow.operators.python.BranchPythonOperator"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.branch = True


class ShortCircuitOperator(PythonOperator):
    weft_class = "airflow.operators.python.ShortCircuitOperator"

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        if not ignore_downstream_trigger_rules:
            self.arguments["ignore_downstream_trigger_rules"] = False


class PythonSensor(PythonOperator):
    weft_class = "airflow.sensors.python.PythonSensor"


# ---- TaskFlow ------------------------------------------------------------------------------

# decorator path recorded per TaskFlow kind (weft's loader treats every `airflow...task...`
# decorator as a Python callable task)
_DECORATORS = {
    "python": "airflow.decorators.task",
    "branch": "airflow.decorators.task.branch",
    "short_circuit": "airflow.decorators.task.short_circuit",
    "sensor": "airflow.decorators.task.sensor",
    "virtualenv": "airflow.decorators.task.virtualenv",
    "external_python": "airflow.decorators.task.external_python",
    "branch_virtualenv": "airflow.decorators.task.branch_virtualenv",
    "branch_external_python": "airflow.decorators.task.branch_external_python",
    "bash": "airflow.decorators.task.bash",
    "docker": "airflow.decorators.task.docker",
    "kubernetes": "airflow.decorators.task.kubernetes",
    "pyspark": "airflow.decorators.task.pyspark",
}


class _TaskFlowOperator(BaseOperator):
    """A `@task` call: the callable's name, its arguments (XComArgs become references)."""

    def __init__(self, *, kind: str, fn: Callable[..., Any], call_args: Any, call_kwargs: Any, **kw: Any):
        super().__init__(**kw)
        self.decorator = _DECORATORS[kind]
        self.branch = kind.startswith("branch")
        self.python_callable = fn
        self.arguments["python_callable"] = callable_name(fn)
        if call_args:
            self.arguments["op_args"] = list(call_args)
        if call_kwargs:
            self.arguments["op_kwargs"] = dict(call_kwargs)


def _bind(fn: Callable[..., Any], args: Any, kwargs: Any) -> Optional[Dict[str, Any]]:
    """`args` and `kwargs` by parameter name (None when the signature cannot take them so)."""
    import inspect

    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    out: Dict[str, Any] = {}
    for name, v in bound.arguments.items():
        p = bound.signature.parameters[name]
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind == p.VAR_KEYWORD:
            out.update(v)
        else:
            out[name] = v
    return out


def _split_for_group(fn: Callable[..., Any], group: Any, args: Any, kwargs: Any) -> Any:
    """Inside a mapped task group: the arguments that vary per element (the group's own
    arguments and outputs of tasks mapped by the same group) become the task's `expand`, the
    rest stay fixed. A task taking none of them is still mapped over the group's list."""
    named = _bind(fn, args, kwargs)
    if named is None:
        raise AirflowException(
            f"task {getattr(fn, '__name__', fn)!r} in mapped task group {group.group_id!r}: "
            "weft maps tasks of a mapped group by keyword; pass the group's arguments by name"
        )
    expand: Dict[str, Any] = {}
    fixed: Dict[str, Any] = {}
    for k, v in named.items():
        varies = isinstance(v, _MappedArg) or (
            isinstance(v, XComArg) and group.contains(v.operator)
        )
        (expand if varies else fixed)[k] = v
    if not expand:
        first = next(iter(group.expand_args))
        expand["__weft_map__"] = _MappedArg(group, first)
    return fixed, expand


class _Decorated:
    """A function decorated with `@task` (or a variant): calling it inside a DAG adds a task."""

    def __init__(self, fn: Callable[..., Any], kind: str, kwargs: Dict[str, Any]):
        functools.update_wrapper(self, fn)
        self.function = fn
        self.kind = kind
        self.kwargs = kwargs

    def override(self, **kwargs: Any) -> "_Decorated":
        return _Decorated(self.function, self.kind, {**self.kwargs, **kwargs})

    def _task_id(self) -> str:
        d = _current_dag()
        if d is None:
            raise AirflowException(
                f"@task {self.function.__name__!r} called outside a DAG: call it inside "
                "`with DAG(...)` or a @dag function"
            )
        base = self.kwargs.get("task_id") or self.function.__name__
        group = _current_group()
        prefix = group.child_prefix() if group else ""
        name = base
        n = 0
        while prefix + name in d.tasks:
            n += 1
            name = f"{base}__{n}"
        return name

    def _make(self, args: Any, kwargs: Any, expand: Optional[Dict[str, Any]] = None) -> XComArg:
        group = mapped_group(_current_group())
        if group is not None and expand is None:
            kwargs, expand = _split_for_group(self.function, group, args, kwargs)
            args = ()
        kw = dict(self.kwargs)
        kw["task_id"] = self._task_id()
        multiple_outputs = kw.pop("multiple_outputs", None)
        op = _TaskFlowOperator(
            kind=self.kind, fn=self.function, call_args=args, call_kwargs=kwargs, **kw
        )
        if multiple_outputs is None:
            ann = getattr(self.function, "__annotations__", {}).get("return")
            multiple_outputs = ann in (dict, "dict") or str(ann).startswith(("typing.Dict", "dict["))
        op.multiple_outputs = bool(multiple_outputs)
        if expand is not None:
            op.expand_args = expand
            for k, v in expand.items():
                if isinstance(v, XComArg) and v.map_fn is not None:
                    op.expand_maps[k] = v.map_fn
        for u in _xcom_sources([args, kwargs, expand or {}]):
            if u is not op:
                u >> op
        return XComArg(op)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        return self._make(args, kwargs)

    def partial(self, **kwargs: Any) -> "_DecoratedPartial":
        return _DecoratedPartial(self, kwargs)

    def expand(self, **expand: Any) -> XComArg:
        return self._make((), {}, expand)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        return self._make((), {}, {"**": kwargs})


class _DecoratedPartial:
    def __init__(self, decorated: _Decorated, kwargs: Dict[str, Any]):
        self.decorated = decorated
        self.kwargs = kwargs

    def expand(self, **expand: Any) -> XComArg:
        return self.decorated._make((), self.kwargs, expand)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        return self.decorated._make((), self.kwargs, {"**": kwargs})


def _decorator(kind: str) -> Callable[..., Any]:
    def deco(python_callable: Any = None, **kwargs: Any) -> Any:
        if callable(python_callable):
            return _Decorated(python_callable, kind, kwargs)

        def wrap(fn: Callable[..., Any]) -> _Decorated:
            return _Decorated(fn, kind, kwargs)

        return wrap

    return deco


class _TaskDecorator:
    """`task`, `task.branch`, `task.short_circuit`, `task.sensor`, ... (`airflow.decorators`)."""

    def __call__(self, python_callable: Any = None, **kwargs: Any) -> Any:
        return _decorator("python")(python_callable, **kwargs)

    def __getattr__(self, kind: str) -> Any:
        if kind in _DECORATORS:
            return _decorator(kind)
        raise AttributeError(f"airflow.decorators.task has no variant {kind!r}")


task = _TaskDecorator()
