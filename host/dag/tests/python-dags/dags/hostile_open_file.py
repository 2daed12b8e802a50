"""Hostile: reads a host file while the DAG file is imported.

Airflow evaluates DAG files with the scheduler's full access to the host, so this file loads
there and its task returns a fact about /etc/passwd. weft evaluates DAG files in a sandbox with
no filesystem: the open must fail, which makes this file an import error in weft (a recorded,
intended difference: see ../README.md).
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task

with open("/etc/passwd") as handle:
    HOST_ACCOUNTS = handle.read()

HAS_ROOT = "root:" in HOST_ACCOUNTS


@dag(dag_id="py_hostile_open_file", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def hostile_open_file():
    @task
    def leak() -> bool:
        return HAS_ROOT

    leak()


hostile_open_file()
