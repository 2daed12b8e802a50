"""Hostile: top-level code that never returns. Airflow stops it at dagbag_import_timeout.

A DAG processor that evaluates this file without a time limit hangs; the file must become an
import error and every other DAG in the folder must keep loading.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task

counter = 0
while True:
    counter += 1


@dag(dag_id="py_hostile_infinite_loop", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
def never_defined():
    @task
    def unreachable():
        return counter

    unreachable()


never_defined()
