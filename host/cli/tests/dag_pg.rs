//! `weft dag` commands with `WEFT_DB`: the scheduler's state goes to PostgreSQL (a fresh
//! database in the cluster named by `$WEFT_TEST_PG`, or in one `scripts/pg.sh` starts for this
//! test process and stops after it), and a wrong or unreachable URL is a usage error that
//! names host, port and the driver's reason.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn weft(home: &Path, db: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
    c.args(args)
        .env("WEFT_HOME", home)
        .env_remove("WEFT_DAGS")
        .current_dir(repo());
    match db {
        Some(u) => c.env("WEFT_DB", u),
        None => c.env_remove("WEFT_DB"),
    };
    c.output().unwrap()
}

fn psql(url: &str, sql: &str) {
    let o = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn dag_runs_go_to_the_database_named_by_weft_db() {
    let Some(admin) = pg_cluster() else { return };
    // (a name made here from digits: identifiers cannot be bound parameters)
    let name = format!("weft_cli_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let o = weft(
        &home,
        None,
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dags = tmp.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::write(
        dags.join("pg.dag.yaml"),
        "pg_dag:\n  schedule: null\n  tasks:\n    a:\n      operator: echo\n    b:\n      operator: echo\n      dependencies: [a]\n",
    )
    .unwrap();
    let dags = dags.display().to_string();
    let g = weft(
        &home,
        Some(&url),
        &[
            "dag",
            "trigger",
            "pg_dag",
            "--date",
            "2024-03-05",
            "--dags",
            &dags,
            "--json",
        ],
    );
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let runs = |db: Option<&str>| -> Value {
        let o = weft(&home, db, &["dag", "runs", "pg_dag", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let on_pg = runs(Some(&url));
    assert_eq!(on_pg.as_array().unwrap().len(), 1, "{on_pg}");
    assert_eq!(on_pg[0]["state"], "success");
    assert_eq!(on_pg[0]["tasks"]["b"]["state"], "success");
    assert_eq!(
        runs(None),
        serde_json::json!([]),
        "nothing went to the local sled store"
    );
    // the same logical date again is refused by the database
    let again = weft(
        &home,
        Some(&url),
        &[
            "dag",
            "trigger",
            "pg_dag",
            "--date",
            "2024-03-05",
            "--dags",
            &dags,
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has logical date"));
    psql(&admin, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

#[test]
fn an_unreachable_weft_db_names_host_port_and_reason() {
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("postgres://weft:hunter2@127.0.0.1:{port}/weft");
    let o = weft(tmp.path(), Some(&url), &["dag", "runs", "x"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.to_lowercase().contains("refused"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// Kills a child process when dropped (a failed assertion must not leave schedulers behind).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two `weft dag scheduler` processes on one database and one DAG folder with catchup: every
/// logical date runs once, and `weft dag trigger` beside them has its run run by the DAG's
/// owner. Each process has its own `WEFT_HOME` (its plugins), as on separate hosts.
#[test]
fn two_schedulers_on_one_database_run_each_logical_date_once() {
    let Some(admin) = pg_cluster() else { return };
    let name = format!("weft_cli_ha_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let tmp = tempfile::tempdir().unwrap();
    let homes: Vec<std::path::PathBuf> = ["cli", "node1", "node2"]
        .iter()
        .map(|h| tmp.path().join(h))
        .collect();
    for h in &homes {
        let o = weft(
            h,
            None,
            &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let home = &homes[0];
    let dags = tmp.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    let start = (chrono::Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%d");
    for id in ["ha_a", "ha_b"] {
        std::fs::write(
            dags.join(format!("{id}.dag.yaml")),
            format!("{id}:\n  schedule: '@daily'\n  start_date: {start}\n  catchup: true\n  max_active_runs: 2\n  tasks:\n    a:\n      operator: echo\n      pool: one\n    b:\n      operator: echo\n      dependencies: [a]\n"),
        )
        .unwrap();
    }
    std::fs::write(dags.join("pools.json"), r#"{"one": 1}"#).unwrap();
    let dags = dags.display().to_string();
    let scheduler = |home: &Path| {
        Killed(
            Command::new(env!("CARGO_BIN_EXE_weft"))
                .args([
                    "dag",
                    "scheduler",
                    "--dags",
                    &dags,
                    "--dags-paused-at-creation",
                    "false",
                ])
                .env("WEFT_HOME", home)
                .env("WEFT_DB", &url)
                .env_remove("WEFT_DAGS")
                .current_dir(repo())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let (_s1, _s2) = (scheduler(&homes[1]), scheduler(&homes[2]));
    let runs = |dag: &str| -> Vec<Value> {
        let o = weft(home, Some(&url), &["dag", "runs", dag, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    // a run triggered beside the schedulers: the DAG's owner runs it
    let t = weft(
        home,
        Some(&url),
        &["dag", "trigger", "ha_a", "--dags", &dags, "--json"],
    );
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let t0 = std::time::Instant::now();
    let done = |r: &[Value]| {
        r.iter().filter(|r| r["run_type"] == "scheduled").count() >= 10
            && r.iter()
                .all(|r| r["state"] == "success" || r["state"] == "failed")
    };
    while !(done(&runs("ha_a")) && done(&runs("ha_b"))) {
        assert!(t0.elapsed().as_secs() < 180, "the runs never finished");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    for dag in ["ha_a", "ha_b"] {
        let r = runs(dag);
        let scheduled: Vec<&Value> = r.iter().filter(|r| r["run_type"] == "scheduled").collect();
        assert_eq!(
            scheduled.len(),
            10,
            "{dag}: one run per logical date: {r:?}"
        );
        let dates: std::collections::HashSet<&str> = scheduled
            .iter()
            .map(|r| r["logical_date"].as_str().unwrap())
            .collect();
        assert_eq!(dates.len(), 10);
        for run in &r {
            assert_eq!(run["state"], "success", "{run}");
            for task in ["a", "b"] {
                assert_eq!(run["tasks"][task]["try_number"], 1, "{run}");
            }
        }
    }
    assert_eq!(
        runs("ha_a")
            .iter()
            .filter(|r| r["run_type"] == "manual")
            .count(),
        1
    );
    drop((_s1, _s2));
    psql(&admin, &format!("DROP DATABASE {name} WITH (FORCE)"));
}
