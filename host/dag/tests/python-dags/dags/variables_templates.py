"""Variables read at run time, never at parse time: Variable.get and {{ var }} templates.

Exercises: `Variable.get(key, default=...)` inside a @task (Airflow 3 spelling) and
`Variable.get(key, default_var=...)` from `airflow.models` (Airflow 2 spelling) for variables
that do not exist (the default comes back), `{{ var.value.get('k', 'fallback') }}` and
`{{ var.json.get('k', {...}) }}` in templated PythonOperator op_kwargs, and
`execution_timeout` / `retry_exponential_backoff` on a task that succeeds at once.
No variable is set anywhere, so each read returns its default. Mixed import styles.
"""

from __future__ import annotations

import datetime

import pendulum

from airflow.models import Variable as LegacyVariable
from airflow.operators.python import PythonOperator
from airflow.sdk import DAG, Variable, task


def _templated(region, limits):
    return {"region": region, "limits": limits}


with DAG(
    dag_id="py_variables_templates",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["variables"],
):

    @task(execution_timeout=datetime.timedelta(minutes=5), retry_exponential_backoff=True, retries=1)
    def read_variables() -> list:
        return [
            Variable.get("weft_corpus_missing_region", default="eu-west-1"),
            LegacyVariable.get("weft_corpus_missing_owner", default_var="nobody"),
        ]

    templated = PythonOperator(
        task_id="templated",
        python_callable=_templated,
        op_kwargs={
            "region": "{{ var.value.get('weft_corpus_missing_region', 'us-east-2') }}",
            "limits": "{{ var.json.get('weft_corpus_missing_limits', {'max': 3}) }}",
        },
    )

    read_variables() >> templated
