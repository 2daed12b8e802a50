"""XCom push and pull in every common form, in the style of example_xcom and example_xcomargs.

Exercises: `ti.xcom_push(key=..., value=...)` with a key containing spaces, returning a value
(key return_value), `ti.xcom_pull` with a key, with `task_ids` as a list, with default key,
pulling an XCom of a task that pushed nothing (None), XComArg passed as argument, `.output` of
a classic operator, `do_xcom_push=False`, and JSON types: nested dicts, lists, floats, booleans,
None, unicode strings. Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task

VALUE_1 = [1, 2, 3]
VALUE_2 = {"a": "b", "nested": {"list": [1.5, True, None], "text": "héllo ✓"}}


def _classic_return():
    return {"from": "classic", "n": 2}


def _no_push():
    return "this value is not pushed"


with DAG(
    "py_xcom_classic",
    schedule="@once",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["xcom"],
):

    @task
    def push(ti=None):
        ti.xcom_push(key="value from pusher 1", value=VALUE_1)

    @task
    def push_by_returning():
        return VALUE_2

    @task
    def puller(pulled_value_2, ti=None):
        pulled_value_1 = ti.xcom_pull(task_ids="push", key="value from pusher 1")
        if pulled_value_1 != VALUE_1 or pulled_value_2 != VALUE_2:
            raise ValueError("pulled values differ")
        nothing = ti.xcom_pull(task_ids="push")
        pair = ti.xcom_pull(task_ids=["push_by_returning", "classic_return"])
        missing_push = ti.xcom_pull(task_ids="no_push")
        return {"nothing": nothing, "pair": pair, "missing": missing_push, "ok": True}

    classic = PythonOperator(task_id="classic_return", python_callable=_classic_return)
    no_push = PythonOperator(task_id="no_push", python_callable=_no_push, do_xcom_push=False)

    @task
    def use_output(value) -> int:
        return value["n"] * 21

    pr = push_by_returning()
    puller(pr) << [push(), classic, no_push]
    use_output(classic.output)
