"""TaskFlow ETL in the style of Airflow's tutorial_taskflow_api: extract -> transform -> load.

Exercises: the @dag decorator, @task return values as XComs, multiple_outputs=True (one XCom per
dict key besides return_value), multiple_outputs inferred from a `-> dict` return annotation
(`extract` pushes one XCom per key too), passing an XComArg key (`summary["total_order_value"]`)
downstream. Airflow 3 import style (airflow.sdk).
"""

from __future__ import annotations

import json

import pendulum

from airflow.sdk import dag, task


@dag(
    dag_id="py_tutorial_taskflow_etl",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["tutorial", "taskflow"],
)
def tutorial_taskflow_etl():
    @task
    def extract() -> dict:
        data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(data_string)

    @task(multiple_outputs=True)
    def transform(order_data_dict: dict) -> dict:
        total = 0.0
        for value in order_data_dict.values():
            total += value
        return {"total_order_value": round(total, 2), "order_count": len(order_data_dict)}

    @task
    def load(total_order_value: float, order_count: int) -> str:
        return f"Total order value is: {total_order_value:.2f} over {order_count} orders"

    order_data = extract()
    summary = transform(order_data)
    load(summary["total_order_value"], summary["order_count"])


tutorial_taskflow_etl()
