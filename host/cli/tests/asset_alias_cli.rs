//! Asset aliases end to end through `weft dag trigger` and `weft dag scheduler`, as Airflow's
//! `example_asset_alias.py` uses them: a task adds an event through an `AssetAlias` it names in
//! `outlets`, which triggers the DAGs scheduled on the asset and the DAGs scheduled on the
//! alias (once per event, with `triggering_asset_events` and `inlet_events` in the consumer's
//! context); `outlet_events[Asset(...)].extra` sets a plain outlet's extra. The attacker's
//! tests beside them: adding through an alias the task does not name, more than 1000 events,
//! an oversized extra and a failing task emit nothing.
//!
//! Needs weft-airflow-py.wasm (`scripts/polyglot.sh`) from `WEFT_PLUGINS_DIR` or
//! `target/plugins`.

mod common;

use common::{folder, install_plugin, stderr, stdout, weft_on, Backend};
use serde_json::Value;
use std::path::Path;

fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    install_plugin(home.path(), "weft-airflow-py.wasm");
    home
}

/// `weft dag trigger DAG --json`: the run report and stderr.
fn trigger_err(b: &Backend, home: &Path, dags: &Path, dag: &str) -> (Value, String) {
    let o = weft_on(
        b,
        home,
        &[
            "dag",
            "trigger",
            dag,
            "--dags",
            dags.to_str().unwrap(),
            "--json",
        ],
    );
    let v = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (v, stderr(&o))
}

/// `weft dag trigger DAG --json`: the run report.
fn trigger(b: &Backend, home: &Path, dags: &Path, dag: &str) -> Value {
    trigger_err(b, home, dags, dag).0
}

/// `weft dag scheduler --exit-when-idle` over the folder.
fn schedule(b: &Backend, home: &Path, dags: &Path) {
    let o = weft_on(
        b,
        home,
        &[
            "dag",
            "scheduler",
            "--dags",
            dags.to_str().unwrap(),
            "--exit-when-idle",
            "--dags-paused-at-creation",
            "false",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A DAG's runs (`weft dag runs DAG --json`).
fn runs(b: &Backend, home: &Path, dag: &str) -> Vec<Value> {
    let o = weft_on(b, home, &["dag", "runs", dag, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v.as_array().cloned().unwrap_or_default()
}

/// The logs of a task's latest run, as text.
fn logs(b: &Backend, home: &Path, dag: &str, task: &str) -> String {
    let o = weft_on(b, home, &["dag", "logs", dag, task, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

const EXAMPLE: &str = r#"
import pendulum
from airflow.sdk import DAG, Asset, AssetAlias, task, get_current_context

with DAG(dag_id="asset_s3_bucket_producer", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=None, catchup=False):
    @task(outlets=[Asset("s3://bucket/my-task")])
    def produce_asset_events(*, outlet_events=None):
        outlet_events[Asset("s3://bucket/my-task")].extra = {"plain": 1}
    produce_asset_events()

with DAG(dag_id="asset_alias_example_alias_producer", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=None, catchup=False):
    @task(outlets=[AssetAlias("example-alias")])
    def produce_asset_events_through_asset_alias(*, outlet_events=None):
        bucket_name = "bucket"
        object_path = "my-task"
        outlet_events[AssetAlias("example-alias")].add(Asset(f"s3://{bucket_name}/{object_path}"), extra={"via": "alias"})
    produce_asset_events_through_asset_alias()

with DAG(dag_id="asset_alias_example_alias_consumer", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=[AssetAlias("example-alias")], catchup=False):
    @task(inlets=[AssetAlias("example-alias")])
    def consume_asset_event_from_asset_alias(*, inlet_events=None):
        for event in inlet_events[AssetAlias("example-alias")]:
            print("INLET", event.uri, event.extra)
        t = get_current_context()["triggering_asset_events"]
        return {uri: [(e["extra"], [a["name"] for a in e["source_aliases"]]) for e in evs] for uri, evs in t.items()}
    consume_asset_event_from_asset_alias()

with DAG(dag_id="on_the_asset", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=[Asset("s3://bucket/my-task")], catchup=False):
    @task
    def seen():
        return sorted(get_current_context()["triggering_asset_events"])
    seen()
"#;

fn an_alias_event_triggers_the_dags_on_the_asset_and_on_the_alias(backend: &Backend) {
    let home = home();
    let dags = folder(&[("example_asset_alias.py", EXAMPLE)]);
    let (h, d) = (home.path(), dags.path());
    let r = trigger(backend, h, d, "asset_alias_example_alias_producer");
    assert_eq!(r["state"], "success", "{r}");
    schedule(backend, h, d);
    let consumer = runs(backend, h, "asset_alias_example_alias_consumer");
    assert_eq!(consumer.len(), 1, "{consumer:?}");
    assert_eq!(consumer[0]["run_type"], "asset_triggered", "{consumer:?}");
    assert_eq!(consumer[0]["state"], "success", "{consumer:?}");
    let l = logs(
        backend,
        h,
        "asset_alias_example_alias_consumer",
        "consume_asset_event_from_asset_alias",
    );
    assert!(l.contains("INLET s3://bucket/my-task"), "{l}");
    // the DAG on the asset ran too
    let on_asset = runs(backend, h, "on_the_asset");
    assert_eq!(on_asset.len(), 1, "{on_asset:?}");
    assert_eq!(on_asset[0]["state"], "success", "{on_asset:?}");

    // a plain producer of the same asset triggers the asset's DAG, not the alias's
    let r = trigger(backend, h, d, "asset_s3_bucket_producer");
    assert_eq!(r["state"], "success", "{r}");
    schedule(backend, h, d);
    assert_eq!(
        runs(backend, h, "asset_alias_example_alias_consumer").len(),
        1
    );
    assert_eq!(runs(backend, h, "on_the_asset").len(), 2);

    // each alias event is one more consumer run
    let r = trigger(backend, h, d, "asset_alias_example_alias_producer");
    assert_eq!(r["state"], "success", "{r}");
    schedule(backend, h, d);
    let consumer = runs(backend, h, "asset_alias_example_alias_consumer");
    assert_eq!(consumer.len(), 2, "{consumer:?}");
}
on_both_backends!(an_alias_event_triggers_the_dags_on_the_asset_and_on_the_alias);

const TRIGGERED_CONTEXT: &str = r#"
import pendulum
from airflow.sdk import DAG, Asset, AssetAlias, task, get_current_context

with DAG(dag_id="producer", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=None):
    @task(outlets=[AssetAlias("a1"), AssetAlias("a2"), Asset("s3://b/plain")])
    def produce():
        ev = get_current_context()["outlet_events"]
        ev[AssetAlias("a1")].add(Asset("s3://b/k"), extra={"n": 1})
        ev[AssetAlias("a2")].add(Asset("s3://b/k"), extra={"n": 1})
        ev[Asset("s3://b/plain")].extra = {"rows": 3}
    produce()

with DAG(dag_id="consumer", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=AssetAlias("a1") & Asset("s3://b/plain")):
    @task
    def use():
        t = get_current_context()["triggering_asset_events"]
        for uri, evs in sorted(t.items()):
            for e in evs:
                print("EVENT", uri, sorted(e["extra"].items()), [a["name"] for a in e["source_aliases"]])
    use()
"#;

fn one_event_through_two_aliases_and_a_plain_outlet_extra(backend: &Backend) {
    let home = home();
    let dags = folder(&[("ctx.py", TRIGGERED_CONTEXT)]);
    let (h, d) = (home.path(), dags.path());
    let r = trigger(backend, h, d, "producer");
    assert_eq!(r["state"], "success", "{r}");
    schedule(backend, h, d);
    let c = runs(backend, h, "consumer");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["state"], "success", "{c:?}");
    let o = weft_on(backend, h, &["dag", "logs", "consumer", "use", "--json"]);
    let text = stdout(&o);
    // the event added through a1 and a2 is one event carrying both aliases; the plain
    // outlet's event has the extra its callable set
    assert!(
        text.contains(r#"EVENT s3://b/k [('n', 1)] ['a1', 'a2']"#),
        "{text}"
    );
    assert!(
        text.contains(r#"EVENT s3://b/plain [('rows', 3)] []"#),
        "{text}"
    );
}
on_both_backends!(one_event_through_two_aliases_and_a_plain_outlet_extra);

const ATTACKS: &str = r#"
import pendulum
from airflow.sdk import DAG, Asset, AssetAlias, task

with DAG(dag_id="attacks", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=None):
    @task(outlets=[AssetAlias("mine")], retries=0)
    def undeclared(*, outlet_events=None):
        outlet_events[AssetAlias("someone-elses")].add(Asset("s3://victim/data"))

    @task(outlets=[AssetAlias("mine")], retries=0)
    def too_many(*, outlet_events=None):
        for i in range(1001):
            outlet_events[AssetAlias("mine")].add(Asset(f"s3://b/{i}"))

    @task(outlets=[AssetAlias("mine")], retries=0)
    def too_big(*, outlet_events=None):
        outlet_events[AssetAlias("mine")].add(Asset("s3://b/k"), extra={"x": "y" * (65 * 1024)})

    @task(outlets=[AssetAlias("mine"), Asset("s3://b/plain")], retries=0)
    def fails(*, outlet_events=None):
        outlet_events[AssetAlias("mine")].add(Asset("s3://b/k"))
        outlet_events[Asset("s3://b/plain")].extra = {"x": 1}
        raise ValueError("boom")

    undeclared()
    too_many()
    too_big()
    fails()

with DAG(dag_id="victim", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), schedule=AssetAlias("someone-elses") | AssetAlias("mine") | Asset("s3://victim/data") | Asset("s3://b/plain")):
    @task
    def t():
        pass
    t()
"#;

fn undeclared_aliases_too_many_events_big_extras_and_failures_emit_nothing(backend: &Backend) {
    let home = home();
    let dags = folder(&[("attacks.py", ATTACKS)]);
    let (h, d) = (home.path(), dags.path());
    let (r, err) = trigger_err(backend, h, d, "attacks");
    assert_eq!(r["state"], "failed", "{r}");
    for (task, why) in [
        ("undeclared", "not among the task's outlets"),
        ("too_many", "at most 1000"),
        ("too_big", "bytes of JSON"),
        ("fails", "boom"),
    ] {
        assert_eq!(r["tasks"][task]["state"], "failed", "{task}: {r}");
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("task {task} ")) && l.contains(why)),
            "{task}: {err}"
        );
    }
    schedule(backend, h, d);
    assert!(runs(backend, h, "victim").is_empty());
    let o = weft_on(backend, h, &["dag", "runs", "victim", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
on_both_backends!(undeclared_aliases_too_many_events_big_extras_and_failures_emit_nothing);
