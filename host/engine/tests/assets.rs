//! Asset-triggered scheduling on each backend: a producer's `outlets` trigger a consumer whose
//! templates see `triggering_asset_events`, `&` / `|` conditions, events recorded through the
//! store as the API records them, and a restart between the producer's success and the
//! consumer's run (nothing lost, nothing counted twice).

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use weft_dag::{parse_dag_file, AnyOperator, Dag, FolderConfig, NoSecrets};
use weft_engine::scheduler::assets::{consumers_of, consumers_of_event, ASSET_TRIGGERED};
use weft_engine::scheduler::{
    AssetEvent, LoopOptions, SchedStore, Scheduler, SchedulerConfig, Trigger,
};

mod backends;
use backends::each_backend;

mod dag_fixtures;
use dag_fixtures::{dags, echo_or_fail};

const PRODUCER_CONSUMER: &str = r#"
producer:
  tasks:
    make:
      operator: echo
      outlets: ["s3://bucket/data.csv"]
consumer:
  schedule:
    - __type__: airflow.sdk.Asset
      uri: "S3://bucket//raw/../data.csv"
  tasks:
    use:
      operator: echo
      from_dag: "{{ triggering_asset_events['s3://bucket/data.csv'][0].source_dag_id }}"
      from_task: "{{ (triggering_dataset_events.values() | list)[0][0].source_task_id }}"
"#;

fn idle() -> LoopOptions<'static> {
    LoopOptions {
        schedule: true,
        until_idle: true,
        ..Default::default()
    }
}

fn asset_runs(store: &SchedStore, dag_id: &str) -> Vec<weft_engine::scheduler::DagRunRecord> {
    store
        .runs_of(dag_id)
        .unwrap()
        .into_iter()
        .filter(|r| r.run_type == ASSET_TRIGGERED)
        .collect()
}

#[test]
fn a_producer_triggers_its_consumer_with_the_triggering_events() {
    each_backend(|f| {
        let exec = echo_or_fail();
        let store = f.sched_store();
        let s = Scheduler::with_store(
            store.clone(),
            dags(PRODUCER_CONSUMER),
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        s.create_run(
            "producer",
            weft_dag::parse_logical_date("2024-03-05").unwrap(),
            None,
            Default::default(),
            Trigger::Manual,
        )
        .unwrap();
        s.run(&idle()).unwrap();
        let events = store.asset_events(None).unwrap();
        assert_eq!(events.len(), 1, "{}", f.name);
        assert_eq!(events[0].uri, "s3://bucket/data.csv");
        assert_eq!(events[0].source_task_id.as_deref(), Some("make"));
        let runs = asset_runs(&store, "consumer");
        assert_eq!(runs.len(), 1, "{}", f.name);
        let r = s.report("consumer", &runs[0].run_id).unwrap().to_json();
        let logs: Vec<_> = store
            .tis_of("consumer", &runs[0].run_id)
            .unwrap()
            .into_iter()
            .map(|t| t.ti.error)
            .collect();
        assert_eq!(runs[0].state, "success", "{}: {r} {logs:?}", f.name);
        assert_eq!(r["tasks"]["use"]["xcom"]["from_dag"], "producer", "{r}");
        assert_eq!(r["tasks"]["use"]["xcom"]["from_task"], "make", "{r}");
        assert_eq!(
            store
                .triggering_event_ids("consumer", &runs[0].run_id)
                .unwrap(),
            vec![events[0].id]
        );
        assert!(store.asset_queue(None).unwrap().is_empty(), "{}", f.name);
        // the producer's own run was not asset-triggered, and nothing runs again
        s.run(&idle()).unwrap();
        assert_eq!(asset_runs(&store, "consumer").len(), 1, "{}", f.name);
    });
}

const CONDITIONS: &str = r#"
all_of:
  schedule: {__and__: ["s3://a", "s3://b"]}
  tasks:
    t: {operator: echo}
any_of:
  schedule:
    datasets: "s3://a | s3://b"
  tasks:
    t: {operator: echo}
"#;

/// Records an event as `POST /api/v2/assets/events` does.
fn post(store: &SchedStore, dags: &[Dag], uri: &str) {
    let ev = AssetEvent {
        id: 0,
        uri: uri.into(),
        extra: json!({"from_rest_api": true}).as_object().cloned().unwrap(),
        source_dag_id: None,
        source_task_id: None,
        source_run_id: None,
        source_map_index: -1,
        source_aliases: Vec::new(),
        timestamp: chrono::Utc::now(),
    };
    store
        .add_asset_event(&ev, &consumers_of(dags, uri))
        .unwrap();
}

#[test]
fn and_waits_for_every_asset_or_for_any() {
    each_backend(|f| {
        let exec = echo_or_fail();
        let store = f.sched_store();
        let d = dags(CONDITIONS);
        let s = Scheduler::with_store(
            store.clone(),
            d.clone(),
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        post(&store, &d, "s3://a");
        s.run(&idle()).unwrap();
        assert_eq!(asset_runs(&store, "any_of").len(), 1, "{}", f.name);
        assert_eq!(asset_runs(&store, "all_of").len(), 0, "{}", f.name);
        // `a` stays queued for all_of until `b` comes
        let q = store.asset_queue(Some("all_of")).unwrap();
        assert_eq!(q.len(), 1, "{}", f.name);
        post(&store, &d, "s3://b");
        s.run(&idle()).unwrap();
        assert_eq!(asset_runs(&store, "any_of").len(), 2, "{}", f.name);
        let all = asset_runs(&store, "all_of");
        assert_eq!(all.len(), 1, "{}", f.name);
        assert_eq!(
            store
                .triggering_event_ids("all_of", &all[0].run_id)
                .unwrap()
                .len(),
            2,
            "{}",
            f.name
        );
        assert!(store.asset_queue(None).unwrap().is_empty(), "{}", f.name);
    });
}

#[test]
fn a_restart_between_producer_and_consumer_loses_and_doubles_nothing() {
    each_backend(|f| {
        let exec = echo_or_fail();
        let d = dags(PRODUCER_CONSUMER);
        {
            // a process that runs the producer and stops before scheduling anything
            let s = Scheduler::with_store(
                f.sched_store(),
                d.clone(),
                &exec,
                Arc::new(NoSecrets),
                SchedulerConfig::default(),
            )
            .unwrap();
            let rec = s
                .create_run(
                    "producer",
                    weft_dag::parse_logical_date("2024-03-05").unwrap(),
                    None,
                    Default::default(),
                    Trigger::Manual,
                )
                .unwrap();
            s.run(&LoopOptions {
                until_runs: Some(vec![(rec.dag_id, rec.run_id)]),
                ..Default::default()
            })
            .unwrap();
        }
        let store = f.sched_store();
        assert_eq!(
            store.asset_queue(Some("consumer")).unwrap().len(),
            1,
            "{}",
            f.name
        );
        assert!(asset_runs(&store, "consumer").is_empty(), "{}", f.name);
        // the next process finds the queued event and runs the consumer once
        for _ in 0..2 {
            let s = Scheduler::with_store(
                f.sched_store(),
                d.clone(),
                &exec,
                Arc::new(NoSecrets),
                SchedulerConfig::default(),
            )
            .unwrap();
            s.run(&idle()).unwrap();
            assert_eq!(asset_runs(&store, "consumer").len(), 1, "{}", f.name);
        }
    });
}

#[test]
fn unknown_condition_shapes_are_refused_at_their_line() {
    let (_, errors) = parse_dag_file(
        Path::new("bad.yaml"),
        "d:\n  schedule:\n    __or__: [{__type__: airflow.sdk.AssetWatcher, name: x}]\n  tasks:\n    t: {operator: echo, outlets: [\"airflow://x\"]}\n",
        &FolderConfig::default(),
        &AnyOperator,
    );
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| (e.contains("bad.yaml:2") || e.contains("bad.yaml:3"))
                && e.contains("AssetWatcher")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("bad.yaml:5") && e.contains("reserved")),
        "{text:?}"
    );
}

#[test]
fn two_schedulers_cannot_consume_the_same_queued_events() {
    each_backend(|f| {
        let d = dags(CONDITIONS);
        let (a, b) = (f.sched_store(), f.sched_store());
        post(&a, &d, "s3://a");
        let waiting = a.asset_queue(Some("any_of")).unwrap();
        assert_eq!(waiting.len(), 1, "{}", f.name);
        let now = chrono::Utc::now();
        let rec = |run_id: &str, at: chrono::DateTime<chrono::Utc>| {
            weft_engine::scheduler::DagRunRecord {
                dag_id: "any_of".into(),
                run_id: run_id.into(),
                run_type: ASSET_TRIGGERED.into(),
                logical_date: at,
                data_interval_start: at,
                data_interval_end: at,
                state: "queued".into(),
                conf: Default::default(),
                queued_at: at,
                start_date: None,
                end_date: None,
                note: None,
            }
        };
        a.create_asset_run(&rec("first", now), &waiting).unwrap();
        let second = now + chrono::Duration::seconds(1);
        let e = b
            .create_asset_run(&rec("second", second), &waiting)
            .unwrap_err();
        assert!(
            matches!(
                e,
                weft_engine::scheduler::SchedulerError::AssetEventsTaken(_)
            ),
            "{}: {e}",
            f.name
        );
        // the refused run was not created
        assert!(
            b.get_run("any_of", "second").unwrap().is_none(),
            "{}",
            f.name
        );
        assert_eq!(
            b.triggering_event_ids("any_of", "first").unwrap(),
            vec![waiting[0].event_id]
        );
    });
}

#[test]
fn an_asset_or_time_schedule_runs_on_both() {
    each_backend(|f| {
        let exec = echo_or_fail();
        let store = f.sched_store();
        let start = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%d");
        let d = dags(&format!(
            "either:\n  start_date: {start}\n  catchup: false\n  is_paused_upon_creation: false\n  schedule:\n    datasets: ['s3://a']\n    timetable: '@daily'\n  tasks:\n    t: {{operator: echo}}\n"
        ));
        let s = Scheduler::with_store(
            store.clone(),
            d.clone(),
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        s.run(&idle()).unwrap();
        let timed = |store: &SchedStore| {
            store
                .runs_of("either")
                .unwrap()
                .into_iter()
                .filter(|r| r.run_type == "scheduled")
                .count()
        };
        assert_eq!(timed(&store), 1, "{}", f.name);
        assert!(asset_runs(&store, "either").is_empty(), "{}", f.name);
        post(&store, &d, "s3://a");
        s.run(&idle()).unwrap();
        assert_eq!(asset_runs(&store, "either").len(), 1, "{}", f.name);
        assert_eq!(timed(&store), 1, "{}", f.name);
    });
}

#[test]
fn queued_events_are_cleared_per_dag_and_asset() {
    each_backend(|f| {
        let d = dags(CONDITIONS);
        let store = f.sched_store();
        post(&store, &d, "s3://a");
        post(&store, &d, "s3://b");
        // each event is queued for both DAGs
        assert_eq!(store.asset_queue(None).unwrap().len(), 4, "{}", f.name);
        let a = vec!["s3://a".to_string()];
        assert_eq!(
            store.delete_asset_queue(Some("all_of"), Some(&a)).unwrap(),
            1,
            "{}",
            f.name
        );
        assert_eq!(
            store.asset_queue(Some("all_of")).unwrap()[0].uri,
            "s3://b",
            "{}",
            f.name
        );
        assert_eq!(
            store.delete_asset_queue(None, Some(&a)).unwrap(),
            1,
            "{}",
            f.name
        );
        assert_eq!(
            store.delete_asset_queue(Some("any_of"), None).unwrap(),
            1,
            "{}",
            f.name
        );
        assert_eq!(
            store.delete_asset_queue(None, None).unwrap(),
            1,
            "{}",
            f.name
        );
        assert!(store.asset_queue(None).unwrap().is_empty(), "{}", f.name);
        // the events themselves stay
        assert_eq!(store.asset_events(None).unwrap().len(), 2, "{}", f.name);
    });
}

const ALIAS_AND_ASSET: &str = r#"
on_alias_and_asset:
  schedule:
    __and__:
      - __type__: airflow.sdk.AssetAlias
        name: example-alias
      - __type__: airflow.sdk.Asset
        uri: s3://bucket/other
  tasks:
    use:
      operator: echo
      aliases: "{{ triggering_asset_events['s3://bucket/my-task'][0].source_aliases[0].name }}"
on_legacy_alias:
  schedule:
    datasets:
      - __type__: airflow.datasets.DatasetAlias
        name: example-alias
  tasks:
    t: {operator: echo}
"#;

/// Records an event emitted through `aliases`, as a task's `outlet_events[alias].add` does.
fn post_through(store: &SchedStore, dags: &[Dag], uri: &str, aliases: &[&str]) {
    let aliases: Vec<String> = aliases.iter().map(|a| a.to_string()).collect();
    let ev = AssetEvent {
        id: 0,
        uri: uri.into(),
        extra: Default::default(),
        source_dag_id: Some("producer".into()),
        source_task_id: Some("t".into()),
        source_run_id: Some("r".into()),
        source_map_index: -1,
        source_aliases: aliases.clone(),
        timestamp: chrono::Utc::now(),
    };
    store
        .add_asset_event(&ev, &consumers_of_event(dags, uri, &aliases))
        .unwrap();
}

#[test]
fn an_alias_and_an_asset_schedule_waits_for_both_across_a_restart() {
    each_backend(|f| {
        let exec = echo_or_fail();
        let d = dags(ALIAS_AND_ASSET);
        // an event of the asset without the alias does not satisfy the alias leaf
        post(&f.sched_store(), &d, "s3://bucket/my-task");
        assert!(
            f.sched_store().asset_queue(None).unwrap().is_empty(),
            "{}",
            f.name
        );
        post_through(
            &f.sched_store(),
            &d,
            "s3://bucket/my-task",
            &["example-alias"],
        );
        {
            // the legacy DatasetAlias DAG runs; the `&` one keeps its alias event queued
            let s = Scheduler::with_store(
                f.sched_store(),
                d.clone(),
                &exec,
                Arc::new(NoSecrets),
                SchedulerConfig::default(),
            )
            .unwrap();
            s.run(&idle()).unwrap();
        }
        let store = f.sched_store();
        assert_eq!(asset_runs(&store, "on_legacy_alias").len(), 1, "{}", f.name);
        assert!(
            asset_runs(&store, "on_alias_and_asset").is_empty(),
            "{}",
            f.name
        );
        let q = store.asset_queue(Some("on_alias_and_asset")).unwrap();
        assert_eq!(q.len(), 1, "{}", f.name);
        assert_eq!(q[0].source_aliases, vec!["example-alias"], "{}", f.name);
        // a new process finds the queued alias event; the asset's event completes the `&`
        post(&store, &d, "s3://bucket/other");
        let s = Scheduler::with_store(
            store.clone(),
            d.clone(),
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        s.run(&idle()).unwrap();
        let runs = asset_runs(&store, "on_alias_and_asset");
        assert_eq!(runs.len(), 1, "{}", f.name);
        assert_eq!(runs[0].state, "success", "{}", f.name);
        let r = s
            .report("on_alias_and_asset", &runs[0].run_id)
            .unwrap()
            .to_json();
        assert_eq!(r["tasks"]["use"]["xcom"]["aliases"], "example-alias", "{r}");
        let events = store.asset_events(None).unwrap();
        assert_eq!(
            events[1].source_aliases,
            vec!["example-alias"],
            "{}",
            f.name
        );
        assert!(store.asset_queue(None).unwrap().is_empty(), "{}", f.name);
        s.run(&idle()).unwrap();
        assert_eq!(
            asset_runs(&store, "on_alias_and_asset").len(),
            1,
            "{}",
            f.name
        );
    });
}
