"""expand_kwargs and mapping chained through two mapped tasks.

Exercises: `.expand_kwargs(list_of_dicts)` with a literal list and with an upstream XCom,
a mapped task feeding another mapped task one to one (`second.expand(x=first_result)`),
`.map()` on an XComArg to reshape values before expanding, and `ti.map_index` in the context.
Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task


@dag(
    dag_id="py_dynamic_mapping_kwargs",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mapping"],
)
def dynamic_mapping_kwargs():
    @task
    def greet(name: str, greeting: str) -> str:
        return f"{greeting}, {name}!"

    @task
    def make_kwargs() -> list:
        return [{"a": 1, "b": 2}, {"a": 10, "b": 20}, {"a": 100, "b": 200}]

    @task
    def add(a: int, b: int, ti=None) -> dict:
        return {"sum": a + b, "map_index": ti.map_index}

    @task
    def first(x: int) -> int:
        return x * 3

    @task
    def second(x: int) -> int:
        return x - 1

    @task
    def gather(values) -> list:
        return list(values)

    greet.expand_kwargs([{"name": "Ada", "greeting": "Hello"}, {"name": "Linus", "greeting": "Hi"}])
    add.expand_kwargs(make_kwargs())
    tripled = first.expand(x=[1, 2, 3])
    gather(second.expand(x=tripled))

    def as_kwargs(n):
        return {"name": f"user{n}", "greeting": "Hey"}

    greet.override(task_id="greet_mapped").expand_kwargs(tripled.map(as_kwargs))


dynamic_mapping_kwargs()
