"""Branches inside branches joined by EmptyOperators, in the style of example_nested_branch_dag.

Exercises: @task.branch inside a followed branch and inside a skipped branch (the skipped one
never runs: skipped), joins with none_failed_min_one_success at both levels, a final EmptyOperator
join after them, and EmptyOperator fan-out/fan-in around the whole shape. `with DAG` form,
Airflow 2 imports (airflow.decorators, airflow.operators.empty).
"""

from __future__ import annotations

import datetime

from airflow.decorators import task
from airflow.models.dag import DAG
from airflow.operators.empty import EmptyOperator

with DAG(
    dag_id="py_nested_branch",
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    schedule="@daily",
    tags=["branch"],
) as dag:

    @task.branch()
    def branch(task_id_to_return: str) -> str:
        return task_id_to_return

    begin = EmptyOperator(task_id="begin")
    fan_a = EmptyOperator(task_id="fan_a")
    fan_b = EmptyOperator(task_id="fan_b")
    branch_1 = branch.override(task_id="branch_1")(task_id_to_return="true_1")
    join_1 = EmptyOperator(task_id="join_1", trigger_rule="none_failed_min_one_success")
    true_1 = EmptyOperator(task_id="true_1")
    false_1 = EmptyOperator(task_id="false_1")

    branch_2 = branch.override(task_id="branch_2")(task_id_to_return="true_2")
    join_2 = EmptyOperator(task_id="join_2", trigger_rule="none_failed_min_one_success")
    true_2 = EmptyOperator(task_id="true_2")
    false_2 = EmptyOperator(task_id="false_2")
    false_3 = EmptyOperator(task_id="false_3")

    branch_3 = branch.override(task_id="branch_3")(task_id_to_return="false_4")
    join_3 = EmptyOperator(task_id="join_3", trigger_rule="none_failed_min_one_success")
    true_4 = EmptyOperator(task_id="true_4")
    false_4 = EmptyOperator(task_id="false_4")

    end = EmptyOperator(task_id="end")

    begin >> [fan_a, fan_b] >> branch_1
    branch_1 >> true_1 >> join_1
    branch_1 >> false_1 >> branch_2 >> [true_2, false_2] >> join_2 >> false_3 >> join_1
    true_1 >> branch_3 >> [true_4, false_4] >> join_3 >> join_1
    join_1 >> end
