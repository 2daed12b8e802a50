"""Hostile: not valid Python (an unclosed call), so it fails before any of it runs."""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

with DAG(dag_id="py_hostile_syntax_error", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"):
    pass
