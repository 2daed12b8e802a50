"""BranchPythonOperator in a `with DAG` block, in the style of example_branch_operator.

Exercises: BranchPythonOperator with op_kwargs, a branch that follows a task inside the chosen
path only, a branch decision read from an upstream XCom (`ti.xcom_pull`), EmptyOperator
branches, a join with none_failed_min_one_success and one with all_done. Airflow 2 imports.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, PythonOperator

OPTIONS = ["branch_a", "branch_b", "branch_c", "branch_d"]


def _score():
    return sum(range(10))  # 45


def _choose(threshold, ti=None):
    score = ti.xcom_pull(task_ids="score")
    index = score % len(OPTIONS)  # 45 % 4 == 1
    return OPTIONS[index] if score >= threshold else OPTIONS[0]


def _follow(name):
    return f"followed {name}"


with DAG(
    dag_id="py_branch_python_operator",
    start_date=datetime.datetime(2024, 1, 1),
    schedule="@daily",
    catchup=False,
    tags=["branch"],
) as dag:
    run_this_first = EmptyOperator(task_id="run_this_first")
    score = PythonOperator(task_id="score", python_callable=_score)
    branching = BranchPythonOperator(task_id="branching", python_callable=_choose, op_kwargs={"threshold": 10})
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    always = EmptyOperator(task_id="always", trigger_rule="all_done")

    run_this_first >> score >> branching
    for option in OPTIONS:
        t = EmptyOperator(task_id=option)
        follow = PythonOperator(task_id="follow_" + option, python_callable=_follow, op_args=[option])
        branching >> t >> follow >> join
    join >> always
