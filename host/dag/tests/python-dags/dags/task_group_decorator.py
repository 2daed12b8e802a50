"""@task_group in the style of example_task_group_decorator, called twice and mapped.

Exercises: the @task_group decorator returning the XComArg of its last task, calling a group
twice (the second call's ids get the `__1` suffix: `tg1__1.task_1`), a group receiving an
upstream XComArg as argument, and a mapped task group (`group.expand(...)`: every task inside
has one instance per element, with map_index). Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task, task_group


@dag(
    dag_id="py_task_group_decorator",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["task_group"],
)
def task_group_decorator():
    @task
    def task_start() -> str:
        return "[Task_start]"

    @task
    def task_1(value: str) -> str:
        return f"[ Task1 {value} ]"

    @task
    def task_2(value: str) -> str:
        return f"[ Task2 {value} ]"

    @task
    def task_3(value: str) -> None:
        print(f"[ Task3 {value} ]")

    @task
    def task_end(values) -> str:
        return "done: " + " | ".join(values)

    @task_group
    def tg1(value):
        return task_2(task_1(value))

    @task_group
    def per_item(n: int):
        @task
        def double(x: int) -> int:
            return x * 2

        @task
        def label(x: int) -> str:
            return f"item-{x}"

        return label(double(n))

    start = task_start()
    first = tg1(start)
    second = tg1(first)
    task_3(second)
    task_end(per_item.expand(n=[1, 2, 3]))


task_group_decorator()
