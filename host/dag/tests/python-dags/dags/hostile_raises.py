"""Hostile: raises while the DAG file is imported (after defining part of a DAG)."""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="py_hostile_raises", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    EmptyOperator(task_id="first")


def check_config(settings):
    if "region" not in settings:
        raise RuntimeError("DAG configuration is missing 'region'")


check_config({"bucket": "data"})
