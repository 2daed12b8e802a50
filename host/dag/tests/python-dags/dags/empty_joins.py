"""EmptyOperator joins around computing tasks, `<<` wiring and a diamond, with one skipped path.

Exercises: EmptyOperator start/end, a diamond (start -> two tasks -> join), a fan-in of three
computing tasks into an EmptyOperator, `<<` with lists, a LatestOnlyOperator-free skip made by a
@task.branch that follows nothing (returns None: every direct downstream is skipped), and
skip propagation through an EmptyOperator join with the default all_success rule.
Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, task


@dag(
    dag_id="py_empty_joins",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["joins"],
)
def empty_joins():
    start = EmptyOperator(task_id="start")
    end = EmptyOperator(task_id="end")

    @task
    def part(n: int) -> int:
        return n * n

    parts = [part.override(task_id=f"part_{n}")(n) for n in (2, 3, 4)]
    collect = EmptyOperator(task_id="collect")
    start >> parts
    collect << parts

    left = EmptyOperator(task_id="left")
    right = EmptyOperator(task_id="right")
    diamond_join = EmptyOperator(task_id="diamond_join")
    collect >> [left, right] >> diamond_join >> end

    @task.branch
    def follow_nothing():
        return None

    skipped_a = EmptyOperator(task_id="skipped_a")
    skipped_join = EmptyOperator(task_id="skipped_join")
    start >> follow_nothing() >> skipped_a >> skipped_join


empty_joins()
