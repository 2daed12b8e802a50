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
