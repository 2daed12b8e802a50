"""The classic tutorial shape: `with DAG(...)`, default_args, PythonOperator, explicit XCom push/pull.

Exercises: Airflow 2 import paths (`from airflow import DAG`, `airflow.operators.python`),
default_args (retries, owner), op_args/op_kwargs, `ti.xcom_push(key=...)`, `ti.xcom_pull` of a
single task id, of a list of task ids and of a custom key, `>>` and `<<`, a docstring as doc_md.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator


def _generate(count, start, ti=None):
    numbers = list(range(start, start + count))
    ti.xcom_push(key="count", value=count)
    return numbers


def _square(ti=None):
    numbers = ti.xcom_pull(task_ids="generate")
    return [n * n for n in numbers]


def _cube(ti=None):
    numbers = ti.xcom_pull(task_ids="generate")
    return [n * n * n for n in numbers]


def _report(ti=None):
    squares, cubes = ti.xcom_pull(task_ids=["square", "cube"])
    count = ti.xcom_pull(task_ids="generate", key="count")
    return {"count": count, "sum_squares": sum(squares), "sum_cubes": sum(cubes)}


with DAG(
    "py_tutorial_classic",
    default_args={"owner": "data-team", "retries": 1, "retry_delay": datetime.timedelta(seconds=1)},
    description="classic PythonOperator tutorial",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["tutorial"],
) as dag:
    dag.doc_md = __doc__
    generate = PythonOperator(task_id="generate", python_callable=_generate, op_args=[5], op_kwargs={"start": 2})
    square = PythonOperator(task_id="square", python_callable=_square)
    cube = PythonOperator(task_id="cube", python_callable=_cube)
    report = PythonOperator(task_id="report", python_callable=_report)

    generate >> [square, cube]
    report << [square, cube]
