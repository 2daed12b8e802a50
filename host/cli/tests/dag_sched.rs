//! The persistent DAG scheduler through the real `weft` binary: trigger, kill -9 and resume,
//! clear, logs per try, backfill within max_active_runs, sensors, file-arrival triggers,
//! variables and connections gated by grants.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// `weft ARGS` on `backend`'s store with `$WEFT_HOME` = `home`, in `cwd`.
fn cmd(backend: &Backend, home: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
    backend.apply(&mut c);
    c.args(args)
        .env("WEFT_HOME", home)
        .env_remove("WEFT_DAGS")
        .current_dir(cwd);
    c
}

fn weft(backend: &Backend, home: &Path, cwd: &Path, args: &[&str]) -> Output {
    cmd(backend, home, cwd, args).output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&out(o))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out(o), err(o)))
}

/// A WEFT_HOME with plugins installed and a work dir holding `dags/`, `roles/` and `data/`.
struct Env {
    backend: Backend,
    _tmp: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
}

impl Env {
    fn new(backend: &Backend, plugins: &[&str]) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let work = tmp.path().join("work");
        for d in ["dags", "roles", "data/in", "data/out"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        let e = Env {
            backend: backend.clone(),
            _tmp: tmp,
            home,
            work,
        };
        for p in plugins {
            let o = e.run(&[
                "plugin",
                "install",
                plugin(&format!("{p}.wasm")).to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", err(&o));
        }
        std::fs::write(
            e.work.join("roles/data.json"),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:data/*"}]}"#,
        )
        .unwrap();
        std::fs::write(e.work.join("data/in/rows.csv"), "id,v\n1,a\n2,b\n").unwrap();
        e
    }

    fn dag(&self, name: &str, yaml: &str) {
        std::fs::write(self.work.join("dags").join(name), yaml).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        weft(&self.backend, &self.home, &self.work, args)
    }

    fn dags(&self) -> String {
        self.work.join("dags").display().to_string()
    }
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fn kill_9_mid_run_resumes_without_rerunning_finished_tasks(backend: &Backend) {
    let e = Env::new(backend, &["csv-to-json", "hostile/spin"]);
    // a and b write their outputs (a re-run would rewrite them); slow spins until its
    // execution_timeout; after restart the lost try counts and slow retries once; c runs
    // whatever slow did.
    e.dag(
        "resume.yaml",
        "resume:\n  schedule: null\n  default_args:\n    grant: data\n  tasks:\n    a:\n      operator: csv-to-json\n      path: /data/in/rows.csv\n      output: /data/out/a.json\n    b:\n      operator: csv-to-json\n      dependencies: [a]\n      path: /data/in/rows.csv\n      output: /data/out/b.json\n    slow:\n      operator: hostile-spin\n      dependencies: [b]\n      retries: 1\n      retry_delay: 0\n      execution_timeout: 3\n    c:\n      operator: csv-to-json\n      dependencies: [slow]\n      trigger_rule: all_done\n      path: /data/in/rows.csv\n      output: /data/out/c.json\n",
    );
    let dags = e.dags();
    let mut child = cmd(
        &e.backend,
        &e.home,
        &e.work,
        &[
            "dag",
            "trigger",
            "resume",
            "--dags",
            &dags,
            "--date",
            "2024-03-05",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let b_out = e.work.join("data/out/b.json");
    let t0 = Instant::now();
    while !b_out.exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "b never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // slow starts right after b; give it a moment, then kill -9 mid-run.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!e.work.join("data/out/c.json").exists(), "killed before c");
    let (a_m, b_m) = (mtime(&e.work.join("data/out/a.json")), mtime(&b_out));

    let o = e.run(&[
        "dag",
        "scheduler",
        "--dags",
        &dags,
        "--exit-when-idle",
        "--dags-paused-at-creation",
        "false",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(mtime(&e.work.join("data/out/a.json")), a_m, "a was re-run");
    assert_eq!(mtime(&b_out), b_m, "b was re-run");
    assert!(
        e.work.join("data/out/c.json").exists(),
        "c ran after the restart"
    );

    let runs = json(&e.run(&["dag", "runs", "resume", "--json"]));
    let r = &runs[0];
    assert_eq!(r["state"], "success", "{r}");
    assert_eq!(r["tasks"]["a"]["try_number"], 1);
    assert_eq!(r["tasks"]["b"]["try_number"], 1);
    // The try that was running when the process died counts; the retry is try 2.
    assert_eq!(r["tasks"]["slow"]["state"], "failed", "{r}");
    assert_eq!(r["tasks"]["slow"]["try_number"], 2, "{r}");
    assert_eq!(r["tasks"]["c"]["state"], "success");
    let logs = json(&e.run(&["dag", "logs", "resume", "slow", "--try", "1", "--json"]));
    assert_eq!(
        logs[0]["entries"][0]["error"]["error"], "Weft.TaskLost",
        "{logs}"
    );
}
on_both_backends!(kill_9_mid_run_resumes_without_rerunning_finished_tasks);

fn trigger_matches_dag_test_and_logs_and_clear_work(backend: &Backend) {
    let e = Env::new(backend, &["csv-to-json", "json-transform", "echo", "fail"]);
    let dags = repo().join("examples/dags").display().to_string();
    let cwd = repo();
    let t = weft(
        &e.backend,
        &e.home,
        &cwd,
        &[
            "dag",
            "test",
            "daily_orders",
            "2024-03-05",
            "--dags",
            &dags,
            "--json",
        ],
    );
    let g = weft(
        &e.backend,
        &e.home,
        &cwd,
        &[
            "dag",
            "trigger",
            "daily_orders",
            "--date",
            "2024-03-05",
            "--dags",
            &dags,
            "--json",
        ],
    );
    assert_eq!(g.status.code(), t.status.code(), "{}", err(&g));
    let (t, g) = (json(&t), json(&g));
    assert_eq!(t["state"], g["state"]);
    for (k, v) in t["tasks"].as_object().unwrap() {
        assert_eq!(v["state"], g["tasks"][k]["state"], "{k}");
        assert_eq!(v["try_number"], g["tasks"][k]["try_number"], "{k}");
        assert_eq!(v["xcom"], g["tasks"][k]["xcom"], "{k}");
    }
    // Per-try logs: flaky_export failed twice (retries: 1).
    let l = weft(
        &e.backend,
        &e.home,
        &cwd,
        &["dag", "logs", "daily_orders", "flaky_export", "--json"],
    );
    assert!(l.status.success(), "{}", err(&l));
    let l = json(&l);
    assert_eq!(l.as_array().unwrap().len(), 2, "{l}");
    assert_eq!(l[1]["try_number"], 2);
    let t2 = weft(
        &e.backend,
        &e.home,
        &cwd,
        &["dag", "logs", "daily_orders", "flaky_export", "--try", "2"],
    );
    assert!(out(&t2).contains("Export.Unavailable"), "{}", out(&t2));
    assert!(!weft(
        &e.backend,
        &e.home,
        &cwd,
        &["dag", "logs", "daily_orders", "flaky_export", "--try", "9"]
    )
    .status
    .success());
    // Clear report: it and its downstream run again (try numbers go on).
    let c = weft(
        &e.backend,
        &e.home,
        &cwd,
        &[
            "dag",
            "clear",
            "daily_orders",
            "report",
            "--dags",
            &dags,
            "--json",
        ],
    );
    let c = json(&c);
    assert_eq!(c["tasks"]["report"]["try_number"], 2, "{c}");
    assert_eq!(c["tasks"]["cleanup"]["try_number"], 2, "{c}");
    assert_eq!(c["tasks"]["extract"]["try_number"], 1, "{c}");
    assert_eq!(c["tasks"]["report"]["state"], "success");
    // A second manual run at the same logical date is refused, like Airflow.
    let dup = weft(
        &e.backend,
        &e.home,
        &cwd,
        &[
            "dag",
            "trigger",
            "daily_orders",
            "--date",
            "2024-03-05",
            "--dags",
            &dags,
        ],
    );
    assert_eq!(dup.status.code(), Some(2), "{}", err(&dup));
}
on_both_backends!(trigger_matches_dag_test_and_logs_and_clear_work);

fn backfill_runs_every_interval_within_max_active_runs(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    e.dag(
        "bf.yaml",
        "bf:\n  schedule: '@daily'\n  start_date: 2024-01-01\n  catchup: false\n  max_active_runs: 2\n  tasks:\n    a:\n      operator: echo\n      day: '{{ ds }}'\n    b:\n      operator: echo\n      dependencies: [a]\n      got: \"{{ ti.xcom_pull(task_ids='a')['day'] }}\"\n",
    );
    let o = e.run(&[
        "dag",
        "backfill",
        "bf",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-05",
        "--dags",
        &e.dags(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let v = json(&o);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r["state"] == "success"), "{v}");
    // piped stderr: progress as plain lines (no terminal redraws), ending with the count
    let progress = err(&o);
    assert!(
        progress.contains("backfill bf: 5/5 runs finished (0 failed)\n")
            && progress.contains("backfill bf: 5 runs, 0 failed in "),
        "{progress}"
    );
    assert!(
        !progress.contains('\u{1b}') && !progress.contains('\r'),
        "no escape sequences or carriage returns when piped: {progress:?}"
    );
    let listed = json(&e.run(&["dag", "runs", "bf", "--json"]));
    let dates: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["logical_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates.len(), 5);
    assert!(
        dates.windows(2).all(|w| w[0] < w[1]),
        "runs list in logical-date order: {dates:?}"
    );
    // Again: the existing runs are skipped.
    let again = json(&e.run(&[
        "dag",
        "backfill",
        "bf",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--dags",
        &e.dags(),
        "--json",
    ]));
    assert_eq!(again["skipped"], 2);
}
on_both_backends!(backfill_runs_every_interval_within_max_active_runs);

fn sensors_reschedule_until_the_file_appears_and_soft_fail_on_timeout(backend: &Backend) {
    let e = Env::new(backend, &["file-sensor", "echo", "csv-to-json"]);
    // `maker` writes the flag `wait` looks for, only after `never` has timed out (soft_fail),
    // so `wait` pokes "not yet" first, whatever the machine's speed.
    e.dag(
        "sense.yaml",
        "sense:\n  schedule: null\n  tasks:\n    wait:\n      operator: file-sensor\n      grant: data\n      path: /data/in/ready.flag\n      mode: reschedule\n      poke_interval: 0.2\n      timeout: 60\n    after:\n      operator: echo\n      dependencies: [wait]\n    never:\n      operator: file-sensor\n      grant: data\n      path: /data/in/never.flag\n      poke_interval: 0.1\n      timeout: 0.5\n      soft_fail: true\n    skipped_after:\n      operator: echo\n      dependencies: [never]\n    maker:\n      operator: csv-to-json\n      grant: data\n      dependencies: [never]\n      trigger_rule: all_done\n      path: /data/in/rows.csv\n      output: /data/in/ready.flag\n",
    );
    let o = e.run(&["dag", "trigger", "sense", "--dags", &e.dags(), "--json"]);
    let v = json(&o);
    assert_eq!(v["tasks"]["wait"]["state"], "success", "{v}\n{}", err(&o));
    assert_eq!(
        v["tasks"]["wait"]["try_number"], 1,
        "reschedules keep the try number"
    );
    assert_eq!(v["tasks"]["after"]["state"], "success");
    assert_eq!(v["tasks"]["never"]["state"], "skipped", "soft_fail");
    assert_eq!(v["tasks"]["skipped_after"]["state"], "skipped");
    let pokes = json(&e.run(&["dag", "logs", "sense", "wait", "--json"]));
    assert!(
        pokes[0]["entries"].as_array().unwrap().len() >= 2,
        "several pokes logged: {pokes}"
    );
}
on_both_backends!(sensors_reschedule_until_the_file_appears_and_soft_fail_on_timeout);

fn file_arrival_trigger_starts_one_run_per_file_and_survives_restart(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    std::fs::create_dir_all(e.work.join("incoming")).unwrap();
    e.dag(
        "arrive.yaml",
        "arrive:\n  schedule: null\n  trigger:\n    path: ../incoming\n    glob: '*.csv'\n    poll_interval: 0.1\n  tasks:\n    load:\n      operator: echo\n      file: '{{ dag_run.conf.file.name }}'\n",
    );
    std::fs::write(e.work.join("incoming/one.csv"), "x").unwrap();
    std::fs::write(e.work.join("incoming/skip.txt"), "x").unwrap();
    let o = e.run(&[
        "dag",
        "scheduler",
        "--dags",
        &e.dags(),
        "--exit-when-idle",
        "--dags-paused-at-creation",
        "false",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let runs = json(&e.run(&["dag", "runs", "arrive", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["run_type"], "file_trigger");
    assert_eq!(runs[0]["state"], "success");
    // Restart: the file was seen already; a new file triggers again.
    let o = e.run(&[
        "dag",
        "scheduler",
        "--dags",
        &e.dags(),
        "--exit-when-idle",
        "--dags-paused-at-creation",
        "false",
    ]);
    assert!(o.status.success());
    assert_eq!(
        json(&e.run(&["dag", "runs", "arrive", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    std::fs::write(e.work.join("incoming/two.csv"), "y").unwrap();
    e.run(&[
        "dag",
        "scheduler",
        "--dags",
        &e.dags(),
        "--exit-when-idle",
        "--dags-paused-at-creation",
        "false",
    ]);
    assert_eq!(
        json(&e.run(&["dag", "runs", "arrive", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
on_both_backends!(file_arrival_trigger_starts_one_run_per_file_and_survives_restart);

fn variables_and_connections_are_private_and_granted(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    assert!(e
        .run(&["variables", "set", "region", "eu-west-1"])
        .status
        .success());
    assert!(e
        .run(&["variables", "set", "limits", r#"{"max": 5}"#])
        .status
        .success());
    assert!(e
        .run(&[
            "connections",
            "set",
            "wh",
            "postgres://etl:s3cr3t@db.internal:5433/sales"
        ])
        .status
        .success());
    assert_eq!(out(&e.run(&["variables", "get", "region"])), "eu-west-1");
    let list = out(&e.run(&["connections", "list"]));
    assert_eq!(list, "wh");
    assert!(!list.contains("s3cr3t"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(e.home.join("secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
    std::fs::write(
        e.work.join("roles/reader.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":["secret:var/*","secret:conn/wh"]}]}"#,
    )
    .unwrap();
    e.dag(
        "vars.yaml",
        "vars:\n  schedule: null\n  tasks:\n    granted:\n      operator: echo\n      grant: reader\n      region: '{{ var.value.region }}'\n      max: '{{ var.json.limits.max }}'\n      host: '{{ conn.wh.host }}:{{ conn.wh.port }}'\n    denied:\n      operator: echo\n      region: '{{ var.value.region }}'\n",
    );
    let o = e.run(&["dag", "trigger", "vars", "--dags", &e.dags(), "--json"]);
    let v = json(&o);
    assert_eq!(v["tasks"]["granted"]["state"], "success", "{v}");
    assert_eq!(v["tasks"]["granted"]["xcom"]["region"], "eu-west-1");
    assert_eq!(v["tasks"]["granted"]["xcom"]["max"], "5");
    assert_eq!(v["tasks"]["granted"]["xcom"]["host"], "db.internal:5433");
    assert_eq!(v["tasks"]["denied"]["state"], "failed");
    assert!(!err(&o).contains("s3cr3t"));
    assert!(e.run(&["variables", "delete", "region"]).status.success());
    assert_eq!(
        e.run(&["variables", "get", "region"]).status.code(),
        Some(2)
    );
}
on_both_backends!(variables_and_connections_are_private_and_granted);

fn a_paused_dag_creates_no_runs_until_unpaused(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    std::fs::create_dir_all(e.work.join("incoming")).unwrap();
    e.dag(
        "arrive.yaml",
        "arrive:\n  schedule: null\n  trigger:\n    path: ../incoming\n    glob: '*.csv'\n    poll_interval: 0.1\n  tasks:\n    load:\n      operator: echo\n",
    );
    std::fs::write(e.work.join("incoming/one.csv"), "x").unwrap();
    let o = e.run(&["dag", "pause", "arrive"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run(&[
        "dag",
        "scheduler",
        "--dags",
        &e.dags(),
        "--exit-when-idle",
        "--dags-paused-at-creation",
        "false",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let runs = json(&e.run(&["dag", "runs", "arrive", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 0, "paused: {runs}");
    let o = e.run(&["dag", "unpause", "arrive"]);
    assert!(o.status.success(), "{}", err(&o));
    e.run(&[
        "dag",
        "scheduler",
        "--dags",
        &e.dags(),
        "--exit-when-idle",
        "--dags-paused-at-creation",
        "false",
    ]);
    let runs = json(&e.run(&["dag", "runs", "arrive", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 1, "unpaused: {runs}");
    // an id no DAG can have is refused before anything is written
    let o = e.run(&["dag", "pause", "a/b"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
}
on_both_backends!(a_paused_dag_creates_no_runs_until_unpaused);

fn dag_state_tasks_state_mark_and_delete_work_on_the_store(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    e.dag(
        "life.yaml",
        "life:\n  schedule: null\n  tasks:\n    a:\n      operator: echo\n    b:\n      operator: echo\n      dependencies: [a]\n    c:\n      operator: echo\n      dependencies: [b]\n",
    );
    let d = e.dags();
    for (date, conf) in [("2024-03-05", "{}"), ("2024-03-06", r#"{"x":1}"#)] {
        let o = e.run(&[
            "dag", "trigger", "life", "--dags", &d, "--date", date, "--conf", conf,
        ]);
        assert!(o.status.success(), "{}", err(&o));
    }
    // `airflow dags state`: the state, then the conf when there is one
    let o = e.run(&["dag", "state", "life", "2024-03-05"]);
    assert_eq!(
        (o.status.code(), out(&o).as_str()),
        (Some(0), "success"),
        "{}",
        err(&o)
    );
    let o = e.run(&["dag", "state", "life", "2024-03-06"]);
    assert_eq!(out(&o), r#"success, {"x":1}"#, "{}", err(&o));
    let runs = json(&e.run(&["dag", "runs", "life", "--json"]));
    let run1 = runs[0]["run_id"].as_str().unwrap().to_string();
    let v = json(&e.run(&["dag", "state", "life", &run1, "--json"]));
    assert_eq!(
        (v["state"].as_str(), v["run_id"].as_str()),
        (Some("success"), Some(run1.as_str()))
    );
    // `airflow tasks states-for-dag-run`
    let v = json(&e.run(&["dag", "tasks-state", "life", &run1, "--json"]));
    let states: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["task_id"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![("a", "success"), ("b", "success"), ("c", "success")]
    );
    assert!(
        v[0]["start_date"].is_string() && v[0]["end_date"].is_string(),
        "{v}"
    );
    let o = e.run(&["dag", "tasks-state", "life", "2024-03-05"]);
    let text = out(&o);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("dag_id | logical_date")
            && text.contains("| success"),
        "{text}"
    );
    // mark b failed with its downstream: the finished run follows
    let v = json(&e.run(&[
        "dag",
        "mark",
        "life",
        "2024-03-05",
        "b",
        "--state",
        "failed",
        "--downstream",
        "--dags",
        &d,
        "--json",
    ]));
    let marked: Vec<&str> = v["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(marked, vec!["b", "c"], "{v}");
    assert_eq!(
        out(&e.run(&["dag", "state", "life", "2024-03-05"])),
        "failed"
    );
    // a dry run with --past lists b in both runs and changes nothing
    let v = json(&e.run(&[
        "dag",
        "mark",
        "life",
        "2024-03-06",
        "b",
        "--state",
        "skipped",
        "--past",
        "--dry-run",
        "--dags",
        &d,
        "--json",
    ]));
    assert_eq!(v["task_instances"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        out(&e.run(&["dag", "state", "life", "2024-03-06"])),
        r#"success, {"x":1}"#
    );
    // the whole run marked success
    let o = e.run(&[
        "dag",
        "mark",
        "life",
        "2024-03-05",
        "--state",
        "success",
        "--dags",
        &d,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&e.run(&["dag", "state", "life", "2024-03-05"])),
        "success"
    );
    let v = json(&e.run(&["dag", "tasks-state", "life", "2024-03-05", "--json"]));
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "success"),
        "{v}"
    );
    // bad input: exit 2 with a message, nothing written
    for args in [
        vec!["dag", "state", "life", "2024-01-01"],
        vec!["dag", "state", "a/b", "x"],
        vec![
            "dag",
            "mark",
            "life",
            "2024-03-05",
            "nope",
            "--state",
            "failed",
            "--dags",
            &d,
        ],
        vec![
            "dag",
            "mark",
            "life",
            "2024-03-05",
            "a",
            "--state",
            "running",
            "--dags",
            &d,
        ],
        vec![
            "dag",
            "mark",
            "life",
            "2024-03-05",
            "--state",
            "skipped",
            "--dags",
            &d,
        ],
        vec![
            "dag",
            "mark",
            "life",
            "2024-03-05",
            "--state",
            "failed",
            "--downstream",
            "--dags",
            &d,
        ],
        vec!["dag", "delete", "../life", "-y"],
    ] {
        let o = e.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
    assert_eq!(
        out(&e.run(&["dag", "state", "life", "2024-03-05"])),
        "success"
    );
    // delete: asks first; `n` keeps everything, -y removes the DAG's records (the file stays)
    let o = cmd(&e.backend, &e.home, &e.work, &["dag", "delete", "life"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"n\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(
        json(&e.run(&["dag", "runs", "life", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let o = e.run(&["dag", "delete", "life", "-y"]);
    assert_eq!(out(&o), "Removed 2 record(s)", "{}", err(&o));
    assert_eq!(
        json(&e.run(&["dag", "runs", "life", "--json"])),
        serde_json::json!([])
    );
    assert!(e.work.join("dags/life.yaml").exists());
}
on_both_backends!(dag_state_tasks_state_mark_and_delete_work_on_the_store);

fn the_scheduler_starts_new_dags_paused_unless_told_otherwise(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    std::fs::create_dir_all(e.work.join("incoming")).unwrap();
    e.dag(
        "arrive.yaml",
        "arrive:\n  schedule: null\n  trigger:\n    path: ../incoming\n    glob: '*.csv'\n    poll_interval: 0.1\n  tasks:\n    load:\n      operator: echo\n",
    );
    std::fs::write(e.work.join("incoming/one.csv"), "x").unwrap();
    let runs = |e: &Env| {
        json(&e.run(&["dag", "runs", "arrive", "--json"]))
            .as_array()
            .unwrap()
            .len()
    };
    // Airflow's default: a DAG never unpaused is paused
    let o = e.run(&["dag", "scheduler", "--dags", &e.dags(), "--exit-when-idle"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(runs(&e), 0);
    let o = cmd(
        &e.backend,
        &e.home,
        &e.work,
        &["dag", "scheduler", "--dags", &e.dags(), "--exit-when-idle"],
    )
    .env("WEFT_DAGS_ARE_PAUSED_AT_CREATION", "maybe")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("WEFT_DAGS_ARE_PAUSED_AT_CREATION"),
        "{}",
        err(&o)
    );
    let o = cmd(
        &e.backend,
        &e.home,
        &e.work,
        &["dag", "scheduler", "--dags", &e.dags(), "--exit-when-idle"],
    )
    .env("WEFT_DAGS_ARE_PAUSED_AT_CREATION", "false")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(runs(&e), 1);
}
on_both_backends!(the_scheduler_starts_new_dags_paused_unless_told_otherwise);

fn validate_warns_of_fields_weft_accepts_and_does_not_act_on(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    e.dag(
        "lax.yaml",
        "lax:\n  schedule: null\n  fail_fast: true\n  tasks:\n    a:\n      operator: echo\n      executor_config: {pod: x}\n",
    );
    let f = e.work.join("dags/lax.yaml");
    let o = e.run(&["dag", "validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("warning: line 3: `fail_fast` is accepted and not acted on")
            && err(&o).contains("line 7: `lax.tasks.a.executor_config`"),
        "{}",
        err(&o)
    );
    let v = json(&e.run(&["dag", "validate", f.to_str().unwrap(), "--json"]));
    let w = v["dags"][0]["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{v}");
    assert_eq!(v["errors"], serde_json::json!([]));
}
on_both_backends!(validate_warns_of_fields_weft_accepts_and_does_not_act_on);

fn a_cron_schedule_follows_airflows_create_cron_data_intervals(backend: &Backend) {
    let e = Env::new(backend, &["echo"]);
    e.dag(
        "ctx.yaml",
        "ctx:\n  schedule: '30 2 * * *'\n  start_date: 2024-01-01\n  tasks:\n    a:\n      operator: echo\n      interval: '{{ logical_date }} {{ data_interval_start }} {{ data_interval_end }}'\n",
    );
    let test = |env: Option<&str>| {
        let mut c = cmd(
            &e.backend,
            &e.home,
            &e.work,
            &[
                "dag",
                "test",
                "ctx",
                "2024-03-05",
                "--dags",
                &e.dags(),
                "--json",
            ],
        );
        match env {
            Some(v) => c.env("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", v),
            None => c.env_remove("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS"),
        };
        c.output().unwrap()
    };
    let interval = |o: &Output| json(o)["tasks"]["a"]["xcom"]["interval"].clone();
    let airflow2 = "2024-03-05T00:00:00+00:00 2024-03-03T02:30:00+00:00 2024-03-04T02:30:00+00:00";
    let airflow3 = "2024-03-05T00:00:00+00:00 2024-03-05T00:00:00+00:00 2024-03-05T00:00:00+00:00";
    assert_eq!(interval(&test(None)), airflow2);
    assert_eq!(interval(&test(Some("False"))), airflow3);
    assert_eq!(interval(&test(Some("true"))), airflow2);
    // the folder's weft.yaml sets it; the environment overrides it, as it overrides airflow.cfg
    std::fs::write(
        e.work.join("dags/weft.yaml"),
        "scheduler:\n  create_cron_data_intervals: false\n",
    )
    .unwrap();
    assert_eq!(interval(&test(None)), airflow3);
    assert_eq!(interval(&test(Some("1"))), airflow2);
    // a value that is not one of Airflow's booleans stops the command, naming the variable
    let o = test(Some("yes please"));
    assert!(!o.status.success());
    let msg = format!("{}{}", out(&o), err(&o));
    assert!(
        msg.contains("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS")
            && msg.contains("not a boolean"),
        "{msg}"
    );
}
on_both_backends!(a_cron_schedule_follows_airflows_create_cron_data_intervals);
