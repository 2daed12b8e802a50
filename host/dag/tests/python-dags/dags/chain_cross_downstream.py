"""chain() and cross_downstream() wiring, in the style of example_complex.

Exercises: `chain(a, [b, c], [d, e], f)` (pairwise between equal-length lists),
`cross_downstream([x, y], [p, q, r])` (every-to-every), chain of @task XComArgs, and
EmptyOperator fan-in/fan-out. Airflow 2 import paths (airflow.models.baseoperator).
"""

from __future__ import annotations

import datetime

from airflow.decorators import dag, task
from airflow.models.baseoperator import chain, cross_downstream
from airflow.operators.empty import EmptyOperator


@dag(
    dag_id="py_chain_cross_downstream",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["wiring"],
)
def chain_cross_downstream():
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    c = EmptyOperator(task_id="c")
    d = EmptyOperator(task_id="d")
    e = EmptyOperator(task_id="e")
    f = EmptyOperator(task_id="f")
    chain(a, [b, c], [d, e], f)

    x = EmptyOperator(task_id="x")
    y = EmptyOperator(task_id="y")
    p = EmptyOperator(task_id="p")
    q = EmptyOperator(task_id="q")
    r = EmptyOperator(task_id="r")
    cross_downstream([x, y], [p, q, r])
    f >> [x, y]

    @task
    def step(n: int, ti=None) -> str:
        upstream = sorted(ti.task.upstream_task_ids)
        return f"step {n} after {','.join(upstream)}"

    s1 = step.override(task_id="s1")(1)
    s2 = step.override(task_id="s2")(2)
    s3 = step.override(task_id="s3")(3)
    chain([p, q, r], s1, s2, s3)


chain_cross_downstream()
