"""The Airflow context on a cron-scheduled DAG with catchup=False.

Exercises: a cron schedule (`30 2 * * *`), the context values a @task reads by name (`ds`,
`ds_nodash`, `ts`, `logical_date`, `data_interval_start`, `data_interval_end`, `params`,
`task_instance`, `dag`) and through `get_current_context()`, `ti.task_id`/`ti.dag_id`/
`ti.try_number`/`ti.map_index`, dag_id and tags, max_active_runs, dagrun_timeout and
default_args (owner, depends_on_past=False, priority_weight, queue, pool).
Airflow 3 imports.
"""

from __future__ import annotations

import datetime

import pendulum

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="py_context_and_schedule",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=datetime.timedelta(minutes=30),
    default_args={"owner": "ops", "depends_on_past": False, "priority_weight": 5, "queue": "default"},
    tags=["context", "schedule"],
)
def context_and_schedule():
    @task
    def by_name(ds=None, ds_nodash=None, ts=None, logical_date=None, data_interval_start=None,
                data_interval_end=None, task_instance=None, dag=None) -> dict:
        return {
            "ds": ds,
            "ds_nodash": ds_nodash,
            "ts": ts,
            "logical_date": logical_date.isoformat(),
            "interval": [data_interval_start.isoformat(), data_interval_end.isoformat()],
            "task_id": task_instance.task_id,
            "dag_id": dag.dag_id,
            "try_number": task_instance.try_number,
            "map_index": task_instance.map_index,
        }

    @task
    def via_get_current_context() -> dict:
        context = get_current_context()
        return {
            "ds": context["ds"],
            "tags": sorted(context["dag"].tags),
            "task_id": context["ti"].task_id,
        }

    @task(pool="default_pool", priority_weight=1)
    def weekday(logical_date=None) -> str:
        return logical_date.strftime("%A")

    by_name() >> via_get_current_context() >> weekday()


context_and_schedule()
