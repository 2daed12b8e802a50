#!/usr/bin/env python3
"""The official `apache-airflow-client` (3.x) against a real `weft server` process.

Starts `$WEFT_BIN server --listen 127.0.0.1:PORT` (default: target/debug/weft) with a temporary
WEFT_HOME holding a DAG folder and the `echo` plugin, gets a token from `POST /auth/token` with
the access key the server wrote to $WEFT_HOME/credentials, then, through the client's own
models (which validate every answer against Airflow's schemas): lists DAGs, unpauses one,
triggers a run with conf, polls it to success, lists its task instances, reads a try's log and
XCom, marks a task instance failed (the run follows), clears it (the run succeeds again), marks
and notes it through the bulk PATCH, does
variables CRUD, checks a connection's password is redacted, reads version and health, and
drives assets (a posted event and a producer's outlet trigger a consumer; events list with the
runs they created).
With `airflowctl` installed (AIRFLOWCTL=path), also lists DAGs with it. The server is always
stopped at the end.

Needs: pip install 'apache-airflow-client>=3,<4'
"""

import configparser
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import airflow_client.client as af
from airflow_client.client.rest import ApiException

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
WEFT = os.environ.get("WEFT_BIN", os.path.join(ROOT, "target", "debug", "weft"))
PLUGINS = os.environ.get("WEFT_PLUGINS_DIR", os.path.join(ROOT, "target", "plugins"))

DAG = """\
hello:
  schedule: null
  start_date: 2024-01-01
  tags: [demo]
  tasks:
    greet:
      operator: echo
      who: "{{ dag_run.conf.who }}"
    shout:
      operator: echo
      heard: "{{ ti.xcom_pull('greet') }}"
      dependencies: [greet]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weft server exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("weft server did not become ready")


def credentials(home):
    c = configparser.ConfigParser()
    c.read(os.path.join(home, "credentials"))
    sec = c["default"]
    return sec["aws_access_key_id"], sec["aws_secret_access_key"]


def token(port, user, password):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201, r.status
        return json.load(r)["access_token"]


def wait_run(runs, dag_id, run_id, want, timeout=120):
    """Polls the run until it is finished; fails when it ends in another state."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = runs.get_dag_run(dag_id, run_id)
        state = r.state.value if hasattr(r.state, "value") else r.state
        if state in ("success", "failed"):
            assert state == want, f"run {run_id} ended {state}, expected {want}"
            return r
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def status_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ApiException as e:
        return e.status, json.loads(e.body or "{}")
    raise AssertionError("expected an error")


def scenario(api, port, key, secret):
    dags = af.DAGApi(api)
    runs = af.DagRunApi(api)
    tis = af.TaskInstanceApi(api)

    listed = dags.get_dags()
    assert [d.dag_id for d in listed.dags] == ["hello"], listed
    assert listed.dags[0].is_paused is True, "new DAGs start paused"
    assert listed.dags[0].tags[0].name == "demo"
    d = dags.patch_dag("hello", af.DAGPatchBody(is_paused=False))
    assert d.is_paused is False
    assert dags.get_dag_details("hello").catchup is False

    run = runs.trigger_dag_run(
        "hello",
        af.TriggerDAGRunPostBody(dag_run_id="api-run-1", logical_date=None, conf={"who": "weft"}),
    )
    assert run.dag_run_id == "api-run-1" and run.conf == {"who": "weft"}, run
    code, body = status_of(
        runs.trigger_dag_run, "hello", af.TriggerDAGRunPostBody(dag_run_id="api-run-1", logical_date=None)
    )
    assert code == 409 and "detail" in body, (code, body)
    wait_run(runs, "hello", "api-run-1", "success")
    listed = runs.get_dag_runs("hello", state=["success"], order_by=["-start_date"])
    assert [r.dag_run_id for r in listed.dag_runs] == ["api-run-1"], listed

    got = tis.get_task_instances("hello", "api-run-1", order_by=["start_date"])
    assert got.total_entries == 2, got
    states = {t.task_id: (t.state.value if hasattr(t.state, "value") else t.state) for t in got.task_instances}
    assert states == {"greet": "success", "shout": "success"}, states
    every = tis.get_task_instances("~", "~")
    assert every.total_entries == 2, every

    log = tis.get_log("hello", "api-run-1", "greet", 1)
    assert log.content is not None, log
    xcoms = af.XComApi(api).get_xcom_entries("hello", "api-run-1", "greet")
    assert [x.key for x in xcoms.xcom_entries] == ["return_value"], xcoms
    value = af.XComApi(api).get_xcom_entry("hello", "greet", "api-run-1", "return_value")
    assert "weft" in json.dumps(value.actual_instance.value), value

    # mark a task instance failed: the run follows; clearing it runs it again
    changed = tis.patch_task_instance(
        "hello", "api-run-1", "shout", af.PatchTaskInstanceBody(new_state="failed")
    )
    assert [t.task_id for t in changed.task_instances] == ["shout"], changed
    r = runs.get_dag_run("hello", "api-run-1")
    assert (r.state.value if hasattr(r.state, "value") else r.state) == "failed", r
    cleared = tis.post_clear_task_instances(
        "hello",
        af.ClearTaskInstancesBody(dry_run=False, dag_run_id="api-run-1", task_ids=[af.ClearTaskInstancesBodyTaskIdsInner("shout")], only_failed=True),
    )
    assert [t.task_id for t in cleared.task_instances] == ["shout"], cleared
    wait_run(runs, "hello", "api-run-1", "success")
    shout = tis.get_task_instance("hello", "api-run-1", "shout")
    assert shout.try_number == 2, shout

    # the bulk PATCH: marks and notes through a BulkBody, each instance listed in `success`
    bulk = tis.bulk_task_instances(
        "hello",
        "api-run-1",
        af.BulkBodyBulkTaskInstanceBody(
            actions=[
                af.ActionsInner1(
                    af.BulkUpdateActionBulkTaskInstanceBody(
                        action="update",
                        entities=[af.BulkTaskInstanceBody(task_id="shout", new_state="skipped", note="bulk")],
                    )
                )
            ]
        ),
    )
    assert bulk.update.success == ["hello.api-run-1.shout[-1]"] and not bulk.update.errors, bulk
    shout = tis.get_task_instance("hello", "api-run-1", "shout")
    assert shout.note == "bulk" and (shout.state.value if hasattr(shout.state, "value") else shout.state) == "skipped", shout

    # variables CRUD
    var = af.VariableApi(api)
    var.post_variable(af.VariableBody(key="region", value="eu-west-1"))
    assert var.get_variable("region").value == "eu-west-1"
    var.patch_variable("region", af.VariableBody(key="region", value="eu-central-1"))
    assert [v.key for v in var.get_variables().variables] == ["region"]
    assert var.get_variable("region").value == "eu-central-1"
    var.delete_variable("region")
    assert status_of(var.get_variable, "region")[0] == 404

    # connections: the password is never returned
    conns = af.ConnectionApi(api)
    conns.post_connection(
        af.ConnectionBody(
            connection_id="warehouse",
            conn_type="postgres",
            host="db.internal",
            login="etl",
            password="hunter2",
            port=5432,
            extra=json.dumps({"sslmode": "require", "api_key": "k-123"}),
        )
    )
    c = conns.get_connection("warehouse")
    assert c.password != "hunter2" and "k-123" not in (c.extra or ""), c
    assert "hunter2" not in json.dumps(conns.get_connections().to_dict(), default=str)

    assert af.VersionApi(api).get_version().version
    health = af.MonitorApi(api).get_health()
    assert health.metadatabase.status == "healthy", health
    assert af.PoolApi(api).get_pools().total_entries >= 1
    assert af.ImportErrorApi(api).get_import_errors().total_entries == 0

    code, body = status_of(dags.get_dag, "nope")
    assert code == 404 and "nope" in body["detail"], (code, body)

    assets(api, runs)

    ctl = os.environ.get("AIRFLOWCTL")
    if ctl:
        airflowctl(ctl, port, key, secret)


LAKE = """\
lake_producer:
  is_paused_upon_creation: false
  tasks:
    load:
      operator: echo
      outlets: ['s3://lake/orders']
lake_consumer:
  is_paused_upon_creation: false
  schedule:
    - __type__: airflow.sdk.Asset
      uri: 'S3://lake//raw/../orders/'
  tasks:
    use:
      operator: airflow.operators.empty.EmptyOperator
"""


def wait_runs(runs, dag_id, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = runs.get_dag_runs(dag_id, state=["success"]).dag_runs
        if len(got) >= n:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{dag_id} did not reach {n} successful runs")


def assets(api, runs):
    """Asset routes through the client's models: a posted event and a producer's outlet each
    trigger the consumer; events list with the runs they created."""
    home = os.environ["WEFT_HOME"]
    with open(os.path.join(home, "dags", "lake.yaml"), "w") as f:
        f.write(LAKE)
    assets_api = af.AssetApi(api)
    deadline = time.time() + 60
    while True:
        listed = assets_api.get_assets()
        uris = [a.uri for a in listed.assets]
        if "s3://lake/orders" in uris or time.time() > deadline:
            break
        time.sleep(0.2)
    assert uris == ["s3://lake/orders"], listed
    asset = listed.assets[0]
    assert [t.task_id for t in asset.producing_tasks] == ["load"], asset
    assert [d.dag_id for d in asset.scheduled_dags] == ["lake_consumer"], asset
    assert assets_api.get_asset(asset.id).uri == "s3://lake/orders"

    # queued for the consumer at once; the server's scheduler (reloading the changed DAG
    # folder) runs it
    ev = assets_api.create_asset_event(af.CreateAssetEventsBody(asset_id=asset.id, extra={"rows": 42}))
    assert ev.extra == {"rows": 42, "from_rest_api": True}, ev
    wait_runs(runs, "lake_consumer", 1)
    # the producer's outlet triggers it again
    runs.trigger_dag_run("lake_producer", af.TriggerDAGRunPostBody(dag_run_id="lake-1", logical_date=None))
    wait_run(runs, "lake_producer", "lake-1", "success")
    got = wait_runs(runs, "lake_consumer", 2)
    assert len(got) == 2, got
    assert all((r.run_type.value if hasattr(r.run_type, "value") else r.run_type) == "asset_triggered" for r in got), got
    produced = assets_api.get_asset_events(source_dag_id="lake_producer")
    assert produced.total_entries == 1, produced
    e = produced.asset_events[0]
    assert (e.source_task_id, e.source_run_id, e.asset_id) == ("load", "lake-1", asset.id), e
    deadline = time.time() + 60
    while not e.created_dagruns and time.time() < deadline:
        time.sleep(0.2)
        e = assets_api.get_asset_events(source_dag_id="lake_producer").asset_events[0]
    assert [r.dag_id for r in e.created_dagruns] == ["lake_consumer"], e
    queued = assets_api.get_dag_asset_queued_events("lake_consumer")
    assert queued.total_entries == 0, queued
    code, body = status_of(assets_api.create_asset_event, af.CreateAssetEventsBody(asset_id=asset.id + 1))
    assert code == 404, (code, body)


def airflowctl(ctl, port, key, secret):
    """`airflowctl auth login` with weft's key (through `POST /auth/token/cli`), then DAG, run,
    pause/unpause and variable commands with the token. airflowctl keeps tokens in a system
    keyring, which a test machine has none of: the null backend drops it, and the commands get
    it from AIRFLOW_CLI_TOKEN, as airflowctl documents for that case."""
    env = dict(
        os.environ,
        AIRFLOW_HOME=tempfile.mkdtemp(prefix="weft-airflowctl-"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    url = f"http://127.0.0.1:{port}"

    def ctl_run(*args):
        r = subprocess.run([ctl, *args], env=env, capture_output=True, text=True)
        assert r.returncode == 0, f"airflowctl {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    ctl_run("auth", "login", "--api-url", url, "--username", key, "--password", secret)
    env["AIRFLOW_CLI_TOKEN"] = token(port, key, secret)
    out = ctl_run("dags", "list", "--output", "json")
    assert "hello" in out, out
    ctl_run("dags", "pause", "hello")
    out = ctl_run("dags", "get", "hello", "--output", "json")
    assert af.DAGApi(af.ApiClient(af.Configuration(host=url, access_token=env["AIRFLOW_CLI_TOKEN"]))).get_dag(
        "hello").is_paused is True, out
    ctl_run("dags", "unpause", "hello")
    out = ctl_run("dagrun", "list", "--dag-id", "hello", "--output", "json")
    assert "api-run-1" in out, out
    ctl_run("variables", "list")
    shutil.rmtree(env["AIRFLOW_HOME"], ignore_errors=True)
    print("airflowctl against weft server: ok")


def main():
    home = tempfile.mkdtemp(prefix="weft-airflow-client-")
    try:
        run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(home):
    os.environ["WEFT_HOME"] = home
    port = free_port()
    env = dict(os.environ, WEFT_HOME=home)
    env.pop("WEFT_DAGS", None)
    env.pop("WEFT_SERVER_SCHEDULE_DAGS", None)
    os.makedirs(os.path.join(home, "dags"))
    with open(os.path.join(home, "dags", "hello.yaml"), "w") as f:
        f.write(DAG)
    subprocess.run(
        [WEFT, "plugin", "install", os.path.join(PLUGINS, "echo.wasm")], env=env, check=True, stdout=subprocess.DEVNULL
    )
    log = open(os.path.join(home, "server.log"), "w+")
    proc = subprocess.Popen([WEFT, "server", "--listen", f"127.0.0.1:{port}"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc)
        key, secret = credentials(home)
        try:
            token(port, key, "not-the-secret")
            raise AssertionError("a wrong secret got a token")
        except urllib.error.HTTPError as e:
            assert e.code == 401, e.code
        cfg = af.Configuration(host=f"http://127.0.0.1:{port}", access_token=token(port, key, secret))
        with af.ApiClient(cfg) as api:
            scenario(api, port, key, secret)
        print("apache-airflow-client against weft server: ok")
    except BaseException:
        log.seek(0)
        sys.stderr.write("---- server log ----\n" + log.read())
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
