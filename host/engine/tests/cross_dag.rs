//! The cross-DAG operators in the persistent scheduler, on each backend:
//! `TriggerDagRunOperator` waiting for the run it triggered (success and failure, templated
//! `conf`, `skip_when_already_exists`, `reset_dag_run`), `ExternalTaskSensor` in poke and
//! reschedule mode (satisfied and failed), and the attacker's side: a DAG cannot trigger or
//! watch a DAG its grant does not name, nor act without a grant.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_dag::{parse_dag_file, AnyOperator, Dag, FolderConfig, NoSecrets, TaskInvocation};
use weft_engine::roles::Roles;
use weft_engine::scheduler::{LoopOptions, Plain, Scheduler, SchedulerConfig, Trigger};

mod backends;
use backends::{each_backend, Fixture};

mod dag_fixtures;
use dag_fixtures::{dags, echo_or_fail, Exec};

const DAGS: &str = r#"
parent:
  tasks:
    go:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: child
      trigger_run_id: "from_parent__{{ ds }}"
      conf: {day: "{{ ds }}"}
      wait_for_completion: true
      poke_interval: 0.02
parent_of_failure:
  tasks:
    go:
      operator: airflow.providers.standard.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: child_fails
      wait_for_completion: true
      poke_interval: 0.02
twice:
  tasks:
    first:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: child
      trigger_run_id: fixed
      conf: {day: first}
    again:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: child
      trigger_run_id: fixed
      skip_when_already_exists: true
      dependencies: [first]
    reset:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: child
      trigger_run_id: fixed
      conf: {day: reset}
      reset_dag_run: true
      wait_for_completion: true
      poke_interval: 0.02
      trigger_rule: all_done
      dependencies: [again]
sneaky:
  tasks:
    go:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: admin_only
      wait_for_completion: true
no_grant:
  tasks:
    go:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      trigger_dag_id: child
child:
  tasks:
    c:
      operator: echo
      day: "{{ dag_run.conf.day }}"
child_fails:
  tasks:
    c:
      operator: fail
admin_only:
  tasks:
    c:
      operator: echo
"#;

/// Roles: `trigger-children` may trigger `child*` DAGs and read the runs of `up*` DAGs.
fn roles() -> (tempfile::TempDir, Arc<Roles>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trigger-children.json"),
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["dags:TriggerDagRun"], "Resource": ["weft:dag:child*"]},
            {"Effect": "Allow", "Action": ["dags:ListDagRuns"], "Resource": ["weft:dag:up*"]}]}"#,
    )
    .unwrap();
    let roles = Arc::new(Roles::new(vec![dir.path().to_path_buf()]));
    (dir, roles)
}

/// Runs `dag_id` once at 2024-03-05; its report and the scheduler's store.
fn run(f: &Fixture, all: &[Dag], dag_id: &str, exec: &Plain<Exec>, roles: &Arc<Roles>) -> Value {
    let s = Scheduler::with_store(
        f.sched_store(),
        all.to_vec(),
        exec,
        Arc::new(NoSecrets),
        SchedulerConfig::default(),
    )
    .unwrap()
    .with_roles(roles.clone());
    let rec = s
        .create_run(
            dag_id,
            weft_dag::parse_logical_date("2024-03-05").unwrap(),
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
    let mut r = s.report(&rec.dag_id, &rec.run_id).unwrap().to_json();
    let errors: Vec<Value> = f
        .sched_store()
        .tis_of(&rec.dag_id, &rec.run_id)
        .unwrap()
        .into_iter()
        .map(|t| json!([t.ti.task_id, t.ti.error]))
        .collect();
    r["errors"] = json!(errors);
    r
}

#[test]
fn trigger_dag_run_waits_for_success_and_for_failure() {
    each_backend(|f| {
        let (_dir, roles) = roles();
        let (all, exec) = (dags(DAGS), echo_or_fail());
        let r = run(f, &all, "parent", &exec, &roles);
        assert_eq!(r["state"], "success", "{}: {r}", f.name);
        assert_eq!(
            r["tasks"]["go"]["xcom"]["trigger_run_id"],
            "from_parent__2024-03-05"
        );
        let store = f.sched_store();
        let child = store
            .get_run("child", "from_parent__2024-03-05")
            .unwrap()
            .unwrap();
        assert_eq!(child.state, "success", "{}", f.name);
        assert_eq!(child.conf["day"], "2024-03-05", "{}", f.name);
        let tis = store.tis_of("child", &child.run_id).unwrap();
        assert_eq!(tis[0].ti.xcom["day"], "2024-03-05", "{}", f.name);

        let r = run(f, &all, "parent_of_failure", &exec, &roles);
        assert_eq!(r["state"], "failed", "{}: {r}", f.name);
        assert!(
            r["errors"]
                .to_string()
                .contains("child_fails failed with failed state failed"),
            "{}: {r}",
            f.name
        );

        // a second trigger of the same run id: skipped when asked, else refused
        let r = run(f, &all, "twice", &exec, &roles);
        assert_eq!(r["tasks"]["first"]["state"], "success", "{}: {r}", f.name);
        assert_eq!(r["tasks"]["again"]["state"], "skipped", "{}: {r}", f.name);
        // `reset` waited for the fixed run to finish, then ran it afresh
        assert_eq!(r["tasks"]["reset"]["state"], "success", "{}: {r}", f.name);
        let fixed = f.sched_store().get_run("child", "fixed").unwrap().unwrap();
        assert_eq!(fixed.state, "success", "{}", f.name);
    });
}

#[test]
fn a_dag_cannot_trigger_a_dag_its_grant_does_not_name() {
    each_backend(|f| {
        let (_dir, roles) = roles();
        let (all, exec) = (dags(DAGS), echo_or_fail());
        let r = run(f, &all, "sneaky", &exec, &roles);
        assert_eq!(r["state"], "failed", "{}: {r}", f.name);
        assert!(
            r["errors"].to_string().contains("Weft.AccessDenied"),
            "{}: {r}",
            f.name
        );
        assert!(f.sched_store().runs_of("admin_only").unwrap().is_empty());
        let r = run(f, &all, "no_grant", &exec, &roles);
        assert_eq!(r["state"], "failed", "{}: {r}", f.name);
        assert!(r["errors"].to_string().contains("no grant"), "{r}");
        assert!(f.sched_store().runs_of("child").unwrap().is_empty());
    });
}

/// `up` (its task fails when `fail` is set) and `down`, whose sensor waits on `up.u`.
fn sensor_dags(mode: &str, fail: bool, external: &str, grant: &str) -> Vec<Dag> {
    dags(&format!(
        r#"
up:
  tasks:
    u:
      operator: {op}
down:
  tasks:
    wait:
      operator: airflow.sensors.external_task.ExternalTaskSensor
      grant: {grant}
      external_dag_id: {external}
      external_task_id: u
      failed_states: [failed, upstream_failed]
      mode: {mode}
      poke_interval: 0.02
      timeout: 600
    after:
      operator: echo
      dependencies: [wait]
"#,
        op = if fail { "fail" } else { "echo" },
    ))
}

fn sensor_run(f: &Fixture, all: Vec<Dag>, roles: &Arc<Roles>) -> Value {
    let exec = echo_or_fail();
    let s = Scheduler::with_store(
        f.sched_store(),
        all,
        &exec,
        Arc::new(NoSecrets),
        SchedulerConfig {
            tick: std::time::Duration::from_millis(20),
            ..Default::default()
        },
    )
    .unwrap()
    .with_roles(roles.clone());
    let at = weft_dag::parse_logical_date("2024-03-05").unwrap();
    // the sensor's run first: it pokes before the external run exists
    let down = s
        .create_run("down", at, None, Default::default(), Trigger::Manual)
        .unwrap();
    let up = s
        .create_run("up", at, None, Default::default(), Trigger::Manual)
        .unwrap();
    s.run(&LoopOptions {
        until_runs: Some(vec![
            (down.dag_id.clone(), down.run_id.clone()),
            (up.dag_id.clone(), up.run_id.clone()),
        ]),
        ..Default::default()
    })
    .unwrap();
    let mut r = s.report("down", &down.run_id).unwrap().to_json();
    let errors: Vec<Value> = f
        .sched_store()
        .tis_of("down", &down.run_id)
        .unwrap()
        .into_iter()
        .map(|t| json!([t.ti.task_id, t.ti.error]))
        .collect();
    r["errors"] = json!(errors);
    r
}

#[test]
fn external_task_sensor_pokes_and_reschedules_both_ways() {
    for mode in ["poke", "reschedule"] {
        each_backend(|f| {
            let (_dir, roles) = roles();
            let r = sensor_run(
                f,
                sensor_dags(mode, false, "up", "trigger-children"),
                &roles,
            );
            assert_eq!(r["state"], "success", "{mode} {}: {r}", f.name);
            assert_eq!(
                r["tasks"]["wait"]["xcom"]["states"],
                json!(["success"]),
                "{r}"
            );
        });
        each_backend(|f| {
            let (_dir, roles) = roles();
            let r = sensor_run(f, sensor_dags(mode, true, "up", "trigger-children"), &roles);
            assert_eq!(r["state"], "failed", "{mode} {}: {r}", f.name);
            assert!(
                r["errors"].to_string().contains("one of failed_states"),
                "{mode} {}: {r}",
                f.name
            );
            assert_eq!(r["tasks"]["after"]["state"], "upstream_failed", "{r}");
        });
    }
}

#[test]
fn a_sensor_cannot_watch_a_dag_its_grant_does_not_name() {
    each_backend(|f| {
        let (_dir, roles) = roles();
        // `nobody` names no role file: the grant allows nothing
        let r = sensor_run(f, sensor_dags("poke", false, "up", "nobody"), &roles);
        assert_eq!(r["state"], "failed", "{}: {r}", f.name);
        assert!(r["errors"].to_string().contains("Weft.AccessDenied"), "{r}");
    });
}

#[test]
fn unsupported_sensor_arguments_are_refused_at_their_line() {
    let (_, errors) = parse_dag_file(
        Path::new("bad.yaml"),
        "d:\n  tasks:\n    s:\n      operator: airflow.providers.standard.sensors.external_task.ExternalTaskSensor\n      external_dag_id: up\n      execution_delta: {hours: 1}\n",
        &FolderConfig::default(),
        &AnyOperator,
    );
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("bad.yaml:4") && e.contains("execution_delta")),
        "{text:?}"
    );
}

#[test]
fn a_wait_interrupted_by_a_stop_resumes_on_the_same_run() {
    use std::sync::atomic::{AtomicBool, Ordering};
    each_backend(|f| {
        let (_dir, roles) = roles();
        let all = dags(
            r#"
waiter:
  tasks:
    go:
      operator: airflow.operators.trigger_dagrun.TriggerDagRunOperator
      grant: trigger-children
      trigger_dag_id: child_slow
      trigger_run_id: slow-1
      wait_for_completion: true
      poke_interval: 0.02
child_slow:
  tasks:
    c:
      operator: slow
"#,
        );
        let release = Arc::new(AtomicBool::new(false));
        let r2 = release.clone();
        let exec: Plain<Exec> = Plain(Box::new(move |_: &TaskInvocation| {
            while !r2.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(json!(1))
        }));
        let at = weft_dag::parse_logical_date("2024-03-05").unwrap();
        let stop = AtomicBool::new(false);
        let rec = {
            let s = Scheduler::with_store(
                f.sched_store(),
                all.clone(),
                &exec,
                Arc::new(NoSecrets),
                SchedulerConfig::default(),
            )
            .unwrap()
            .with_roles(roles.clone());
            let rec = s
                .create_run("waiter", at, None, Default::default(), Trigger::Manual)
                .unwrap();
            let store = f.sched_store();
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    // stop once the child's task runs, then let it finish
                    loop {
                        let running =
                            store
                                .get_run("child_slow", "slow-1")
                                .unwrap()
                                .is_some_and(|r| {
                                    store
                                        .tis_of(&r.dag_id, &r.run_id)
                                        .unwrap()
                                        .iter()
                                        .any(|t| t.ti.state == weft_dag::TiState::Running)
                                });
                        if running {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    stop.store(true, Ordering::SeqCst);
                    // the waiting task gives up its wait before the child may finish
                    while !store
                        .tis_of("waiter", &rec.run_id)
                        .unwrap()
                        .iter()
                        .any(|t| t.ti.state == weft_dag::TiState::UpForReschedule)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    release.store(true, Ordering::SeqCst);
                });
                s.run(&LoopOptions {
                    until_runs: Some(vec![(rec.dag_id.clone(), rec.run_id.clone())]),
                    stop: Some(&stop),
                    ..Default::default()
                })
                .unwrap();
            });
            rec
        };
        let store = f.sched_store();
        let waiting = store.tis_of("waiter", &rec.run_id).unwrap();
        assert_eq!(
            waiting[0].ti.state,
            weft_dag::TiState::UpForReschedule,
            "{}",
            f.name
        );
        // the next scheduler resumes the wait on the run already triggered
        let s = Scheduler::with_store(
            f.sched_store(),
            all.clone(),
            &exec,
            Arc::new(NoSecrets),
            SchedulerConfig::default(),
        )
        .unwrap()
        .with_roles(roles.clone());
        s.run(&LoopOptions {
            until_runs: Some(vec![(rec.dag_id.clone(), rec.run_id.clone())]),
            ..Default::default()
        })
        .unwrap();
        let r = s.report("waiter", &rec.run_id).unwrap().to_json();
        assert_eq!(r["state"], "success", "{}: {r}", f.name);
        assert_eq!(store.runs_of("child_slow").unwrap().len(), 1, "{}", f.name);
    });
}
