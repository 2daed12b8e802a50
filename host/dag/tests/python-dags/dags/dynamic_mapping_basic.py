"""Dynamic task mapping over a literal list, in the style of example_dynamic_task_mapping.

Exercises: `.expand(x=[...])` (one task instance per element, map_index 0..n-1, one XCom each),
a reducer that receives the mapped results as a lazy sequence, and mapping over two lists
(cross product: 2 x 3 = 6 instances). Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, task

with DAG(
    dag_id="py_dynamic_mapping_basic",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mapping"],
):

    @task
    def add_one(x: int) -> int:
        return x + 1

    @task
    def sum_it(values) -> int:
        return sum(values)

    @task
    def multiply(a: int, b: int) -> int:
        return a * b

    @task
    def collect(products) -> list:
        return sorted(products)

    added = add_one.expand(x=[1, 2, 3])
    sum_it(added)
    collect(multiply.expand(a=[1, 2], b=[10, 20, 30]))
