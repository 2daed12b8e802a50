"""Retries, in the style of example_retry_policy: a flaky task and a task that never succeeds.

Exercises: `retries` and `retry_delay` on a task and in default_args, a callable that fails on
its first try and succeeds on the second (it reads `ti.try_number`, no files), a task that
always fails after exhausting retries (try_number 3 with retries=2), downstream tasks with
trigger_rule one_failed (runs), all_success (upstream_failed) and all_done (runs).
The DAG run fails because a leaf is upstream_failed. Airflow 3 imports.
"""

from __future__ import annotations

import datetime

import pendulum

from airflow.sdk import dag, task


@dag(
    dag_id="py_retries",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": datetime.timedelta(seconds=1)},
    tags=["retries"],
)
def retries():
    @task
    def flaky(ti=None) -> dict:
        if ti.try_number < 2:
            raise RuntimeError(f"transient failure on try {ti.try_number}")
        return {"succeeded_on_try": ti.try_number}

    @task(retries=2, retry_delay=datetime.timedelta(seconds=1))
    def always_fails(ti=None):
        raise ValueError(f"permanent failure on try {ti.try_number}")

    @task(retries=0)
    def no_retry_ok() -> str:
        return "fine"

    @task(trigger_rule="one_failed")
    def alert() -> str:
        return "alerted"

    @task
    def publish(value) -> str:
        return f"published {value}"

    @task(trigger_rule="all_done")
    def cleanup() -> str:
        return "cleaned"

    f = flaky()
    bad = always_fails()
    ok = no_retry_ok()
    [f, bad] >> alert()
    publish(f) << bad
    [f, bad, ok] >> cleanup()


retries()
