"""Branching with @task.branch: the callable returns the task id(s) to follow, the rest are skipped.

Exercises: @task.branch returning one id and a list of ids, a branch chosen from the logical date
(`ds` / `logical_date` from the context), skipped branches, an EmptyOperator join with
trigger_rule none_failed_min_one_success (runs after a skip), and a join left at the default
all_success (skipped). Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, task


@dag(
    dag_id="py_branch_taskflow",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["branch"],
)
def branch_taskflow():
    @task.branch
    def pick_by_weekday(logical_date=None):
        # 2024-03-05 is a Tuesday
        if logical_date.weekday() < 5:
            return "weekday_work"
        return "weekend_work"

    @task
    def weekday_work(ds=None):
        return f"weekday run for {ds}"

    @task
    def weekend_work(ds=None):
        return f"weekend run for {ds}"

    @task.branch
    def pick_many():
        return ["left", "middle"]

    @task
    def left():
        return "L"

    @task
    def middle():
        return "M"

    @task
    def right():
        return "R"

    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    strict_join = EmptyOperator(task_id="strict_join")

    pick_by_weekday() >> [weekday_work(), weekend_work()] >> join
    pick_many() >> [left(), middle(), right()] >> strict_join


branch_taskflow()
