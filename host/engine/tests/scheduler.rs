//! The persistent scheduler in-process with an executor closure: priority order, pools and
//! pool_slots, max_active_tasks, retries with back-off, catchup within max_active_runs,
//! restart recovery from sled, worker autoscaling, callbacks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_dag::{Dag, NoSecrets, TaskFailure, TaskInvocation, TiState};
use weft_engine::scheduler::{
    LoopOptions, Plain, Pools, SchedStore, Scheduler, SchedulerConfig, Trigger,
};

mod backends;
use backends::{dag, each_backend};

fn date(s: &str) -> chrono::DateTime<chrono::Utc> {
    weft_dag::parse_logical_date(s).unwrap()
}

type Exec = Box<dyn Fn(&TaskInvocation) -> Result<Value, TaskFailure> + Sync>;

fn trigger_and_run<'a>(
    store: SchedStore,
    d: Dag,
    exec: &'a Plain<Exec>,
    cfg: SchedulerConfig,
) -> (Value, Scheduler<'a>) {
    let s = Scheduler::with_store(store, vec![d.clone()], exec, Arc::new(NoSecrets), cfg).unwrap();
    let rec = s
        .create_run(
            &d.dag_id,
            date("2024-03-05"),
            None,
            Default::default(),
            Trigger::Manual,
        )
        .unwrap();
    s.run(&LoopOptions {
        until_runs: Some(vec![(rec.dag_id.clone(), rec.run_id.clone())]),
        ..Default::default()
    })
    .unwrap();
    let r = s.report(&rec.dag_id, &rec.run_id).unwrap().to_json();
    (r, s)
}

#[test]
fn priority_weight_orders_starts_and_pools_limit_concurrency() {
    each_backend(|f| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (o, r, p) = (order.clone(), running.clone(), peak.clone());
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            o.lock().unwrap().push(ti.task_id.clone());
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(Value::Null)
        }));
        let d = dag("p:\n  tasks:\n    low:\n      operator: x\n      pool: etl\n      priority_weight: 1\n    high:\n      operator: x\n      pool: etl\n      priority_weight: 10\n    mid:\n      operator: x\n      pool: etl\n      priority_weight: 5\n    big:\n      operator: x\n      pool: etl\n      pool_slots: 2\n      priority_weight: 0\n");
        let mut pools = Pools::default();
        pools.set("etl", 2);
        let cfg = SchedulerConfig {
            max_workers: 4,
            pools,
            ..Default::default()
        };
        let (r, _) = trigger_and_run(f.sched_store(), d, &exec, cfg);
        assert_eq!(r["state"], "success", "{r}");
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "high");
        assert_eq!(order[1], "mid");
        assert_eq!(order.last().unwrap(), "big");
        assert!(peak.load(Ordering::SeqCst) <= 2, "pool etl has 2 slots");
    });
}

#[test]
fn unknown_pool_fails_the_task_with_a_clear_error() {
    each_backend(|f| {
        let exec: Plain<Exec> = Plain(Box::new(|_: &TaskInvocation| Ok(Value::Null)));
        let d = dag("u:\n  tasks:\n    a:\n      operator: x\n      pool: nope\n");
        let (r, s) = trigger_and_run(f.sched_store(), d, &exec, SchedulerConfig::default());
        assert_eq!(r["tasks"]["a"]["state"], "failed");
        let runs = s.store().runs_of("u").unwrap();
        let ti = &s.store().tis_of("u", &runs[0].run_id).unwrap()[0];
        let e = ti.ti.error.as_ref().unwrap();
        assert_eq!(e.error, "Weft.PoolUnavailable");
        assert!(
            e.cause.contains("pool `nope` does not exist"),
            "{}",
            e.cause
        );
    });
}

#[test]
fn max_active_tasks_caps_concurrency_and_retries_wait_their_delay() {
    each_backend(|f| {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tries: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let (r, p, t) = (running.clone(), peak.clone(), tries.clone());
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            t.lock().unwrap().push((ti.task_id.clone(), Instant::now()));
            if ti.task_id == "flaky" && ti.try_number < 3 {
                return Err(TaskFailure::new("Boom", "not yet"));
            }
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(json!(ti.try_number))
        }));
        let mut y = String::from("m:\n  max_active_tasks: 2\n  tasks:\n    flaky:\n      operator: x\n      retries: 3\n      retry_delay: 0.3\n");
        for i in 0..6 {
            y.push_str(&format!("    w{i}:\n      operator: x\n"));
        }
        let cfg = SchedulerConfig {
            max_workers: 8,
            ..Default::default()
        };
        let (r, _) = trigger_and_run(f.sched_store(), dag(&y), &exec, cfg);
        assert_eq!(r["state"], "success", "{r}");
        assert_eq!(r["tasks"]["flaky"]["try_number"], 3);
        assert!(peak.load(Ordering::SeqCst) <= 2, "max_active_tasks: 2");
        let tries = tries.lock().unwrap();
        let flaky: Vec<Instant> = tries
            .iter()
            .filter(|(t, _)| t == "flaky")
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(flaky.len(), 3);
        for w in flaky.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_millis(290),
                "retry_delay honoured: {:?}",
                w[1] - w[0]
            );
        }
    });
}

#[test]
fn catchup_creates_every_interval_within_max_active_runs() {
    each_backend(|f| {
        let active = Arc::new(Mutex::new(std::collections::HashMap::<String, usize>::new()));
        let peak_runs = Arc::new(AtomicUsize::new(0));
        let (a, pr) = (active.clone(), peak_runs.clone());
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            {
                let mut g = a.lock().unwrap();
                *g.entry(ti.run_id.clone()).or_default() += 1;
                pr.fetch_max(g.len(), Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(5));
            a.lock().unwrap().remove(&ti.run_id);
            Ok(json!(ti.logical_date.to_rfc3339()))
        }));
        let start = (chrono::Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%d");
        let d = dag(&format!("c:\n  schedule: '@daily'\n  start_date: {start}\n  catchup: true\n  max_active_runs: 2\n  tasks:\n    a:\n      operator: x\n    b:\n      operator: x\n      dependencies: [a]\n"));
        let s = Scheduler::with_store(
            f.sched_store(),
            vec![d],
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig {
                max_workers: 6,
                ..Default::default()
            },
        )
        .unwrap();
        s.run(&LoopOptions {
            schedule: true,
            until_idle: true,
            ..Default::default()
        })
        .unwrap();
        let runs = s.store().runs_of("c").unwrap();
        assert!((9..=10).contains(&runs.len()), "{} runs", runs.len());
        assert!(runs
            .iter()
            .all(|r| r.state == "success" && r.run_type == "scheduled"));
        assert!(runs
            .windows(2)
            .all(|w| w[0].data_interval_end == w[1].data_interval_start));
        assert!(peak_runs.load(Ordering::SeqCst) <= 2, "max_active_runs: 2");
        // A second pass creates nothing new.
        s.run(&LoopOptions {
            schedule: true,
            until_idle: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.store().runs_of("c").unwrap().len(), runs.len());
    });
}

#[test]
fn restart_resumes_from_sled_and_fails_lost_tries_per_retries() {
    each_backend(|f| {
        let d = dag("r:\n  tasks:\n    a:\n      operator: x\n    b:\n      operator: x\n      dependencies: [a]\n      retries: 1\n      retry_delay: 0\n    c:\n      operator: x\n      dependencies: [b]\n");
        let run_id;
        {
            // Simulate a process that died with a done and b running: write that state by hand.
            let exec: Plain<Exec> = Plain(Box::new(|_: &TaskInvocation| Ok(Value::Null)));
            let s = Scheduler::with_store(
                f.sched_store(),
                vec![d.clone()],
                &exec,
                Arc::new(NoSecrets),
                SchedulerConfig::default(),
            )
            .unwrap();
            let mut rec = s
                .create_run(
                    "r",
                    date("2024-03-05"),
                    None,
                    Default::default(),
                    Trigger::Manual,
                )
                .unwrap();
            rec.state = "running".into();
            s.store().put_run(&rec).unwrap();
            let st = f.sched_store();
            let mk = |task: &str, state, tn| weft_engine::scheduler::StoredTi {
                ti: weft_dag::TiRecord {
                    task_id: task.into(),
                    map_index: -1,
                    state,
                    try_number: tn,
                    tries_before_clear: 0,
                    duration_s: 0.0,
                    wait_until: 0.0,
                    first_poke_at: None,
                    pokes: 0,
                    xcom: json!("a-out"),
                    error: None,
                    mapped_args: Default::default(),
                    note: None,
                    xcoms: Default::default(),
                },
                start_date: None,
                end_date: None,
                hostname: None,
            };
            st.write_tis(
                "r",
                &rec.run_id,
                &[],
                &[mk("a", TiState::Success, 1), mk("b", TiState::Running, 1)],
            )
            .unwrap();
            st.flush().unwrap();
            run_id = rec.run_id;
        }
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c2 = calls.clone();
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            c2.lock().unwrap().push((ti.task_id.clone(), ti.try_number));
            Ok(Value::Null)
        }));
        let s = Scheduler::with_store(
            f.sched_store(),
            vec![d],
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        s.run(&LoopOptions {
            until_idle: true,
            ..Default::default()
        })
        .unwrap();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [("b".to_string(), 2), ("c".to_string(), 1)],
            "a is not re-run; b's lost try counts"
        );
        let r = s.report("r", &run_id).unwrap().to_json();
        assert_eq!(r["state"], "success");
        assert_eq!(r["tasks"]["a"]["xcom"], "a-out");
    });
}

#[test]
fn callbacks_are_called_with_a_context() {
    each_backend(|f| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            if ti.operator == "notify" {
                s2.lock().unwrap().push(ti.arguments.clone());
                return Ok(Value::Null);
            }
            if ti.task_id == "bad" {
                return Err(TaskFailure::new("Boom", "broken"));
            }
            Ok(Value::Null)
        }));
        let d = dag("cb:\n  on_failure_callback: notify\n  tasks:\n    ok:\n      operator: x\n      on_success_callback: notify\n    bad:\n      operator: x\n      retries: 1\n      retry_delay: 0\n      on_retry_callback: notify\n      on_failure_callback: [notify]\n");
        let (r, _) = trigger_and_run(f.sched_store(), d, &exec, SchedulerConfig::default());
        assert_eq!(r["state"], "failed");
        // Callbacks run on the pool; give the last ones a moment.
        let t0 = Instant::now();
        while seen.lock().unwrap().len() < 4 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = seen.lock().unwrap();
        let kinds: Vec<String> = seen
            .iter()
            .map(|v| {
                format!(
                    "{}:{}",
                    v["task_id"].as_str().unwrap(),
                    v["callback"].as_str().unwrap()
                )
            })
            .collect();
        for k in [
            "ok:on_success_callback",
            "bad:on_retry_callback",
            "bad:on_failure_callback",
            ":on_failure_callback",
        ] {
            assert!(kinds.contains(&k.to_string()), "{kinds:?}");
        }
        let fail = seen
            .iter()
            .find(|v| v["callback"] == "on_failure_callback" && v["task_id"] == "bad")
            .unwrap();
        assert_eq!(fail["exception"]["error"], "Boom");
        assert_eq!(fail["try_number"], 2);
    });
}

#[test]
fn sla_misses_are_recorded_and_the_callback_is_called() {
    each_backend(|f| {
        let called = Arc::new(Mutex::new(Vec::new()));
        let c2 = called.clone();
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            if ti.operator == "page" {
                c2.lock().unwrap().push(ti.arguments.clone());
                return Ok(Value::Null);
            }
            if ti.task_id == "slow" {
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(Value::Null)
        }));
        let d = dag("s:\n  sla_miss_callback: page\n  tasks:\n    slow:\n      operator: x\n      sla: 0.1\n    fast:\n      operator: x\n      sla: 60\n");
        let (r, s) = trigger_and_run(f.sched_store(), d, &exec, SchedulerConfig::default());
        assert_eq!(r["state"], "success");
        let misses = s.store().sla_misses("s").unwrap();
        assert_eq!(misses.len(), 1, "{misses:?}");
        assert_eq!(misses[0]["task_id"], "slow");
        let called = called.lock().unwrap();
        assert_eq!(called.len(), 1);
        assert_eq!(called[0]["callback"], "sla_miss_callback");
        assert_eq!(called[0]["sla_miss"]["task_id"], "slow");
    });
}

#[test]
fn dagrun_timeout_fails_the_run_and_skips_what_is_left() {
    each_backend(|f| {
        let exec: Plain<Exec> = Plain(Box::new(|ti: &TaskInvocation| {
            if ti.task_id == "slow" {
                std::thread::sleep(Duration::from_millis(600));
            }
            Ok(Value::Null)
        }));
        let d = dag("t:\n  dagrun_timeout: 0.2\n  tasks:\n    slow:\n      operator: x\n    after:\n      operator: x\n      dependencies: [slow]\n");
        let (r, s) = trigger_and_run(f.sched_store(), d, &exec, SchedulerConfig::default());
        assert_eq!(r["state"], "failed", "{r}");
        assert_eq!(r["tasks"]["slow"]["state"], "skipped");
        assert_eq!(r["tasks"]["after"]["state"], "skipped");
        assert_eq!(s.store().runs_of("t").unwrap()[0].state, "failed");
    });
}

#[test]
fn depends_on_past_waits_for_the_previous_run() {
    each_backend(|f| {
        let heal = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (h, c) = (heal.clone(), calls.clone());
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            c.lock().unwrap().push(ti.run_id.clone());
            if ti.logical_date == date("2024-03-01") && !h.load(Ordering::SeqCst) {
                return Err(TaskFailure::new("Load.Failed", "first day"));
            }
            Ok(Value::Null)
        }));
        let d = dag("dop:\n  schedule: \"@daily\"\n  start_date: 2024-03-01\n  tasks:\n    a:\n      operator: x\n      depends_on_past: true\n");
        let s = Scheduler::with_store(
            f.sched_store(),
            vec![d.clone()],
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        let r1 = s
            .create_run(
                "dop",
                date("2024-03-01"),
                None,
                Default::default(),
                Trigger::Manual,
            )
            .unwrap();
        s.run(&LoopOptions {
            until_runs: Some(vec![("dop".into(), r1.run_id.clone())]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.report("dop", &r1.run_id).unwrap().state.as_str(),
            "failed"
        );
        // the next run's `a` waits while the previous run's `a` has not succeeded
        let r2 = s
            .create_run(
                "dop",
                date("2024-03-02"),
                None,
                Default::default(),
                Trigger::Manual,
            )
            .unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                std::thread::sleep(Duration::from_millis(1500));
                stop.store(true, Ordering::SeqCst);
            });
            s.run(&LoopOptions {
                until_runs: Some(vec![("dop".into(), r2.run_id.clone())]),
                stop: Some(&stop),
                ..Default::default()
            })
            .unwrap();
        });
        assert!(
            !calls.lock().unwrap().contains(&r2.run_id),
            "a ran before its past succeeded"
        );
        // once the past is cleared and succeeds, the waiting instance runs
        heal.store(true, Ordering::SeqCst);
        s.clear("dop", &r1.run_id, "a", true).unwrap();
        s.run(&LoopOptions {
            until_runs: Some(vec![
                ("dop".into(), r1.run_id.clone()),
                ("dop".into(), r2.run_id.clone()),
            ]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.report("dop", &r2.run_id).unwrap().state.as_str(),
            "success"
        );
        let order = calls.lock().unwrap().clone();
        let last_r1 = order.iter().rposition(|r| *r == r1.run_id).unwrap();
        let first_r2 = order.iter().position(|r| *r == r2.run_id).unwrap();
        assert!(last_r1 < first_r2, "{order:?}");
    });
}

#[test]
fn a_paused_dag_creates_no_timetable_runs_until_unpaused() {
    each_backend(|f| {
        let exec: Plain<Exec> = Plain(Box::new(|_: &TaskInvocation| Ok(json!(1))));
        let start = (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y-%m-%d");
        let text = |id: &str, extra: &str| {
            format!("{id}:\n  schedule: '@daily'\n  start_date: {start}\n  catchup: true\n{extra}  tasks:\n    a:\n      operator: x\n")
        };
        let dags = vec![
            dag(&text("p", "")),
            dag(&text("u", "  is_paused_upon_creation: false\n")),
        ];
        let store = f.sched_store();
        let s = Scheduler::with_store(
            store.clone(),
            dags,
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig {
                dags_paused_at_creation: true,
                ..Default::default()
            },
        )
        .unwrap();
        let opts = LoopOptions {
            schedule: true,
            until_idle: true,
            ..Default::default()
        };
        s.run(&opts).unwrap();
        assert!(store.runs_of("p").unwrap().is_empty(), "{}", f.name);
        assert!(!store.runs_of("u").unwrap().is_empty(), "{}", f.name);
        // unpaused, the next pass schedules it
        store.set_dag_paused("p", false).unwrap();
        s.run(&opts).unwrap();
        assert!(!store.runs_of("p").unwrap().is_empty(), "{}", f.name);
    });
}

/// Waits (up to a minute) until `f` holds.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ti_state(store: &SchedStore, dag: &str, run: &str, task: &str) -> TiState {
    store
        .tis_of(dag, run)
        .unwrap()
        .into_iter()
        .find(|t| t.ti.task_id == task)
        .map_or(TiState::None, |t| t.ti.state)
}

#[test]
fn a_paused_dags_queued_runs_wait_and_its_running_runs_start_nothing_new() {
    use std::sync::atomic::AtomicBool;
    each_backend(|f| {
        let store = f.sched_store();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (r2, st2) = (ran.clone(), store.clone());
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            r2.lock().unwrap().push(ti.task_id.clone());
            if ti.task_id == "a" {
                // the DAG is paused while its first task runs; the loop reads the flag every
                // tick (10 ms), so this try outlives many ticks
                st2.set_dag_paused("h", true).unwrap();
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(json!(1))
        }));
        let d = dag("h:\n  tasks:\n    a:\n      operator: x\n    b:\n      operator: x\n      dependencies: [a]\n");
        let s = Scheduler::with_store(
            store.clone(),
            vec![d],
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig {
                tick: Duration::from_millis(10),
                ..Default::default()
            },
        )
        .unwrap();
        store.set_dag_paused("h", true).unwrap();
        let rec = s
            .create_run(
                "h",
                date("2024-03-05"),
                None,
                Default::default(),
                Trigger::Manual,
            )
            .unwrap();
        let held = LoopOptions {
            adopt: true,
            hold_paused: true,
            until_idle: true,
            ..Default::default()
        };
        // paused: the triggered run stays queued, nothing runs
        s.run(&held).unwrap();
        let now = store.get_run("h", &rec.run_id).unwrap().unwrap();
        assert_eq!(now.state, "queued", "{}", f.name);
        assert!(ran.lock().unwrap().is_empty(), "{}", f.name);
        // unpaused, it starts; paused again while `a` runs, `a` finishes and `b` waits
        store.set_dag_paused("h", false).unwrap();
        s.run(&held).unwrap();
        assert_eq!(*ran.lock().unwrap(), vec!["a".to_string()], "{}", f.name);
        assert_eq!(ti_state(&store, "h", &rec.run_id, "a"), TiState::Success);
        assert!(
            !matches!(
                ti_state(&store, "h", &rec.run_id, "b"),
                TiState::Running | TiState::Success
            ),
            "{}",
            f.name
        );
        assert_eq!(
            store.get_run("h", &rec.run_id).unwrap().unwrap().state,
            "running"
        );
        // unpaused again, the run finishes
        store.set_dag_paused("h", false).unwrap();
        let done = AtomicBool::new(false);
        s.run(&LoopOptions {
            hold_paused: true,
            until_runs: Some(vec![("h".into(), rec.run_id.clone())]),
            stop: Some(&done),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            store.get_run("h", &rec.run_id).unwrap().unwrap().state,
            "success"
        );
    });
}

#[test]
fn marks_from_outside_the_loop_stop_running_tries_and_end_runs() {
    use std::sync::atomic::AtomicBool;
    use weft_engine::scheduler::{Control, ControlRequest, RunMark, SchedulerError};
    each_backend(|f| {
        let store = f.sched_store();
        let started: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(AtomicBool::new(false));
        let (st, rel) = (started.clone(), release.clone());
        let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
            st.lock().unwrap().push(ti.task_id.clone());
            if ti.task_id != "after" {
                while !rel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                // what a try that was marked reports must not count
                return Err(TaskFailure::new("Boom", "late result"));
            }
            Ok(json!("ran"))
        }));
        let d = dag("m:\n  tasks:\n    slow:\n      operator: x\n    after:\n      operator: x\n      dependencies: [slow]\n    other:\n      operator: x\n");
        let s = Scheduler::with_store(
            store.clone(),
            vec![d],
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap();
        let rec = s
            .create_run(
                "m",
                date("2024-03-05"),
                None,
                Default::default(),
                Trigger::Manual,
            )
            .unwrap();
        let run_id = rec.run_id.clone();
        let ctl = Control::default();
        // no loop yet: the caller applies changes itself
        assert!(ctl
            .send(ControlRequest::RunNote {
                dag_id: "m".into(),
                run_id: run_id.clone(),
                note: Some("x".into())
            })
            .is_none());
        std::thread::scope(|sc| {
            let loop_thread = sc.spawn(|| {
                s.run(&LoopOptions {
                    control: Some(&ctl),
                    until_runs: Some(vec![("m".into(), run_id.clone())]),
                    ..Default::default()
                })
                .unwrap()
            });
            wait_until("slow and other run", || started.lock().unwrap().len() == 2);
            // a note and a mark on the running try of `slow`
            let r = ctl
                .send(ControlRequest::RunNote {
                    dag_id: "m".into(),
                    run_id: run_id.clone(),
                    note: Some("looked at it".into()),
                })
                .expect("the loop answers");
            assert!(r.is_ok(), "{r:?}");
            let changed = ctl
                .send(ControlRequest::MarkTis {
                    dag_id: "m".into(),
                    run_id: run_id.clone(),
                    tis: vec![("slow".into(), None)],
                    state: TiState::Success,
                })
                .unwrap()
                .unwrap();
            assert_eq!(changed, vec![("slow".to_string(), -1)], "{}", f.name);
            assert_eq!(ti_state(&store, "m", &run_id, "slow"), TiState::Success);
            // its downstream runs although the try itself never ended
            wait_until("after ran", || {
                ti_state(&store, "m", &run_id, "after") == TiState::Success
            });
            // an unknown task, a run of another DAG: refused, nothing changes
            let bad = ctl
                .send(ControlRequest::MarkTis {
                    dag_id: "m".into(),
                    run_id: run_id.clone(),
                    tis: vec![("nope".into(), None)],
                    state: TiState::Failed,
                })
                .unwrap();
            assert!(
                matches!(bad, Err(SchedulerError::UnknownTask { .. })),
                "{bad:?}"
            );
            let bad = ctl
                .send(ControlRequest::MarkRun {
                    dag_id: "other-dag".into(),
                    run_id: run_id.clone(),
                    mark: RunMark::Failed,
                })
                .unwrap();
            assert!(matches!(bad, Err(SchedulerError::UnknownDag(_))), "{bad:?}");
            // marking the run failed fails `other`, which is still running, at once
            ctl.send(ControlRequest::MarkRun {
                dag_id: "m".into(),
                run_id: run_id.clone(),
                mark: RunMark::Failed,
            })
            .unwrap()
            .unwrap();
            assert_eq!(
                store.get_run("m", &run_id).unwrap().unwrap().state,
                "failed"
            );
            assert_eq!(ti_state(&store, "m", &run_id, "other"), TiState::Failed);
            release.store(true, Ordering::SeqCst);
            loop_thread.join().unwrap();
        });
        let r = store.get_run("m", &run_id).unwrap().unwrap();
        assert_eq!(
            (r.state.as_str(), r.note.as_deref()),
            ("failed", Some("looked at it")),
            "{}",
            f.name
        );
        // the late results were discarded
        assert_eq!(ti_state(&store, "m", &run_id, "slow"), TiState::Success);
        assert_eq!(ti_state(&store, "m", &run_id, "other"), TiState::Failed);
        let logs = store.logs_of("m", &run_id, "other").unwrap();
        assert!(
            format!("{logs:?}").contains("Weft.Marked"),
            "{}: {logs:?}",
            f.name
        );
        // without a loop, a finished run's instance is marked in the store and the run follows
        let changed = s
            .apply_control(&ControlRequest::MarkTis {
                dag_id: "m".into(),
                run_id: run_id.clone(),
                tis: vec![("other".into(), Some(-1))],
                state: TiState::Success,
            })
            .unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(
            store.get_run("m", &run_id).unwrap().unwrap().state,
            "success"
        );
        s.apply_control(&ControlRequest::TiNote {
            dag_id: "m".into(),
            run_id: run_id.clone(),
            task_id: "other".into(),
            map_index: -1,
            note: Some("fixed by hand".into()),
        })
        .unwrap();
        let t = store
            .tis_of("m", &run_id)
            .unwrap()
            .into_iter()
            .find(|t| t.ti.task_id == "other")
            .unwrap();
        assert_eq!(t.ti.note.as_deref(), Some("fixed by hand"));
        assert!(t.end_date.is_some(), "the dates stay");
    });
}

/// A tiny SMTP sink on 127.0.0.1: answers every command, keeps each message's recipients and
/// text. Stops with the test process.
/// Messages a sink received: (recipients, text).
type Mails = Arc<Mutex<Vec<(Vec<String>, String)>>>;

fn smtp_sink() -> (u16, Mails) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got: Mails = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut w) = c else { return };
            let mut r = BufReader::new(w.try_clone().unwrap());
            let _ = w.write_all(b"220 sink\r\n");
            let (mut rcpt, mut data, mut in_data) = (Vec::new(), String::new(), false);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        g.lock()
                            .unwrap()
                            .push((std::mem::take(&mut rcpt), std::mem::take(&mut data)));
                        let _ = w.write_all(b"250 queued\r\n");
                    } else {
                        data.push_str(&line);
                    }
                } else {
                    let up = line.to_ascii_uppercase();
                    let answer: &[u8] = if up.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if up.starts_with("RCPT TO:") {
                        rcpt.push(line[8..].trim().to_string());
                        b"250 ok\r\n"
                    } else if up.starts_with("DATA") {
                        in_data = true;
                        b"354 go\r\n"
                    } else if up.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(answer);
                }
                line.clear();
            }
        }
    });
    (port, got)
}

struct SmtpSecrets(u16);

impl weft_dag::Secrets for SmtpSecrets {
    fn variable(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn connection(&self, id: &str) -> Result<Option<weft_dag::Connection>, String> {
        Ok((id == "smtp_default").then(|| weft_dag::Connection {
            conn_type: Some("smtp".into()),
            host: Some("127.0.0.1".into()),
            login: None,
            password: None,
            schema: None,
            port: Some(self.0),
            extra: Some(
                r#"{"disable_tls": true, "disable_ssl": true, "from_email": "weft@example.com"}"#
                    .into(),
            ),
        }))
    }
}

#[test]
fn failure_and_retry_mail_and_execute_and_skipped_callbacks_are_honoured() {
    let (port, got) = smtp_sink();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = calls.clone();
    let exec: Plain<Exec> = Plain(Box::new(move |ti: &TaskInvocation| {
        c2.lock().unwrap().push(ti.task_id.clone());
        match ti.operator.as_str() {
            "boom" => Err(TaskFailure::new("Boom", "it <broke>")),
            "skip" => Err(TaskFailure::new("AirflowSkipException", "nothing to do")),
            _ => Ok(json!(1)),
        }
    }));
    let d = dag("mail:\n  tasks:\n    bad:\n      operator: boom\n      retries: 1\n      retry_delay: 0\n      email: \"ops@example.com, x@example.com\\r\\nBcc: evil@example.com\"\n      on_execute_callback: started_cb\n    quiet:\n      operator: skip\n      on_skipped_callback: skipped_cb\n");
    let store = SchedStore::open(&sled::Config::new().temporary(true).open().unwrap()).unwrap();
    let s = Scheduler::with_store(
        store.clone(),
        vec![d],
        &exec,
        Arc::new(SmtpSecrets(port)),
        SchedulerConfig::default(),
    )
    .unwrap();
    let rec = s
        .create_run(
            "mail",
            date("2024-03-05"),
            None,
            Default::default(),
            Trigger::Manual,
        )
        .unwrap();
    s.run(&LoopOptions {
        until_runs: Some(vec![("mail".into(), rec.run_id.clone())]),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        store.get_run("mail", &rec.run_id).unwrap().unwrap().state,
        "failed"
    );
    // one mail for the retry, one for the failure; only the well-formed recipient
    wait_until("two mails", || got.lock().unwrap().len() == 2);
    let mails = got.lock().unwrap().clone();
    for (rcpt, text) in &mails {
        assert_eq!(rcpt, &vec!["<ops@example.com>".to_string()], "{text}");
        assert!(!text.to_ascii_lowercase().contains("evil"), "{text}");
    }
    // headers may be folded: unfold before reading the subject
    let subjects: Vec<String> = mails
        .iter()
        .map(|(_, t)| {
            let t = t.replace("\r\n ", " ").replace("\r\n\t", " ");
            t.lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap()
                .to_string()
        })
        .collect();
    for want in ["[up_for_retry]>", "[failed]>"] {
        assert!(
            subjects.iter().any(|s| s
                .starts_with("Subject: Airflow alert: <TaskInstance: mail.bad ")
                && s.ends_with(want)),
            "{subjects:?}"
        );
    }
    assert!(
        mails.iter().all(|(_, t)| t.contains("it &lt;broke&gt;")),
        "{mails:?}"
    );
    // the callbacks ran (as invocations of their plugin) and were logged with the try
    wait_until("the callbacks", || {
        let c = calls.lock().unwrap();
        c.iter()
            .filter(|t| t.as_str() == "bad:on_execute_callback")
            .count()
            == 2
            && c.iter().any(|t| t == "quiet:on_skipped_callback")
    });
    let logs = format!("{:?}", store.logs_of("mail", &rec.run_id, "bad").unwrap());
    assert!(
        logs.contains("ops@example.com") && logs.contains("email"),
        "{logs}"
    );
}
