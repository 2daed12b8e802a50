"""A TaskFlow sensor that is satisfied on its first poke, in the style of example_sensor_decorator.

Exercises: @task.sensor with poke_interval/timeout/mode, returning PokeReturnValue(is_done=True,
xcom_value=...) (the xcom_value becomes the sensor's return_value), a sensor returning a plain
True, and a downstream @task consuming the sensor's XCom. Pure computation: the sensor checks
a value it computes, never a file or a service. Airflow 3 imports.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import PokeReturnValue, dag, task


@dag(
    dag_id="py_sensor_taskflow",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sensor"],
)
def sensor_taskflow():
    @task.sensor(poke_interval=1, timeout=30, mode="poke")
    def wait_for_ready(ds=None) -> PokeReturnValue:
        ready = ds.startswith("2024")
        return PokeReturnValue(is_done=ready, xcom_value={"ready_for": ds})

    @task.sensor(poke_interval=1, timeout=30)
    def plain_true() -> bool:
        return 2 + 2 == 4

    @task
    def consume(info: dict) -> str:
        return f"ready for {info['ready_for']}"

    ready = wait_for_ready()
    consume(ready) << plain_true()


sensor_taskflow()
