"""weft's `airflow` package: what DAG files import, so that weft can run a DAG file's top level
in its sandbox and read the DAGs it defines (see `airflow._model`).

Every `airflow.*` module exists, under the import paths of Airflow 2 (`airflow.models`,
`airflow.operators.python`, `airflow.decorators`, `airflow.utils.task_group`, ...) and of
Airflow 3 (`airflow.sdk`, `airflow.providers.standard.operators.*`): a name weft knows
(`DAG`, `task`, `TaskGroup`, `chain`, `Param`, `Variable`, `EmptyOperator`, ...) resolves to
weft's object wherever it is imported from; any other class name (`BashOperator`,
`S3CreateBucketOperator`, `HttpSensor`, ...) becomes an operator class recorded by its full class
path and keyword arguments, for the DAG folder's operator map (`weft.yaml`) to resolve."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any, Dict

from . import _model, _operators
from ._model import DAG, BaseOperator, XComArg, chain, cross_downstream, dag, days_ago  # noqa: F401
from ._operators import task  # noqa: F401

__version__ = "2.10.5"

# Names weft knows, whatever `airflow.*` module they are imported from.
KNOWN: Dict[str, Any] = {
    "DAG": _model.DAG,
    "dag": _model.dag,
    "task": _operators.task,
    "task_group": _model.task_group,
    "TaskGroup": _model.TaskGroup,
    "BaseOperator": _model.BaseOperator,
    "Operator": _model.BaseOperator,
    "BaseSensorOperator": _model.BaseOperator,
    "XComArg": _model.XComArg,
    "chain": _model.chain,
    "chain_linear": _model.chain_linear,
    "cross_downstream": _model.cross_downstream,
    "Param": _model.Param,
    "Variable": _model.VariableAccessor,
    "PokeReturnValue": _model.PokeReturnValue,
    "get_current_context": _model.get_current_context,
    "BaseHook": _model.BaseHook,
    "Connection": _model.BaseHook,
    "Asset": _model.Asset,
    "Dataset": _model.Asset,
    "Model": _model.Asset,
    "AssetAlias": _model.AssetAlias,
    "DatasetAlias": _model.AssetAlias,
    "AssetAll": _model.AssetAll,
    "AssetAny": _model.AssetAny,
    "DatasetAll": _model.AssetAll,
    "DatasetAny": _model.AssetAny,
    "EmptyOperator": _operators.EmptyOperator,
    "DummyOperator": _operators.DummyOperator,
    "PythonOperator": _operators.PythonOperator,
    "BranchPythonOperator": _operators.BranchPythonOperator,
    "ShortCircuitOperator": _operators.ShortCircuitOperator,
    "PythonSensor": _operators.PythonSensor,
    "days_ago": _model.days_ago,
    "AirflowException": _model.AirflowException,
    "AirflowSkipException": _model.AirflowSkipException,
    "AirflowFailException": _model.AirflowFailException,
    "AirflowSensorTimeout": _model.AirflowSensorTimeout,
}


def _trigger_rule() -> Any:
    import enum

    class TriggerRule(str, enum.Enum):
        ALL_SUCCESS = "all_success"
        ALL_FAILED = "all_failed"
        ALL_DONE = "all_done"
        ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
        ONE_SUCCESS = "one_success"
        ONE_FAILED = "one_failed"
        ONE_DONE = "one_done"
        NONE_FAILED = "none_failed"
        NONE_FAILED_OR_SKIPPED = "none_failed_or_skipped"
        NONE_SKIPPED = "none_skipped"
        DUMMY = "dummy"
        ALWAYS = "always"
        NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
        ALL_SKIPPED = "all_skipped"

    return TriggerRule


KNOWN["TriggerRule"] = _trigger_rule()


def _weight_rule() -> Any:
    import enum

    class WeightRule(str, enum.Enum):
        DOWNSTREAM = "downstream"
        UPSTREAM = "upstream"
        ABSOLUTE = "absolute"

    return WeightRule


KNOWN["WeightRule"] = _weight_rule()

_TIMETABLES = (
    "CronTriggerTimetable",
    "CronDataIntervalTimetable",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EventsTimetable",
    "MultipleCronTriggerTimetable",
    "Timetable",
)


class _AirflowModule(types.ModuleType):
    """Any `airflow.*` module: weft's known names, then a recorded operator class per name."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in KNOWN:
            return KNOWN[name]
        if name in _TIMETABLES:
            cls = type(name, (_model.Timetable,), {"__module__": self.__name__})
        elif name[:1].isupper():
            cls = type(name, (_model.BaseOperator,), {"__module__": self.__name__})
        else:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        setattr(self, name, cls)
        return cls


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith("airflow.") or fullname.startswith("airflow._"):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: Any) -> Any:
        m = _AirflowModule(spec.name)
        m.__path__ = []  # a package: deeper imports come here too
        return m

    def exec_module(self, module: Any) -> None:
        pass


if not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())


def __getattr__(name: str) -> Any:
    if name in KNOWN:
        return KNOWN[name]
    raise AttributeError(f"module 'airflow' has no attribute {name!r}")
