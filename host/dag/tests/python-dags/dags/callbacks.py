"""Task callbacks that only compute: on_success_callback and on_failure_callback.

Exercises: on_success_callback on a task and in default_args, on_failure_callback on a task that
fails, a DAG-level on_success_callback / on_failure_callback, and the callback's context
(`ti.task_id`, `exception`). The callbacks push nothing to storage of their own; each prints a
marker line `CALLBACK <kind> <task_id>` that the recorder collects from the run's log to record
which callbacks ran. The run fails (a leaf fails). Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task


def on_success(context):
    ti = context["ti"]
    print(f"CALLBACK success {ti.task_id}")


def on_failure(context):
    ti = context["ti"]
    exc = context.get("exception")
    print(f"CALLBACK failure {ti.task_id} {type(exc).__name__}")


def dag_success(context):
    print("CALLBACK dag_success")


def dag_failure(context):
    print("CALLBACK dag_failure")


@dag(
    dag_id="py_callbacks",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"on_success_callback": on_success},
    on_success_callback=dag_success,
    on_failure_callback=dag_failure,
    tags=["callbacks"],
)
def callbacks():
    @task
    def compute() -> int:
        return sum(i * i for i in range(10))

    @task(on_failure_callback=on_failure, on_success_callback=None)
    def explode(value: int):
        raise ZeroDivisionError(f"cannot divide {value} by zero")

    @task(on_failure_callback=on_failure)
    def fine(value: int) -> int:
        return value + 1

    c = compute()
    explode(c)
    fine(c)


callbacks()
