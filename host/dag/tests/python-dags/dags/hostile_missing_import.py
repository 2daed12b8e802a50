"""Hostile: imports a module that is not installed (a provider nobody put in requirements.txt)."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task
from weft_corpus_no_such_provider.operators import MagicOperator


@dag(dag_id="py_hostile_missing_import", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
def hostile_missing_import():
    MagicOperator(task_id="magic")


hostile_missing_import()
