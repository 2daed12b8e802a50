"""Nested TaskGroups in a `with DAG` block, in the style of example_task_group.

Exercises: `with TaskGroup(...)` nesting (task ids become `section_1.inner.task`), group-to-task
and group-to-group dependencies with `>>`, prefix_group_id=False on one group, a tooltip, and
@task callables created inside groups. Airflow 2 imports (airflow.utils.task_group).
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.operators.empty import EmptyOperator
from airflow.utils.task_group import TaskGroup

with DAG(
    dag_id="py_task_group_nested",
    start_date=datetime.datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    tags=["task_group"],
) as dag:
    start = EmptyOperator(task_id="start")

    @task
    def measure(name: str) -> int:
        return len(name)

    with TaskGroup("section_1", tooltip="Tasks for section_1") as section_1:
        task_1 = EmptyOperator(task_id="task_1")
        with TaskGroup("inner", tooltip="Nested group") as inner:
            length_a = measure.override(task_id="length_a")("alpha")
            length_b = measure.override(task_id="length_b")("beta")
        task_3 = EmptyOperator(task_id="task_3")
        task_1 >> inner >> task_3

    with TaskGroup("section_2", prefix_group_id=False) as section_2:
        unprefixed = measure.override(task_id="unprefixed")("gamma-delta")
        EmptyOperator(task_id="task_2") << unprefixed

    end = EmptyOperator(task_id="end")
    start >> section_1 >> section_2 >> end
