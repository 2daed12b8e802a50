"""Params and Jinja templates, in the style of example_params_ui_tutorial and tutorial_taskflow_templates.

Exercises: DAG `params` with `Param` (type, default, minimum, enum) and a plain default,
templated PythonOperator fields (`op_kwargs` and `templates_dict`) rendering `{{ ds }}`,
`{{ ds_nodash }}`, `{{ params.x }}`, a Jinja expression and filter, `params` read from the
context of a @task, task-level params overriding DAG-level ones, and `dag_run.conf` (empty
under `dags test`, so the default wins). Airflow 2 imports.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.models.param import Param
from airflow.operators.python import PythonOperator


def _render(greeting, day, compact, templates_dict=None):
    return {
        "greeting": greeting,
        "day": day,
        "compact": compact,
        "templates": dict(sorted(templates_dict.items())),
    }


with DAG(
    dag_id="py_params_templates",
    start_date=datetime.datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "x": Param(7, type="integer", minimum=0, maximum=100),
        "name": Param("world", type="string"),
        "mode": Param("fast", enum=["fast", "slow"]),
        "plain": 3,
    },
    tags=["params"],
) as dag:
    render = PythonOperator(
        task_id="render",
        python_callable=_render,
        op_kwargs={
            "greeting": "hello {{ params.name }}",
            "day": "{{ ds }}",
            "compact": "{{ ds_nodash }}",
        },
        templates_dict={
            "x_times_two": "{{ params.x * 2 }}",
            "upper": "{{ params.mode | upper }}",
            "plain": "{{ params.plain }}",
            "conf_or_default": "{{ dag_run.conf.get('who', 'nobody') }}",
        },
    )

    @task
    def from_context(params=None, ds=None, dag_run=None) -> dict:
        return {
            "x": params["x"],
            "mode": params["mode"],
            "ds": ds,
            "conf": dict(dag_run.conf or {}),
        }

    @task(params={"x": 42})
    def overridden(params=None) -> int:
        return params["x"]

    render >> from_context() >> overridden()
