"""Mapping over an upstream task's XCom, with `.partial` constants and an empty expansion.

Exercises: `.partial(...).expand(...)` on a @task, mapping over a list returned by an upstream
task (known only at run time), mapping over a dict's items, a mapped task over an empty list
(Airflow marks its single instance skipped, and the downstream that pulls it is skipped as well),
and the classic operator form `PythonOperator.partial(...).expand(op_args=...)`.
Airflow 2 imports (airflow.decorators).
"""

from __future__ import annotations

import datetime

from airflow.decorators import dag, task
from airflow.operators.python import PythonOperator


def _classic_double(value):
    return value * 2


@dag(
    dag_id="py_dynamic_mapping_upstream",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["mapping"],
)
def dynamic_mapping_upstream():
    @task
    def make_list() -> list:
        return [3, 5, 7, 11]

    @task
    def make_empty() -> list:
        return []

    @task
    def make_prices() -> dict:
        return {"apple": 3, "pear": 4}

    @task
    def scale(value: int, factor: int, offset: int) -> int:
        return value * factor + offset

    @task
    def describe(item) -> str:
        name, price = item
        return f"{name}={price}"

    @task
    def total(values) -> int:
        return sum(values)

    @task
    def never(value):
        return value

    @task
    def after_empty(values) -> int:
        return len(list(values))

    numbers = make_list()
    scaled = scale.partial(factor=10, offset=1).expand(value=numbers)
    total(scaled)
    describe.expand(item=make_prices())
    after_empty(never.expand(value=make_empty()))
    PythonOperator.partial(task_id="classic_double", python_callable=_classic_double).expand(
        op_args=[[1], [2], [3]]
    )


dynamic_mapping_upstream()
