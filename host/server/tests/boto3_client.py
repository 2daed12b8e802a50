#!/usr/bin/env python3
"""boto3's own `stepfunctions` client against a real `weft server` process.

Starts `$WEFT_BIN server --listen 127.0.0.1:PORT` (default: target/debug/weft) with a temporary
WEFT_HOME, reads the access key the server creates in $WEFT_HOME/credentials (the AWS shared
credentials format; requests are SigV4-signed by botocore as usual and verified by the server;
a wrong secret is refused), then creates a state machine,
runs sync and async executions, describes / lists / reads history, stops an execution, and
finally stops the server (always, in a finally).

Needs: pip install boto3
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
WEFT = os.environ.get("WEFT_BIN", os.path.join(ROOT, "target", "debug", "weft"))
# `weft plugin install` (the CLI, even when WEFT_BIN is another server binary)
WEFT_CLI = os.environ.get("WEFT_CLI", os.path.join(ROOT, "target", "debug", "weft"))
PLUGINS = os.environ.get("WEFT_PLUGINS_DIR", os.path.join(ROOT, "target", "plugins"))
ECHO = json.dumps({"StartAt": "Echo", "States": {"Echo": {"Type": "Task", "Resource": "weft:plugin:echo", "End": True}}})

PASS = json.dumps({
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"}, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
})
FAIL = json.dumps({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Custom.Error", "Cause": "on purpose"}}})
SLOW = json.dumps({
    "StartAt": "W",
    "States": {"W": {"Type": "Wait", "Seconds": 60, "Next": "P"}, "P": {"Type": "Pass", "End": True}},
})
CALLBACK = json.dumps({
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}},
            "HeartbeatSeconds": 30,
            "End": True,
        }
    },
})
ROLE = "arn:aws:iam::000000000000:role/weft-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=30):
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
    """(access key id, secret) of the [default] profile of $WEFT_HOME/credentials."""
    import configparser

    c = configparser.ConfigParser()
    c.read(os.path.join(home, "credentials"))
    return c["default"]["aws_access_key_id"], c["default"]["aws_secret_access_key"]


def client(port, key, secret="wrong-secret"):
    return boto3.client(
        "stepfunctions",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        # StartSyncExecution has the host prefix `sync-`; it must not be added to 127.0.0.1
        config=botocore.config.Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


def wait_status(sfn, arn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.05)
    raise AssertionError(f"{arn} still RUNNING")


def error_code(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an error")


def scenario(sfn, bad, with_plugin):
    # auth: an unknown access key is refused
    assert error_code(bad.list_state_machines) == "UnrecognizedClientException"

    std = sfn.create_state_machine(name="hello", definition=PASS, roleArn=ROLE)["stateMachineArn"]
    assert std == "arn:aws:states:us-east-1:000000000000:stateMachine:hello", std
    exp = sfn.create_state_machine(name="hello-express", definition=PASS, roleArn=ROLE, type="EXPRESS")[
        "stateMachineArn"
    ]
    failing = sfn.create_state_machine(name="failing", definition=FAIL, roleArn=ROLE, type="EXPRESS")[
        "stateMachineArn"
    ]
    slow = sfn.create_state_machine(name="slow", definition=SLOW, roleArn=ROLE)["stateMachineArn"]

    try:
        sfn.create_state_machine(name="broken", definition='{"StartAt":"X","States":{}}', roleArn=ROLE)
        raise AssertionError("invalid definition accepted")
    except sfn.exceptions.InvalidDefinition as e:
        assert "/StartAt" in str(e) or "/States" in str(e), str(e)

    d = sfn.describe_state_machine(stateMachineArn=std)
    assert d["name"] == "hello" and d["type"] == "STANDARD" and d["definition"] == PASS, d
    assert d["creationDate"].year >= 2024

    names = []
    for page in sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 2}):
        names += [m["name"] for m in page["stateMachines"]]
    assert sorted(names) == ["failing", "hello", "hello-express", "slow"], names

    # sync Express
    r = sfn.start_sync_execution(stateMachineArn=exp, input=json.dumps({"who": "boto3"}))
    assert r["status"] == "SUCCEEDED", r
    assert json.loads(r["output"]) == {"greeting": "hello boto3"}, r
    r = sfn.start_sync_execution(stateMachineArn=failing)
    assert r["status"] == "FAILED" and r["error"] == "Custom.Error" and r["cause"] == "on purpose", r

    # a Task running a wasm plugin in the sandbox
    if with_plugin:
        echo = sfn.create_state_machine(name="echo", definition=ECHO, roleArn=ROLE, type="EXPRESS")[
            "stateMachineArn"
        ]
        r = sfn.start_sync_execution(stateMachineArn=echo, input=json.dumps({"k": [1, 2, 3]}))
        assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"k": [1, 2, 3]}, r
        sfn.delete_state_machine(stateMachineArn=echo)
    else:
        print(f"note: {PLUGINS}/echo.wasm not built; skipping the plugin Task", file=sys.stderr)

    # async Standard, with name idempotency
    # (as AWS: repeating the name and input of a RUNNING execution answers the same execution)
    i1 = sfn.start_execution(stateMachineArn=slow, name="idem", input=json.dumps({"who": "weft"}))
    i2 = sfn.start_execution(stateMachineArn=slow, name="idem", input=json.dumps({"who": "weft"}))
    assert i1["executionArn"] == i2["executionArn"]
    try:
        sfn.start_execution(stateMachineArn=slow, name="idem", input=json.dumps({"who": "other"}))
        raise AssertionError("ExecutionAlreadyExists expected")
    except sfn.exceptions.ExecutionAlreadyExists:
        pass
    sfn.stop_execution(executionArn=i1["executionArn"])
    s1 = sfn.start_execution(stateMachineArn=std, name="run-1", input=json.dumps({"who": "weft"}))
    d = wait_status(sfn, s1["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"greeting": "hello weft"}, d
    assert d["stopDate"] >= d["startDate"]

    for i in range(2, 5):
        sfn.start_execution(stateMachineArn=std, name=f"run-{i}", input=json.dumps({"who": str(i)}))
    for i in range(2, 5):
        wait_status(sfn, s1["executionArn"].replace("run-1", f"run-{i}"))
    listed = []
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=std, statusFilter="SUCCEEDED", PaginationConfig={"PageSize": 3}
    ):
        listed += [e["name"] for e in page["executions"]]
    assert sorted(listed) == ["run-1", "run-2", "run-3", "run-4"], listed

    h = sfn.get_execution_history(executionArn=s1["executionArn"])
    types = [e["type"] for e in h["events"]]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded", types
    assert "PassStateEntered" in types, types
    rev = []
    for page in sfn.get_paginator("get_execution_history").paginate(
        executionArn=s1["executionArn"], reverseOrder=True, PaginationConfig={"PageSize": 2}
    ):
        rev += [e["id"] for e in page["events"]]
    assert rev == sorted(rev, reverse=True) and len(rev) == len(types), rev

    # stop a running execution
    w = sfn.start_execution(stateMachineArn=slow, name="waiting")
    assert sfn.describe_execution(executionArn=w["executionArn"])["status"] == "RUNNING"
    sfn.stop_execution(executionArn=w["executionArn"], error="Stopped.ByTest", cause="boto3")
    time.sleep(0.3)
    d = sfn.describe_execution(executionArn=w["executionArn"])
    assert d["status"] == "ABORTED" and d["error"] == "Stopped.ByTest", d
    last = sfn.get_execution_history(executionArn=w["executionArn"], reverseOrder=True, maxResults=1)
    assert last["events"][0]["type"] == "ExecutionAborted", last

    # .waitForTaskToken: a worker finds the token and calls back
    cb = sfn.create_state_machine(name="callback", definition=CALLBACK, roleArn=ROLE)["stateMachineArn"]
    c = sfn.start_execution(stateMachineArn=cb, name="ask")
    token = None
    for _ in range(200):
        for e in sfn.get_execution_history(executionArn=c["executionArn"])["events"]:
            if e["type"] == "TaskScheduled":
                token = json.loads(e["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]
        if token:
            break
        time.sleep(0.02)
    assert token, "no TaskScheduled event"
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
    d = wait_status(sfn, c["executionArn"])
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"approved": True}, d
    try:
        sfn.send_task_success(taskToken=token, output="{}")
        raise AssertionError("TaskDoesNotExist expected")
    except sfn.exceptions.TaskDoesNotExist:
        pass
    # a redrive re-runs the failed callback only
    c2 = sfn.start_execution(stateMachineArn=cb, name="ask-again")
    token = None
    for _ in range(200):
        for e in sfn.get_execution_history(executionArn=c2["executionArn"])["events"]:
            if e["type"] == "TaskScheduled":
                token = json.loads(e["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]
        if token:
            break
        time.sleep(0.02)
    sfn.send_task_failure(taskToken=token, error="Review.Rejected", cause="try again")
    d = wait_status(sfn, c2["executionArn"])
    assert d["status"] == "FAILED" and d["error"] == "Review.Rejected", d
    if hasattr(sfn, "redrive_execution"):
        sfn.redrive_execution(executionArn=c2["executionArn"])
        # the redriven attempt gets a new token; the failed run's stays void
        new_token = None
        for _ in range(200):
            tokens = [
                json.loads(e["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]
                for e in sfn.get_execution_history(executionArn=c2["executionArn"])["events"]
                if e["type"] == "TaskScheduled"
            ]
            if len(tokens) == 2:
                new_token = tokens[1]
                break
            time.sleep(0.02)
        assert new_token and new_token != token, (token, new_token)
        try:
            sfn.send_task_success(taskToken=token, output="{}")
            raise AssertionError("TaskDoesNotExist expected for the failed run's token")
        except sfn.exceptions.TaskDoesNotExist:
            pass
        for _ in range(200):
            try:
                sfn.send_task_success(taskToken=new_token, output=json.dumps({"approved": "later"}))
                break
            except sfn.exceptions.TaskDoesNotExist:
                time.sleep(0.02)
        d = wait_status(sfn, c2["executionArn"])
        assert d["status"] == "SUCCEEDED" and d["redriveCount"] == 1, d
    sfn.delete_state_machine(stateMachineArn=cb)

    # an activity worker: long-poll for work, heartbeat, answer
    act = sfn.create_activity(name="review")["activityArn"]
    work = sfn.create_state_machine(
        name="activity",
        definition=json.dumps(
            {"StartAt": "Review", "States": {"Review": {"Type": "Task", "Resource": act, "TimeoutSeconds": 60, "End": True}}}
        ),
        roleArn=ROLE,
    )["stateMachineArn"]
    a = sfn.start_execution(stateMachineArn=work, input=json.dumps({"doc": 7}))
    task = sfn.get_activity_task(activityArn=act, workerName="boto3-worker")
    assert json.loads(task["input"]) == {"doc": 7}, task
    sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"reviewed": 7}))
    d = wait_status(sfn, a["executionArn"])
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"reviewed": 7}, d
    assert [x["name"] for x in sfn.list_activities()["activities"]] == ["review"]
    sfn.delete_activity(activityArn=act)
    sfn.delete_state_machine(stateMachineArn=work)

    # errors by name
    ghost = s1["executionArn"].replace("run-1", "ghost")
    try:
        sfn.describe_execution(executionArn=ghost)
        raise AssertionError("ExecutionDoesNotExist expected")
    except sfn.exceptions.ExecutionDoesNotExist:
        pass
    try:
        sfn.describe_state_machine(stateMachineArn="arn:aws:states:us-east-1:000000000000:stateMachine:nope")
        raise AssertionError("StateMachineDoesNotExist expected")
    except sfn.exceptions.StateMachineDoesNotExist:
        pass
    try:
        sfn.start_sync_execution(stateMachineArn=std)
        raise AssertionError("StateMachineTypeNotSupported expected")
    except sfn.exceptions.StateMachineTypeNotSupported:
        pass

    sfn.update_state_machine(stateMachineArn=std, definition=FAIL)
    assert sfn.describe_state_machine(stateMachineArn=std)["definition"] == FAIL
    sfn.delete_state_machine(stateMachineArn=exp)
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert "hello-express" not in names, names


def more_api(sfn, with_plugin):
    """ValidateStateMachineDefinition, TestState, DescribeStateMachineForExecution, tags."""
    v = sfn.validate_state_machine_definition(definition=PASS)
    assert v["result"] == "OK" and v["diagnostics"] == [], v
    bad = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})
    v = sfn.validate_state_machine_definition(definition=bad, type="STANDARD", severity="WARNING", maxResults=10)
    assert v["result"] == "FAIL", v
    d = v["diagnostics"][0]
    assert (d["severity"], d["code"], d["location"]) == ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/A/Next"), v
    assert v["truncated"] is False

    greet = json.dumps({"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"},
                        "ResultPath": "$.out", "Next": "Done"})
    t = sfn.test_state(definition=greet, roleArn=ROLE, input=json.dumps({"who": "boto3"}), inspectionLevel="DEBUG")
    assert t["status"] == "SUCCEEDED" and t["nextState"] == "Done", t
    assert json.loads(t["output"]) == {"who": "boto3", "out": {"greeting": "hello boto3"}}, t
    data = t["inspectionData"]
    assert json.loads(data["afterParameters"]) == {"greeting": "hello boto3"}, data
    assert json.loads(data["afterResultPath"]) == json.loads(t["output"]), data
    caught = json.dumps({"Type": "Fail", "Error": "Custom.Error", "Cause": "on purpose"})
    t = sfn.test_state(definition=caught, roleArn=ROLE)
    assert (t["status"], t["error"], t["cause"]) == ("FAILED", "Custom.Error", "on purpose"), t
    if with_plugin:
        task = json.dumps({"Type": "Task", "Resource": "weft:plugin:echo", "ResultSelector": {"echoed.$": "$"},
                           "End": True})
        t = sfn.test_state(definition=task, roleArn=ROLE, input=json.dumps({"k": 1}), inspectionLevel="TRACE")
        assert t["status"] == "SUCCEEDED" and "nextState" not in t, t
        assert json.loads(t["inspectionData"]["afterResultSelector"]) == json.loads(t["output"]), t
    try:
        sfn.test_state(definition=json.dumps({"Type": "Pass", "Next": 3}), roleArn=ROLE)
        raise AssertionError("InvalidDefinition expected")
    except sfn.exceptions.InvalidDefinition:
        pass

    hello = "arn:aws:states:us-east-1:000000000000:stateMachine:hello"
    d = sfn.describe_state_machine_for_execution(executionArn="arn:aws:states:us-east-1:000000000000:execution:hello:run-1")
    assert d["stateMachineArn"] == hello and d["definition"] == PASS, d

    tagged = sfn.create_state_machine(name="tagged", definition=PASS, roleArn=ROLE,
                                      tags=[{"key": "team", "value": "data"}])["stateMachineArn"]
    sfn.tag_resource(resourceArn=tagged, tags=[{"key": "env", "value": "dev"}])
    tags = sorted((t["key"], t["value"]) for t in sfn.list_tags_for_resource(resourceArn=tagged)["tags"])
    assert tags == [("env", "dev"), ("team", "data")], tags
    sfn.untag_resource(resourceArn=tagged, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=tagged)["tags"] == [{"key": "env", "value": "dev"}]
    try:
        sfn.tag_resource(resourceArn=tagged, tags=[{"key": f"k{i}", "value": ""} for i in range(51)])
        raise AssertionError("TooManyTags expected")
    except sfn.exceptions.TooManyTags:
        pass
    sfn.delete_state_machine(stateMachineArn=tagged)


MAP_ROLE = "arn:aws:iam::000000000000:role/map-runner"
DISTRIBUTED = json.dumps({
    "StartAt": "Rows",
    "States": {"Rows": {
        "Type": "Map", "Label": "Rows",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                       "Parameters": {"Bucket": "data", "Key": "in/items.jsonl"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "data", "Prefix": "out"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        "End": True}},
})


def prepare_buckets(home):
    """A local bucket `data` with a JSON Lines source, and a role that may read and write it."""
    os.makedirs(os.path.join(home, "buckets", "data", "in"))
    with open(os.path.join(home, "buckets", "data", "in", "items.jsonl"), "w") as f:
        f.write("".join(json.dumps({"n": i}) + "\n" for i in range(5)))
    with open(os.path.join(home, "buckets.json"), "w") as f:
        json.dump({"buckets": {"data": {"local": "buckets/data"}}}, f)
    os.makedirs(os.path.join(home, "roles"), exist_ok=True)
    with open(os.path.join(home, "roles", "map-runner.json"), "w") as f:
        json.dump({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/in/*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::data/out/*"}]}, f)


def map_runs(sfn, home):
    """A Distributed Map over a bucket: ListMapRuns, DescribeMapRun, UpdateMapRun and the results."""
    sm = sfn.create_state_machine(name="rows", definition=DISTRIBUTED, roleArn=MAP_ROLE)["stateMachineArn"]
    e = sfn.start_execution(stateMachineArn=sm, name="rows-1")
    d = wait_status(sfn, e["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    runs = sfn.list_map_runs(executionArn=e["executionArn"])["mapRuns"]
    assert len(runs) == 1 and runs[0]["mapRunArn"] == out["MapRunArn"], (runs, out)
    assert runs[0]["mapRunArn"].startswith("arn:aws:states:us-east-1:000000000000:mapRun:rows/Rows:"), runs
    m = sfn.describe_map_run(mapRunArn=out["MapRunArn"])
    assert m["status"] == "SUCCEEDED", m
    assert m["itemCounts"]["total"] == 5 and m["itemCounts"]["succeeded"] == 5, m
    assert m["itemCounts"]["resultsWritten"] == 5, m
    sfn.update_map_run(mapRunArn=out["MapRunArn"], maxConcurrency=3, toleratedFailureCount=1)
    m = sfn.describe_map_run(mapRunArn=out["MapRunArn"])
    assert (m["maxConcurrency"], m["toleratedFailureCount"]) == (3, 1), m
    assert error_code(sfn.describe_map_run, mapRunArn=out["MapRunArn"][:-4] + "0000") == "ResourceNotFound"
    manifest = os.path.join(home, "buckets", "data", out["ResultWriterDetails"]["Key"])
    with open(manifest) as f:
        files = json.load(f)["ResultFiles"]
    assert len(files["SUCCEEDED"]) == 1 and files["FAILED"] == [], files


def sync_prefix(port, key, secret, home):
    """The README's set-up for the `sync-` host prefix: with `disable_host_prefix_injection`
    (in the profile, or AWS_DISABLE_HOST_PREFIX_INJECTION) a client built the ordinary way, with
    no code-level option, reaches StartSyncExecution and TestState on a local endpoint."""
    express = "arn:aws:states:us-east-1:000000000000:stateMachine:failing"
    config = os.path.join(home, "aws-config")
    with open(config, "w") as f:
        f.write("[profile weft]\nregion = us-east-1\ndisable_host_prefix_injection = true\n")
    saved = {k: os.environ.get(k) for k in ("AWS_CONFIG_FILE", "AWS_DISABLE_HOST_PREFIX_INJECTION")}

    def plain_client(profile=None):
        session = boto3.session.Session(
            profile_name=profile, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
        )
        return session.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}",
                               config=botocore.config.Config(retries={"max_attempts": 1}))

    def reaches(sfn):
        r = sfn.start_sync_execution(stateMachineArn=express)
        assert r["status"] == "FAILED" and r["error"] == "Custom.Error", r
        t = sfn.test_state(definition=json.dumps({"Type": "Pass", "End": True}), roleArn=ROLE, input="{}")
        assert t["status"] == "SUCCEEDED", t

    try:
        os.environ["AWS_CONFIG_FILE"] = config
        os.environ.pop("AWS_DISABLE_HOST_PREFIX_INJECTION", None)
        # without the setting the SDK sends these two to sync-127.0.0.1, which does not resolve
        try:
            plain_client().test_state(definition=json.dumps({"Type": "Pass", "End": True}), roleArn=ROLE)
            raise AssertionError("the host prefix was not injected: this check proves nothing")
        except botocore.exceptions.EndpointConnectionError as e:
            assert "sync-127.0.0.1" in str(e), e
        reaches(plain_client(profile="weft"))
        os.environ["AWS_DISABLE_HOST_PREFIX_INJECTION"] = "true"
        reaches(plain_client())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main():
    home = tempfile.mkdtemp(prefix="weft-boto3-")
    try:
        run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(home):
    port = free_port()
    env = dict(os.environ, WEFT_HOME=home)
    log = open(os.path.join(home, "server.log"), "w+")
    echo_wasm = os.path.join(PLUGINS, "echo.wasm")
    with_plugin = os.path.exists(echo_wasm) and os.path.exists(WEFT_CLI)
    if with_plugin:
        subprocess.run([WEFT_CLI, "plugin", "install", echo_wasm], env=env, check=True, stdout=subprocess.DEVNULL)
    prepare_buckets(home)
    proc = subprocess.Popen(
        [WEFT, "server", "--listen", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(port, proc)
        key, secret = credentials(home)
        bad = client(port, key, "not-the-secret")
        try:
            bad.list_state_machines()
            raise AssertionError("a wrong secret key was accepted")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidSignatureException", e.response
        scenario(client(port, key, secret), client(port, "AKIAUNKNOWN"), with_plugin)
        more_api(client(port, key, secret), with_plugin)
        map_runs(client(port, key, secret), home)
        sync_prefix(port, key, secret, home)
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
            proc.wait()
        log.close()
    # a restart keeps what was persisted
    proc = subprocess.Popen(
        [WEFT, "server", "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(port, proc)
        sfn = client(port, *credentials(home))
        names = sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"])
        assert names == ["failing", "hello", "rows", "slow"], names
        arn = "arn:aws:states:us-east-1:000000000000:execution:hello:run-1"
        assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
        # Map Runs and their updated limits too
        rows = "arn:aws:states:us-east-1:000000000000:execution:rows:rows-1"
        run_arn = sfn.list_map_runs(executionArn=rows)["mapRuns"][0]["mapRunArn"]
        m = sfn.describe_map_run(mapRunArn=run_arn)
        assert (m["status"], m["maxConcurrency"], m["itemCounts"]["succeeded"]) == ("SUCCEEDED", 3, 5), m
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("boto3 against weft server: ok")


if __name__ == "__main__":
    main()
