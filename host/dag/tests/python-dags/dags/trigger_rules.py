"""Trigger rules after a failure: all_done, none_failed_min_one_success, one_failed and friends.

Exercises: a failing task (raises) and a succeeding one feeding tasks with trigger rules
all_success (upstream_failed), all_done, one_failed, one_success, none_failed_min_one_success
(upstream_failed), none_skipped, all_failed (skipped), and a chain where upstream_failed
propagates. The run fails. `with DAG` form, TriggerRule enum and strings, Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule, task

with DAG(
    dag_id="py_trigger_rules",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["trigger_rules"],
):

    @task
    def good() -> int:
        return 1

    @task
    def bad():
        raise RuntimeError("this task always fails")

    g = good()
    b = bad()

    all_success = EmptyOperator(task_id="all_success")
    all_done = EmptyOperator(task_id="all_done", trigger_rule=TriggerRule.ALL_DONE)
    one_failed = EmptyOperator(task_id="one_failed", trigger_rule="one_failed")
    one_success = EmptyOperator(task_id="one_success", trigger_rule=TriggerRule.ONE_SUCCESS)
    none_failed_min = EmptyOperator(task_id="none_failed_min_one_success", trigger_rule="none_failed_min_one_success")
    none_skipped = EmptyOperator(task_id="none_skipped", trigger_rule="none_skipped")
    all_failed = EmptyOperator(task_id="all_failed", trigger_rule="all_failed")

    for t in (all_success, all_done, one_failed, one_success, none_failed_min, none_skipped, all_failed):
        [g, b] >> t

    after_upstream_failed = EmptyOperator(task_id="after_upstream_failed")
    recover = EmptyOperator(task_id="recover", trigger_rule="all_done")
    all_success >> after_upstream_failed >> recover

    @task(trigger_rule="one_failed")
    def on_failure_path(value) -> str:
        return f"good returned {value}"

    on_failure_path(g) << b
