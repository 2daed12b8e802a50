//! Several DAG schedulers on one database (Airflow 2's HA scheduler): DAG leases with fencing
//! epochs, pool slots shared by every scheduler, adoption of a dead scheduler's DAGs. The
//! scheduler tests run one body on two fixtures: two schedulers on PostgreSQL, one on sled
//! (one process per sled store); the lease and fencing tests need a shared database and run
//! on PostgreSQL only.

mod backends;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backends::{dag, each_backend, run, stored_ti, Fixture, TestDb};
use serde_json::{json, Map, Value};
use weft_dag::{Dag, NoSecrets, TaskFailure, TaskInvocation, TiState};
use weft_engine::persistence::{DagLeases, SlotAsk, SlotKey};
use weft_engine::scheduler::{
    LoopOptions, Plain, Pools, SchedStore, Scheduler, SchedulerConfig, SchedulerError, StoredTi,
};

type Exec = Box<dyn Fn(&TaskInvocation) -> Result<Value, TaskFailure> + Sync>;

/// Waits (up to two minutes) until `f` holds.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(120), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ti(task: &str, state: TiState) -> StoredTi {
    stored_ti(task, -1, state)
}

fn slot(dag: &str, run: &str) -> SlotKey {
    SlotKey {
        dag_id: dag.into(),
        run_id: run.into(),
        task_id: "t".into(),
        map_index: -1,
    }
}

/// Takes `slots` of `pool` (of `total`) for `key` alone.
fn take(
    leases: &dyn DagLeases,
    pool: &str,
    total: u32,
    slots: u32,
    key: SlotKey,
) -> Result<bool, SchedulerError> {
    let asks = [SlotAsk {
        key,
        pool: pool.into(),
        total,
        slots,
    }];
    leases.take_slots(&[], &asks).map(|g| g[0])
}

fn is_fenced<T: std::fmt::Debug>(r: Result<T, SchedulerError>) -> bool {
    matches!(r, Err(SchedulerError::Fenced { .. }))
}

/// The attacker's test: a scheduler paused past its lease wakes up after another took the DAG
/// over; every write it tries is refused and nothing it sent is stored.
#[test]
fn a_scheduler_whose_lease_was_taken_over_writes_nothing() {
    let Some(t) = TestDb::create() else { return };
    let base = SchedStore::postgres(&t.connect());
    let a = base.coordinate("sched-a").unwrap();
    let b = base.coordinate("sched-b").unwrap();
    let dags = vec!["d".to_string()];
    let ttl = Duration::from_millis(300);
    let h = a.leases.tick(&dags, ttl, true).unwrap();
    assert_eq!(h.held, [("d".to_string(), 1)]);
    // a live lease is nobody else's
    assert!(b.leases.tick(&dags, ttl, false).unwrap().held.is_empty());
    a.store.insert_run(&run("d", "r1", 1)).unwrap();
    a.store
        .write_tis("d", "r1", &[], &[ti("t", TiState::Running)])
        .unwrap();
    assert!(take(&*a.leases, "p", 1, 1, slot("d", "r1")).unwrap());

    // a stops renewing; b takes the DAG over once the lease expired (a new epoch)
    wait_until("b adopts d", || {
        !b.leases.tick(&dags, ttl, false).unwrap().held.is_empty()
    });
    assert_eq!(
        b.leases.tick(&dags, ttl, false).unwrap().held,
        [("d".to_string(), 2)]
    );
    // a's pool slot was freed with the adoption
    assert!(take(&*b.leases, "p", 1, 1, slot("d", "r2")).unwrap());

    // a wakes up: every write is refused
    assert!(is_fenced(a.store.write_tis(
        "d",
        "r1",
        &[],
        &[ti("t", TiState::Success)]
    )));
    let mut done = run("d", "r1", 1);
    done.state = "success".into();
    assert!(is_fenced(a.store.put_run(&done)));
    assert!(is_fenced(a.store.insert_run(&run("d", "r9", 9))));
    assert!(is_fenced(a.store.create_asset_run(&run("d", "r8", 8), &[])));
    assert!(is_fenced(a.store.append_log(
        "d",
        "r1",
        "t",
        -1,
        1,
        json!({"late": true})
    )));
    assert!(is_fenced(take(&*a.leases, "p", 5, 1, slot("d", "r3"))));
    // ... and nothing of it is stored
    let stored = base.get_run("d", "r1").unwrap().unwrap();
    assert_eq!(stored.state, "queued");
    assert_eq!(
        base.tis_of("d", "r1").unwrap()[0].ti.state,
        TiState::Running
    );
    assert!(base.get_run("d", "r9").unwrap().is_none());
    assert!(base.get_run("d", "r8").unwrap().is_none());
    assert!(base.logs_of("d", "r1", "t").unwrap().is_empty());
    // a's renewal no longer returns the DAG; b's writes go through
    assert!(a.leases.tick(&dags, ttl, true).unwrap().held.is_empty());
    b.store.put_run(&done).unwrap();
    assert_eq!(base.get_run("d", "r1").unwrap().unwrap().state, "success");
    // a release by a scheduler that does not hold the DAG frees nothing
    a.leases.release(&dags).unwrap();
    assert_eq!(
        b.leases.tick(&dags, ttl, false).unwrap().held,
        [("d".to_string(), 2)]
    );
}

/// A pool's slots are counted across schedulers; a slot is given back by its owner only.
#[test]
fn pool_slots_are_shared_by_every_scheduler() {
    let Some(t) = TestDb::create() else { return };
    let base = SchedStore::postgres(&t.connect());
    let a = base.coordinate("sched-a").unwrap();
    let b = base.coordinate("sched-b").unwrap();
    let ttl = Duration::from_secs(30);
    a.leases.tick(&["d1".to_string()], ttl, false).unwrap();
    b.leases.tick(&["d2".to_string()], ttl, false).unwrap();
    assert!(take(&*a.leases, "one", 1, 1, slot("d1", "r")).unwrap());
    // taking it again for the same instance does not count twice
    assert!(take(&*a.leases, "one", 1, 1, slot("d1", "r")).unwrap());
    assert!(!take(&*b.leases, "one", 1, 1, slot("d2", "r")).unwrap());
    // more slots than the pool has: never
    assert!(!take(&*b.leases, "two", 2, 3, slot("d2", "r")).unwrap());
    // b cannot give a's slot back
    b.leases.release_slots(&[slot("d1", "r")]).unwrap();
    assert!(!take(&*b.leases, "one", 1, 1, slot("d2", "r")).unwrap());
    a.leases.release_slots(&[slot("d1", "r")]).unwrap();
    assert!(take(&*b.leases, "one", 1, 1, slot("d2", "r")).unwrap());
    // a batch is granted in order, within each pool's size
    let ask = |run: &str, pool: &str, total| SlotAsk {
        key: slot("d1", run),
        pool: pool.into(),
        total,
        slots: 1,
    };
    let asks = [
        ask("x", "three", 3),
        ask("y", "one", 1),
        ask("z", "three", 3),
        ask("w", "three", 3),
        ask("v", "three", 3),
    ];
    assert_eq!(
        a.leases.take_slots(&[], &asks).unwrap(),
        [true, false, true, true, false]
    );
    // slots given back in the same call count as free
    let again = [ask("u", "three", 3)];
    assert_eq!(a.leases.take_slots(&[], &again).unwrap(), [false]);
    assert_eq!(
        a.leases.take_slots(&[slot("d1", "x")], &again).unwrap(),
        [true]
    );
}

/// One try as the executor saw it: (scheduler, dag, run, task, try number).
/// The runs each DAG of `dags` is due (by DAG id).
fn due_of(dags: &[Dag]) -> HashMap<String, usize> {
    dags.iter()
        .map(|d| (d.dag_id.clone(), due_runs(d)))
        .collect()
}

type Effect = (usize, String, String, String, u32);

#[derive(Default)]
struct Effects {
    log: Mutex<Vec<Effect>>,
    in_pool: AtomicUsize,
    peak_pool: AtomicUsize,
}

/// The executor of scheduler `who`: records each try, counts tries of pool `one` running at
/// once (across schedulers).
fn executor(who: usize, fx: Arc<Effects>) -> Plain<Exec> {
    Plain(Box::new(move |ti: &TaskInvocation| {
        let pooled = ti.pool == "one";
        if pooled {
            let n = fx.in_pool.fetch_add(1, Ordering::SeqCst) + 1;
            fx.peak_pool.fetch_max(n, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(3));
        fx.log.lock().unwrap().push((
            who,
            ti.dag_id.clone(),
            ti.run_id.clone(),
            ti.task_id.clone(),
            ti.try_number,
        ));
        if pooled {
            fx.in_pool.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(json!(ti.logical_date.to_rfc3339()))
    }))
}

/// Two daily DAGs with catchup from 30 days back; their first task takes the one slot of pool
/// `one`.
fn catchup_dags() -> Vec<Dag> {
    let start = (chrono::Utc::now() - chrono::Duration::days(30)).format("%Y-%m-%d");
    ["ha_a", "ha_b"]
        .iter()
        .map(|id| {
            dag(&format!(
                "{id}:\n  schedule: '@daily'\n  start_date: {start}\n  catchup: true\n  max_active_runs: 3\n  tasks:\n    x:\n      operator: x\n      pool: one\n      retries: 1\n      retry_delay: 0\n    y:\n      operator: x\n      dependencies: [x]\n      retries: 1\n      retry_delay: 0\n"
            ))
        })
        .collect()
}

/// Sets a stop flag when dropped, so a failed assertion stops the schedulers instead of
/// waiting for them forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How many scheduled runs `d` has due now.
fn due_runs(d: &Dag) -> usize {
    let now = chrono::Utc::now();
    let mut last = None;
    let mut n = 0;
    while let Some(info) = d.next_dagrun_info(last.as_ref(), now) {
        if info.run_after > now || last == Some(info.data_interval) {
            break;
        }
        last = Some(info.data_interval);
        n += 1;
    }
    n
}

fn config() -> SchedulerConfig {
    let mut pools = Pools::default();
    pools.set("one", 1);
    SchedulerConfig {
        max_workers: 4,
        pools,
        tick: Duration::from_millis(100),
        // (short for the tests, yet long enough that a loaded machine renews in time)
        lease: Duration::from_secs(3),
        ..Default::default()
    }
}

/// How many schedulers share the fixture's store: two on PostgreSQL, one on sled.
fn schedulers_on(f: &Fixture) -> usize {
    if f.name == "postgres" {
        2
    } else {
        1
    }
}

/// Every run of `dags` finished, and as many as are due.
fn all_done(store: &SchedStore, dags: &[Dag], due: &HashMap<String, usize>) -> bool {
    dags.iter().all(|d| {
        let runs = store.runs_of(&d.dag_id).unwrap();
        runs.len() >= due[&d.dag_id] && runs.iter().all(|r| r.is_finished())
    })
}

/// What every scheduler test checks at the end: each due logical date ran once and
/// succeeded, no try ran twice, and every task succeeded in every run.
fn check_exactly_once(
    store: &SchedStore,
    dags: &[Dag],
    due: &HashMap<String, usize>,
    fx: &Effects,
) {
    for d in dags {
        let runs = store.runs_of(&d.dag_id).unwrap();
        assert_eq!(
            runs.len(),
            due[&d.dag_id],
            "{}: one run per logical date",
            d.dag_id
        );
        assert!(runs
            .iter()
            .all(|r| r.state == "success" && r.run_type == "scheduled"));
        assert!(runs
            .windows(2)
            .all(|w| w[0].data_interval_end == w[1].data_interval_start));
        for r in &runs {
            for t in store.tis_of(&d.dag_id, &r.run_id).unwrap() {
                assert_eq!(
                    t.ti.state,
                    TiState::Success,
                    "{} {}",
                    r.run_id,
                    t.ti.task_id
                );
            }
        }
    }
    let log = fx.log.lock().unwrap();
    let mut tries = HashSet::new();
    for (_, dag, run, task, n) in log.iter() {
        assert!(
            tries.insert((dag.clone(), run.clone(), task.clone(), *n)),
            "try {n} of {dag} {run} {task} started twice"
        );
    }
    assert!(
        fx.peak_pool.load(Ordering::SeqCst) <= 1,
        "pool `one` has one slot"
    );
}

#[test]
fn schedulers_sharing_a_database_run_each_logical_date_once_within_pools() {
    each_backend(|f| {
        let dags = catchup_dags();
        let due = due_of(&dags);
        let fx = Arc::new(Effects::default());
        let n = schedulers_on(f);
        let execs: Vec<Plain<Exec>> = (0..n).map(|i| executor(i, fx.clone())).collect();
        let stop = AtomicBool::new(false);
        let watch = f.sched_store();
        std::thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            for exec in &execs {
                let (dags, store, stop) = (dags.clone(), f.sched_store(), &stop);
                s.spawn(move || {
                    let sched =
                        Scheduler::with_store(store, dags, exec, Arc::new(NoSecrets), config())
                            .unwrap();
                    sched
                        .run(&LoopOptions {
                            schedule: true,
                            stop: Some(stop),
                            ..Default::default()
                        })
                        .unwrap();
                });
            }
            wait_until("every run finished", || all_done(&watch, &dags, &due));
            stop.store(true, Ordering::SeqCst);
        });
        check_exactly_once(&watch, &dags, &due, &fx);
        if n == 2 {
            // the DAGs were shared out: each scheduler ran tries
            let log = fx.log.lock().unwrap();
            for who in 0..n {
                assert!(
                    log.iter().any(|e| e.0 == who),
                    "scheduler {who} ran nothing"
                );
            }
        }
    });
}

#[test]
fn a_dead_schedulers_dags_are_adopted_and_finished() {
    let Some(t) = TestDb::create() else { return };
    let db = t.connect();
    let dags = catchup_dags();
    let due = due_of(&dags);
    let fx = Arc::new(Effects::default());
    let execs: Vec<Plain<Exec>> = (0..2).map(|i| executor(i, fx.clone())).collect();
    let (stop, killed) = (AtomicBool::new(false), AtomicBool::new(false));
    let watch = SchedStore::postgres(&db);
    let mut adopted_in = Duration::ZERO;
    std::thread::scope(|s| {
        let (_stop, _killed) = (StopOnDrop(&stop), StopOnDrop(&killed));
        for (i, exec) in execs.iter().enumerate() {
            let (dags, store, stop, killed) =
                (dags.clone(), SchedStore::postgres(&db), &stop, &killed);
            s.spawn(move || {
                let sched = Scheduler::with_store(store, dags, exec, Arc::new(NoSecrets), config())
                    .unwrap();
                sched
                    .run(&LoopOptions {
                        schedule: true,
                        stop: Some(stop),
                        abandon: (i == 0).then_some(killed),
                        ..Default::default()
                    })
                    .unwrap();
            });
        }
        // both schedulers at work, then scheduler 0 dies mid-run
        wait_until("both schedulers ran tries", || {
            let log = fx.log.lock().unwrap();
            log.iter().filter(|e| e.0 == 0).count() >= 4 && log.iter().any(|e| e.0 == 1)
        });
        let dags0: HashSet<String> = {
            let log = fx.log.lock().unwrap();
            log.iter()
                .filter(|e| e.0 == 0)
                .map(|e| e.1.clone())
                .collect()
        };
        killed.store(true, Ordering::SeqCst);
        let at = Instant::now();
        let before = fx.log.lock().unwrap().len();
        wait_until("scheduler 1 runs the dead one's DAG", || {
            fx.log.lock().unwrap()[before..]
                .iter()
                .any(|e| e.0 == 1 && dags0.contains(&e.1))
        });
        adopted_in = at.elapsed();
        wait_until("every run finished", || all_done(&watch, &dags, &due));
        stop.store(true, Ordering::SeqCst);
    });
    eprintln!(
        "adoption: scheduler 1 ran the dead scheduler's DAG {:.2}s after it died (lease 3 s)",
        adopted_in.as_secs_f64()
    );
    check_exactly_once(&watch, &dags, &due, &fx);
}

/// `weft dag trigger` beside a running scheduler (same database, another process): the run it
/// creates is run by the DAG's owner, and the command returns once it has finished.
#[test]
fn a_run_triggered_beside_a_running_scheduler_is_run_by_the_dags_owner() {
    let Some(t) = TestDb::create() else { return };
    let db = t.connect();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%d");
    let d = dag(&format!(
        "ha_m:\n  schedule: '@daily'\n  start_date: {yesterday}\n  catchup: false\n  tasks:\n    x:\n      operator: x\n    y:\n      operator: x\n      dependencies: [x]\n"
    ));
    let fx = Arc::new(Effects::default());
    let (owner_exec, cli_exec) = (executor(0, fx.clone()), executor(1, fx.clone()));
    let stop = AtomicBool::new(false);
    let watch = SchedStore::postgres(&db);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        let (dags, store, stop, exec) = (
            vec![d.clone()],
            SchedStore::postgres(&db),
            &stop,
            &owner_exec,
        );
        s.spawn(move || {
            Scheduler::with_store(store, dags, exec, Arc::new(NoSecrets), config())
                .unwrap()
                .run(&LoopOptions {
                    schedule: true,
                    stop: Some(stop),
                    ..Default::default()
                })
                .unwrap();
        });
        // the owner scheduled the DAG's latest interval: it holds the DAG
        wait_until("the scheduled run finished", || {
            let runs = watch.runs_of("ha_m").unwrap();
            !runs.is_empty() && runs.iter().all(|r| r.is_finished())
        });
        let cli = Scheduler::with_store(
            SchedStore::postgres(&db),
            vec![d.clone()],
            &cli_exec,
            Arc::new(NoSecrets),
            config(),
        )
        .unwrap();
        let rec = cli
            .create_run(
                "ha_m",
                chrono::Utc::now(),
                None,
                Map::new(),
                weft_engine::scheduler::Trigger::Manual,
            )
            .unwrap();
        cli.run(&LoopOptions {
            until_runs: Some(vec![(rec.dag_id.clone(), rec.run_id.clone())]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            watch.get_run("ha_m", &rec.run_id).unwrap().unwrap().state,
            "success"
        );
        let log = fx.log.lock().unwrap();
        let ran: Vec<usize> = log
            .iter()
            .filter(|e| e.2 == rec.run_id)
            .map(|e| e.0)
            .collect();
        assert_eq!(ran, [0, 0], "the owner ran x and y, the command nothing");
        drop(log);
        stop.store(true, Ordering::SeqCst);
    });
}

/// A scheduler that gave its lease up cleanly writes as a client does afterwards; one whose
/// lease was taken over stays fenced even when it calls release.
#[test]
fn giving_a_lease_up_unfences_only_what_was_still_held() {
    let Some(t) = TestDb::create() else { return };
    let base = SchedStore::postgres(&t.connect());
    let a = base.coordinate("sched-a").unwrap();
    let b = base.coordinate("sched-b").unwrap();
    let ttl = Duration::from_millis(300);
    let (d1, d2) = (vec!["d1".to_string()], vec!["d2".to_string()]);
    a.leases.tick(&d1, ttl, false).unwrap();
    a.leases.release(&d1).unwrap();
    a.store.insert_run(&run("d1", "r1", 1)).unwrap();
    a.leases.tick(&d2, ttl, false).unwrap();
    wait_until("b adopts d2", || {
        !b.leases.tick(&d2, ttl, false).unwrap().held.is_empty()
    });
    a.leases.release(&d2).unwrap();
    a.leases.retire().unwrap();
    assert!(is_fenced(a.store.insert_run(&run("d2", "r1", 1))));
}
