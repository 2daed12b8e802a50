"""Short-circuiting, in the style of example_short_circuit_operator and example_short_circuit_decorator.

Exercises: @task.short_circuit returning a truthy value (downstream runs) and a falsy value
(every downstream is skipped, even a task with trigger_rule all_done), ShortCircuitOperator
with ignore_downstream_trigger_rules=False (only the direct downstream is skipped; a task whose
trigger rule is all_done still runs). Airflow 3 imports for the decorator, provider path for the
classic operator.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import chain, dag, task


@dag(
    dag_id="py_short_circuit",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["short_circuit"],
)
def short_circuit():
    @task.short_circuit()
    def check_condition(condition):
        return condition

    @task
    def after_true() -> str:
        return "ran"

    ds_true = [EmptyOperator(task_id=f"true_{i}") for i in [1, 2]]
    ds_false = [EmptyOperator(task_id=f"false_{i}") for i in [1, 2]]
    false_all_done = EmptyOperator(task_id="false_all_done", trigger_rule="all_done")

    condition_is_true = check_condition.override(task_id="condition_is_true")(condition=True)
    condition_is_false = check_condition.override(task_id="condition_is_false")(condition=False)

    chain(condition_is_true, *ds_true, after_true())
    chain(condition_is_false, *ds_false, false_all_done)

    respect_rules = ShortCircuitOperator(
        task_id="respect_trigger_rules",
        python_callable=lambda: [],
        ignore_downstream_trigger_rules=False,
    )
    skipped_direct = EmptyOperator(task_id="skipped_direct")
    still_runs = EmptyOperator(task_id="still_runs", trigger_rule="all_done")
    chain(respect_rules, skipped_direct, still_runs)


short_circuit()
