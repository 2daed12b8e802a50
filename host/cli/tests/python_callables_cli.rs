//! Python callables through `weft dag test --json`, as Airflow runs them: `ti.xcom_push` /
//! `ti.xcom_pull` within the run, `Variable.get` under the task's grant, `@task.sensor`,
//! short-circuits with and without `ignore_downstream_trigger_rules`, `expand_kwargs`, mapped
//! task groups, nested groups whose tasks share local names, and YAML tasks whose callable is a
//! `.py` file beside the DAG. Each user's test has its attacker's test beside it: another DAG's
//! XComs, an oversized push, a variable outside the grant, a sensor that never succeeds, a YAML
//! callable file outside the DAG folder.
//!
//! Needs weft-airflow-py.wasm (`scripts/polyglot.sh`) from `WEFT_PLUGINS_DIR` or
//! `target/plugins`. Each test has its own `WEFT_HOME` (roles and variables differ).

mod common;

use common::{folder, install_plugin, stderr, stdout, weft};
use serde_json::Value;
use std::path::Path;

/// A fresh home with the parser installed, a role `reader` allowed to read `var/region`, and
/// the variables `region` and `limits` set.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    install_plugin(home.path(), "weft-airflow-py.wasm");
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/reader.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":["secret:var/region","secret:var/limits"]}]}"#,
    )
    .unwrap();
    for (k, v) in [("region", "eu-north-1"), ("limits", r#"{"max": 7}"#)] {
        let o = weft(home.path(), &["variables", "set", k, v]);
        assert!(o.status.success(), "variables set: {}", stderr(&o));
    }
    home
}

/// `weft dag test DAG 2024-03-05 --json` of a folder: the report and stderr.
fn run(home: &Path, dags: &Path, dag: &str) -> (Value, String) {
    let o = weft(
        home,
        &[
            "dag",
            "test",
            dag,
            "2024-03-05",
            "--dags",
            dags.to_str().unwrap(),
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (v, stderr(&o))
}

fn state(v: &Value, task: &str) -> String {
    v["tasks"][task]["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

const XCOMS: &str = r#"
from datetime import datetime
from airflow.decorators import dag, task

@dag(schedule=None, start_date=datetime(2024, 1, 1))
def xcoms():
    @task
    def push(ti=None):
        ti.xcom_push(key="a key with spaces", value={"n": [1, 2]})
        return "returned"

    @task
    def numbers():
        return [10, 20, 30]

    @task
    def mapped(x, ti=None):
        ti.xcom_push(key="seen", value=x)
        return x + 1

    @task
    def pull(ti=None):
        return {
            "key": ti.xcom_pull(task_ids="push", key="a key with spaces"),
            "list": ti.xcom_pull(task_ids=["push", "numbers"]),
            "mapped_all": ti.xcom_pull(task_ids="mapped"),
            "mapped_one": ti.xcom_pull(task_ids="mapped", map_indexes=1),
            "mapped_some": ti.xcom_pull(task_ids="mapped", key="seen", map_indexes=[0, 2]),
            "missing": ti.xcom_pull(task_ids="push", key="nope", default="dflt"),
        }

    [push(), mapped.expand(x=numbers())] >> pull()

    @task(retries=0)
    def other_dag(ti=None):
        return ti.xcom_pull(task_ids="push", dag_id="someone_else")

    @task(retries=0)
    def huge(ti=None):
        ti.xcom_push(key="big", value="x" * (100 << 20))

    @task(retries=0)
    def over_cap(ti=None):
        ti.xcom_push(key="big", value="x" * (2 << 20))

    other_dag()
    huge()
    over_cap()

xcoms()
"#;

#[test]
fn callables_push_and_pull_xcoms_of_their_own_run_only() {
    let h = home();
    let d = folder(&[("xcoms.py", XCOMS)]);
    let (v, err) = run(h.path(), d.path(), "xcoms");
    let t = &v["tasks"];
    assert_eq!(state(&v, "push"), "success", "{v}\n{err}");
    assert_eq!(t["push"]["xcoms"]["a key with spaces"]["n"][1], 2, "{v}");
    assert_eq!(t["push"]["xcom"], "returned");
    assert_eq!(t["mapped[1]"]["xcoms"]["seen"], 20, "{v}");
    let got = &t["pull"]["xcom"];
    assert_eq!(got["key"], serde_json::json!({"n": [1, 2]}), "{v}\n{err}");
    assert_eq!(got["list"], serde_json::json!(["returned", [10, 20, 30]]));
    assert_eq!(got["mapped_all"], serde_json::json!([11, 21, 31]));
    assert_eq!(got["mapped_one"], 21);
    assert_eq!(got["mapped_some"], serde_json::json!([10, 30]));
    assert_eq!(got["missing"], "dflt");
    // the attacker's callables: another DAG's XComs and oversized pushes are refused
    assert_eq!(state(&v, "other_dag"), "failed", "{v}");
    assert!(
        err.contains("someone_else") && err.contains("own DAG run"),
        "{err}"
    );
    assert_eq!(state(&v, "huge"), "failed", "{v}");
    assert_eq!(state(&v, "over_cap"), "failed", "{v}");
    assert!(err.contains("Weft.XComTooLarge"), "{err}");
    assert!(t["over_cap"]["xcoms"].as_object().unwrap().is_empty());
    assert_eq!(v["state"], "failed");
}

const VARIABLES: &str = r#"
from datetime import datetime
from airflow.decorators import dag, task
from airflow.models import Variable

@dag(schedule=None, start_date=datetime(2024, 1, 1))
def variables():
    @task(weft_grant="reader")
    def granted():
        return [Variable.get("region"), Variable.get("limits", deserialize_json=True),
                Variable.get("unset_but_granted", default_var="d")]

    @task
    def denied_with_default():
        return Variable.get("region", default="fallback")

    @task(retries=0)
    def denied():
        return Variable.get("region")

    granted()
    denied_with_default()
    denied()

variables()
"#;

#[test]
fn variables_are_read_at_run_time_under_the_tasks_grant() {
    let h = home();
    let d = folder(&[("variables.py", VARIABLES)]);
    let (v, err) = run(h.path(), d.path(), "variables");
    let t = &v["tasks"];
    assert_eq!(
        t["granted"]["xcom"],
        serde_json::json!(["eu-north-1", {"max": 7}, "d"]),
        "{v}\n{err}"
    );
    // the attacker's task: no grant, so the value never reaches it
    assert_eq!(t["denied_with_default"]["xcom"], "fallback", "{v}");
    assert_eq!(state(&v, "denied"), "failed", "{v}");
    assert!(
        err.contains("Sandbox.PermissionDenied") && err.contains("secret:var/region"),
        "{err}"
    );
    assert!(!v.to_string().contains("eu-north-1\"]") || t["denied"]["xcom"].is_null());
}

const SENSORS_AND_SHORT_CIRCUITS: &str = r#"
from datetime import datetime
from airflow.sdk import dag, task, PokeReturnValue
from airflow.operators.python import ShortCircuitOperator
from airflow.operators.empty import EmptyOperator

@dag(schedule=None, start_date=datetime(2024, 1, 1))
def gates():
    @task.sensor(poke_interval=1, timeout=30)
    def ready() -> PokeReturnValue:
        return PokeReturnValue(is_done=True, xcom_value={"ok": 1})

    @task.sensor(poke_interval=1, timeout=2, mode="reschedule")
    def never():
        return False

    @task
    def use(v):
        return v["ok"]

    use(ready())
    never() >> EmptyOperator(task_id="after_never")

    @task.short_circuit
    def falsy():
        return 0

    falsy() >> EmptyOperator(task_id="direct") >> EmptyOperator(task_id="all_done_far", trigger_rule="all_done")

    keep = ShortCircuitOperator(task_id="keep_rules", python_callable=lambda: None,
                                ignore_downstream_trigger_rules=False)
    keep >> EmptyOperator(task_id="skipped_direct") >> EmptyOperator(task_id="runs", trigger_rule="all_done")

    @task.short_circuit
    def truthy():
        return {"go": True}

    truthy() >> EmptyOperator(task_id="after_truthy")

gates()
"#;

#[test]
fn sensors_poke_until_done_or_timeout_and_short_circuits_skip() {
    let h = home();
    let d = folder(&[("gates.py", SENSORS_AND_SHORT_CIRCUITS)]);
    let (v, err) = run(h.path(), d.path(), "gates");
    let t = &v["tasks"];
    assert_eq!(
        t["ready"]["xcom"],
        serde_json::json!({"ok": 1}),
        "{v}\n{err}"
    );
    assert_eq!(t["use"]["xcom"], 1);
    // the attacker's sensor never succeeds: its timeout ends it
    assert_eq!(state(&v, "never"), "failed", "{v}");
    assert!(err.contains("AirflowSensorTimeout"), "{err}");
    assert_eq!(state(&v, "after_never"), "upstream_failed");
    // ignore_downstream_trigger_rules (default True): everything downstream is skipped
    assert_eq!(state(&v, "falsy"), "success");
    assert!(
        t["falsy"]["xcom"].is_null(),
        "a falsy short-circuit pushes nothing"
    );
    assert_eq!(state(&v, "direct"), "skipped");
    assert_eq!(state(&v, "all_done_far"), "skipped", "{v}");
    // False: only the direct downstream; trigger rules decide the rest
    assert_eq!(state(&v, "skipped_direct"), "skipped");
    assert_eq!(state(&v, "runs"), "success", "{v}");
    assert_eq!(t["truthy"]["xcom"], serde_json::json!({"go": true}));
    assert_eq!(state(&v, "after_truthy"), "success");
}

const MAPPING_AND_GROUPS: &str = r#"
from datetime import datetime
from airflow.sdk import dag, task, task_group
from airflow.utils.task_group import TaskGroup

@dag(schedule=None, start_date=datetime(2024, 1, 1))
def shapes():
    @task
    def add(a, b):
        return a + b

    @task
    def pairs():
        return [{"a": 1, "b": 2}, {"a": 3, "b": 4}]

    add.expand_kwargs([{"a": 10, "b": 1}, {"a": 20, "b": 2}])
    add.override(task_id="add_up").expand_kwargs(pairs())

    @task
    def seeds():
        return [1, 2]

    def as_kwargs(n):
        return {"a": n, "b": 100}

    add.override(task_id="add_mapped").expand_kwargs(seeds().map(as_kwargs))

    @task_group
    def per_item(n):
        @task
        def double(x):
            return x * 2

        @task
        def label(x):
            return f"item-{x}"

        return label(double(n))

    @task
    def collect(values):
        return list(values)

    collect(per_item.expand(n=[1, 2, 3]))

    @task
    def t():
        return "t"

    for g in ["g1", "g2"]:
        with TaskGroup(g):
            t()
    for outer in ["a", "c"]:
        with TaskGroup(outer):
            with TaskGroup("b"):
                t()
    t()

shapes()
"#;

#[test]
fn expand_kwargs_mapped_groups_and_groups_sharing_local_names() {
    let h = home();
    let d = folder(&[("shapes.py", MAPPING_AND_GROUPS)]);
    let (v, err) = run(h.path(), d.path(), "shapes");
    assert_eq!(v["state"], "success", "{v}\n{err}");
    let t = &v["tasks"];
    let x = |k: &str| t[k]["xcom"].clone();
    assert_eq!((x("add[0]"), x("add[1]")), (11.into(), 22.into()), "{v}");
    assert_eq!((x("add_up[0]"), x("add_up[1]")), (3.into(), 7.into()));
    assert_eq!(
        (x("add_mapped[0]"), x("add_mapped[1]")),
        (101.into(), 102.into())
    );
    for i in 0..3 {
        assert_eq!(
            x(&format!("per_item.double[{i}]")),
            Value::from(2 * (i + 1))
        );
    }
    assert_eq!(
        x("collect"),
        serde_json::json!(["item-2", "item-4", "item-6"])
    );
    for id in ["g1.t", "g2.t", "a.b.t", "c.b.t", "t"] {
        assert_eq!(state(&v, id), "success", "{id}: {v}");
    }
}

const YAML_WITH_CALLABLES: &str = r#"
yaml_callables:
  schedule: null
  start_date: 2024-01-01
  tasks:
    numbers:
      decorator: airflow.decorators.task
      python_callable: helpers.numbers
    total:
      decorator: airflow.decorators.task
      python_callable: helpers.total
      values: +numbers
    greet:
      operator: airflow.operators.python.PythonOperator
      python_callable_name: greet
      python_callable_file: $DIR/helpers.py
      op_kwargs: {name: weft}
      dependencies: [total]
"#;

const HELPERS: &str = r#"
def numbers():
    return [1, 2, 3]

def total(values, ti=None):
    ti.xcom_push(key="count", value=len(values))
    return sum(values)

def greet(name, ds=None):
    return f"hello {name} on {ds}"
"#;

const YAML_OUTSIDE: &str = r#"
yaml_outside:
  schedule: null
  start_date: 2024-01-01
  tasks:
    steal:
      operator: airflow.operators.python.PythonOperator
      python_callable_name: anything
      python_callable_file: /etc/passwd
      retries: 0
"#;

#[test]
fn yaml_tasks_run_callables_from_python_files_beside_the_dag() {
    let h = home();
    let d = folder(&[("helpers.py", HELPERS)]);
    let dir = d.path().canonicalize().unwrap();
    std::fs::write(
        dir.join("callables.yaml"),
        YAML_WITH_CALLABLES.replace("$DIR", dir.to_str().unwrap()),
    )
    .unwrap();
    std::fs::write(dir.join("outside.yaml"), YAML_OUTSIDE).unwrap();
    let (v, err) = run(h.path(), &dir, "yaml_callables");
    assert_eq!(v["state"], "success", "{v}\n{err}");
    let t = &v["tasks"];
    assert_eq!(t["numbers"]["xcom"], serde_json::json!([1, 2, 3]));
    assert_eq!(t["total"]["xcom"], 6);
    assert_eq!(t["total"]["xcoms"]["count"], 3);
    assert_eq!(t["greet"]["xcom"], "hello weft on 2024-03-05");
    // the attacker's YAML names a host file as its callable file: refused, never read
    let (v, err) = run(h.path(), &dir, "yaml_outside");
    assert_eq!(state(&v, "steal"), "failed", "{v}");
    assert!(
        err.contains("Weft.PythonCallableNotSupported")
            && err.contains("outside the DAG file's folder"),
        "{err}"
    );
    assert!(!err.contains("root:x:0") && !v.to_string().contains("root:x:0"));
}
