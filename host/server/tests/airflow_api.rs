//! Airflow's REST API (`/api/v2`) over real HTTP: the user's side (pause, trigger with conf,
//! marking running task instances and runs (their tries are stopped), notes, 409 on a taken
//! run id, variables and connections with secrets redacted, Airflow's error
//! shapes, `POST /auth/token`) and the attacker's (a principal allowed some DAGs cannot see or
//! act on others through any route, `~` wildcards and list filters included; `order_by`
//! injection and unknown fields are refused; `limit` is capped; `conf` is capped; malformed
//! bodies are 422 in Airflow's shape).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use weft_server::auth::{Principal, Tokens};

mod common;

type Srv = common::Server;

/// Everything on the `dev-*` DAGs, and variables/connections named `dev_*`.
const DEV: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["dags:*"], "Resource": ["weft:dag:dev-*"]},
    {"Effect": "Allow", "Action": ["variables:*", "connections:*"],
     "Resource": ["weft:variable:dev_*", "weft:connection:dev_*"]}]}"#;

fn principal(name: &str, secret: &str, policy: Option<&str>) -> (String, Principal) {
    (
        name.to_uppercase(),
        Principal {
            name: name.into(),
            access_key_id: name.to_uppercase(),
            secret: secret.into(),
            policy: policy.map(|p| Arc::new(weft_sandbox::Policy::parse(p).unwrap())),
        },
    )
}

/// A server with DAGs `dev-pipe` and `prod-pipe` (their operator is registered but never run
/// to success here: these tests look at records, not at task results).
async fn start() -> Srv {
    let pipe = |id: &str| {
        format!(
            "{id}:
  schedule: null
  start_date: 2024-01-01
  tags: [team]
  tasks:
    a:
      operator: echo
    b:
      operator: echo
      dependencies: [a]
"
        )
    };
    let dags = [
        ("dev-pipe.yaml", pipe("dev-pipe")),
        ("prod-pipe.yaml", pipe("prod-pipe")),
        (
            "broken.yaml",
            "broken:
  tasks:
    x:
      operator: not-installed
"
            .to_string(),
        ),
    ];
    let tokens = Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("dev", "dev-secret", Some(DEV)),
    ]));
    common::start_with_dags(Some(tokens), &dags, &["echo"]).await
}

/// One call as `secret`'s principal (`None`: no Authorization header); (status, JSON body).
async fn call(s: &Srv, secret: Option<&str>, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = secret.map(|s| format!("Bearer {s}"));
    let mut hs = Vec::new();
    if let Some(a) = &auth {
        hs.push(("Authorization", a.as_str()));
    }
    if method != "GET" && method != "DELETE" {
        hs.push(("Content-Type", "application/json"));
    }
    let (status, _, text) = common::request(s.addr, method, path, &hs, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn admin(s: &Srv, method: &str, path: &str, body: &str) -> (u16, Value) {
    call(s, Some("admin-secret"), method, path, body).await
}

async fn dev(s: &Srv, method: &str, path: &str, body: &str) -> (u16, Value) {
    call(s, Some("dev-secret"), method, path, body).await
}

fn ids(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no `{list}` in {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_pause_and_runs_in_airflows_shapes() {
    let s = start().await;
    let (st, v) = admin(&s, "GET", "/api/v2/dags?order_by=-dag_id", "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v, "dags", "dag_id"), ["prod-pipe", "dev-pipe"]);
    assert_eq!(v["total_entries"], 2);
    // new DAGs start paused, as in Airflow
    assert_eq!(v["dags"][0]["is_paused"], true);
    assert_eq!(v["dags"][0]["tags"][0]["name"], "team");
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/dev-pipe",
        r#"{"is_paused": false}"#,
    )
    .await;
    assert_eq!((st, &v["is_paused"]), (200, &json!(false)), "{v}");
    let (_, v) = admin(&s, "GET", "/api/v2/dags?paused=false", "").await;
    assert_eq!(ids(&v, "dags", "dag_id"), ["dev-pipe"]);
    // the flag is in the scheduler's store, where the scheduler reads it
    let store = s.state.dag_store().unwrap();
    assert_eq!(store.dag_paused("dev-pipe").unwrap(), Some(false));

    let (st, v) = admin(&s, "GET", "/api/v2/dags/dev-pipe/details", "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["catchup"], false);
    let (_, v) = admin(&s, "GET", "/api/v2/dags/dev-pipe/tasks", "").await;
    assert_eq!(ids(&v, "tasks", "task_id"), ["a", "b"]);
    assert_eq!(v["tasks"][0]["downstream_task_ids"], json!(["b"]));

    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/dags/dev-pipe/dagRuns",
        r#"{"dag_run_id": "nightly-1", "logical_date": "2024-03-01T00:00:00Z", "conf": {"day": 1}}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["dag_run_id"], "nightly-1");
    assert_eq!(v["state"], "queued");
    assert_eq!(v["run_type"], "manual");
    assert_eq!(v["conf"]["day"], 1);
    assert_eq!(v["logical_date"], "2024-03-01T00:00:00Z");
    // the same run id again: 409 with a detail
    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/dags/dev-pipe/dagRuns",
        r#"{"dag_run_id": "nightly-1", "logical_date": null}"#,
    )
    .await;
    assert_eq!(st, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("nightly-1"), "{v}");
    let (st, v) = admin(&s, "GET", "/api/v2/dags/dev-pipe/dagRuns/nightly-1", "").await;
    assert_eq!((st, v["dag_id"].as_str()), (200, Some("dev-pipe")), "{v}");
    let (st, v) = admin(
        &s,
        "GET",
        "/api/v2/dags/dev-pipe/dagRuns?logical_date_gte=2024-02-01T00:00:00Z&state=queued&state=running&state=failed&state=success",
        "",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v, "dag_runs", "dag_run_id"), ["nightly-1"]);
    let (_, v) = admin(
        &s,
        "GET",
        "/api/v2/dags/dev-pipe/dagRuns?logical_date_lt=2024-02-01T00:00:00Z",
        "",
    )
    .await;
    assert_eq!(v["total_entries"], 0, "{v}");
    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/dags/dev-pipe/dagRuns",
        r#"{"dag_run_id": "nightly-0", "logical_date": "2024-02-15T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    for (order, want) in [
        ("logical_date", ["nightly-0", "nightly-1"]),
        ("-logical_date", ["nightly-1", "nightly-0"]),
        ("-run_id", ["nightly-1", "nightly-0"]),
        ("id", ["nightly-1", "nightly-0"]),
    ] {
        let (_, v) = admin(
            &s,
            "GET",
            &format!("/api/v2/dags/dev-pipe/dagRuns?order_by={order}"),
            "",
        )
        .await;
        assert_eq!(ids(&v, "dag_runs", "dag_run_id"), want, "{order}");
    }
    let (_, v) = admin(
        &s,
        "GET",
        "/api/v2/dags/dev-pipe/dagRuns?limit=1&offset=1&order_by=logical_date",
        "",
    )
    .await;
    assert_eq!(ids(&v, "dag_runs", "dag_run_id"), ["nightly-1"]);
    assert_eq!(v["total_entries"], 2);

    // a task instance by map index (`-1`: not mapped), next to the static sub-routes
    let store = s.state.dag_store().unwrap();
    let ti = |task: &str| weft_engine::scheduler::StoredTi {
        ti: weft_dag::TiRecord {
            task_id: task.into(),
            map_index: -1,
            state: weft_dag::TiState::Success,
            try_number: 1,
            tries_before_clear: 0,
            duration_s: 0.0,
            wait_until: 0.0,
            first_poke_at: None,
            pokes: 0,
            xcom: json!({"rows": 3}),
            error: None,
            mapped_args: Default::default(),
            note: None,
            xcoms: Default::default(),
        },
        start_date: Some(1.0),
        end_date: Some(2.0),
        hostname: None,
    };
    // a finished run written straight to the store (the scheduler leaves finished runs alone)
    let mut done = store.get_run("dev-pipe", "nightly-0").unwrap().unwrap();
    done.run_id = "done-1".into();
    done.logical_date -= chrono::Duration::days(30);
    done.state = "success".into();
    store.insert_run(&done).unwrap();
    store
        .write_tis("dev-pipe", "done-1", &[], &[ti("a")])
        .unwrap();
    let base = "/api/v2/dags/dev-pipe/dagRuns/done-1/taskInstances";
    let (st, v) = admin(&s, "GET", &format!("{base}/a/-1"), "").await;
    assert_eq!((st, &v["state"]), (200, &json!("success")), "{v}");
    let (st, v) = admin(&s, "GET", &format!("{base}/a/xcomEntries"), "").await;
    assert_eq!((st, &v["total_entries"]), (200, &json!(1)), "{v}");
    let (st, _) = admin(&s, "GET", &format!("{base}/a/0"), "").await;
    assert_eq!(st, 404);
    let (st, v) = admin(&s, "GET", &format!("{base}/a/minus-two"), "").await;
    assert_eq!(st, 422, "{v}");

    // errors in Airflow's shapes
    let (st, v) = admin(&s, "GET", "/api/v2/dags/nope", "").await;
    assert_eq!(st, 404);
    assert!(v["detail"].as_str().unwrap().contains("nope"), "{v}");
    let (st, v) = admin(&s, "GET", "/api/v2/dags/dev-pipe/dagRuns/nope", "").await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = call(&s, None, "GET", "/api/v2/dags", "").await;
    assert_eq!(st, 401, "{v}");
    assert!(v["detail"].is_string(), "{v}");
    let (st, v) = admin(&s, "GET", "/api/v2/importErrors", "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total_entries"], 1, "{v}");
    assert!(v["import_errors"][0]["filename"]
        .as_str()
        .unwrap()
        .ends_with("broken.yaml"));
    let (st, v) = call(&s, None, "GET", "/api/v2/version", "").await;
    assert_eq!((st, v["version"].as_str().is_some()), (200, true), "{v}");
    let (st, v) = call(&s, None, "GET", "/api/v2/monitor/health", "").await;
    assert_eq!((st, &v["metadatabase"]["status"]), (200, &json!("healthy")));
    let (st, v) = admin(&s, "GET", "/api/v2/pools", "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v, "pools", "name"), ["default_pool"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_come_from_weft_credentials() {
    let s = start().await;
    let (st, v) = call(
        &s,
        None,
        "POST",
        "/auth/token",
        r#"{"username": "DEV", "password": "dev-secret"}"#,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    let (st, _) = call(&s, Some(&token), "GET", "/api/v2/dags", "").await;
    assert_eq!(st, 200);
    // another principal's name with this secret, a wrong secret, a missing field
    for body in [
        r#"{"username": "ADMIN", "password": "dev-secret"}"#,
        r#"{"username": "DEV", "password": "admin"}"#,
    ] {
        let (st, v) = call(&s, None, "POST", "/auth/token", body).await;
        assert_eq!(st, 401, "{body}: {v}");
        assert!(v.get("access_token").is_none());
    }
    let (st, v) = call(&s, None, "POST", "/auth/token", r#"{"username": "DEV"}"#).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "password"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_sees_and_acts_only_on_its_dags_through_every_route() {
    let s = start().await;
    for dag in ["dev-pipe", "prod-pipe"] {
        let (st, v) = admin(
            &s,
            "POST",
            &format!("/api/v2/dags/{dag}/dagRuns"),
            r#"{"dag_run_id": "shared-id", "logical_date": "2024-01-05T00:00:00Z"}"#,
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    let (_, v) = dev(&s, "GET", "/api/v2/dags", "").await;
    assert_eq!(ids(&v, "dags", "dag_id"), ["dev-pipe"]);
    assert_eq!(v["total_entries"], 1);
    let (_, v) = dev(&s, "GET", "/api/v2/dags?dag_id_pattern=prod", "").await;
    assert_eq!(v["total_entries"], 0, "{v}");
    // every route on the other DAG is refused
    for (method, path, body) in [
        ("GET", "/api/v2/dags/prod-pipe", ""),
        ("GET", "/api/v2/dags/prod-pipe/details", ""),
        ("GET", "/api/v2/dags/prod-pipe/tasks", ""),
        ("GET", "/api/v2/dags/prod-pipe/tasks/a", ""),
        ("PATCH", "/api/v2/dags/prod-pipe", r#"{"is_paused": false}"#),
        ("GET", "/api/v2/dags/prod-pipe/dagRuns", ""),
        (
            "POST",
            "/api/v2/dags/prod-pipe/dagRuns",
            r#"{"logical_date": null}"#,
        ),
        ("GET", "/api/v2/dags/prod-pipe/dagRuns/shared-id", ""),
        (
            "PATCH",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id",
            r#"{"state": "failed"}"#,
        ),
        ("DELETE", "/api/v2/dags/prod-pipe/dagRuns/shared-id", ""),
        (
            "POST",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/clear",
            r#"{"dry_run": true}"#,
        ),
        (
            "POST",
            "/api/v2/dags/prod-pipe/clearTaskInstances",
            r#"{"dry_run": true}"#,
        ),
        (
            "GET",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances",
            "",
        ),
        ("GET", "/api/v2/dags/prod-pipe/dagRuns/~/taskInstances", ""),
        (
            "GET",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a",
            "",
        ),
        (
            "PATCH",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a",
            r#"{"new_state": "success"}"#,
        ),
        (
            "PATCH",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a/dry_run",
            r#"{"new_state": "failed"}"#,
        ),
        (
            "PATCH",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a?update_mask=note",
            r#"{"note": "mine now"}"#,
        ),
        (
            "PATCH",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id?update_mask=note",
            r#"{"note": "mine now"}"#,
        ),
        ("DELETE", "/api/v2/dags/prod-pipe", ""),
        (
            "GET",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a/logs/1",
            "",
        ),
        (
            "GET",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a/xcomEntries",
            "",
        ),
        (
            "GET",
            "/api/v2/dags/prod-pipe/dagRuns/shared-id/taskInstances/a/xcomEntries/return_value",
            "",
        ),
        ("GET", "/api/v2/importErrors", ""),
    ] {
        let (st, v) = dev(&s, method, path, body).await;
        assert_eq!(st, 403, "{method} {path}: {v}");
        assert!(v["detail"].is_string(), "{method} {path}: {v}");
    }
    // `~` lists keep only the caller's DAGs, also when a filter names the other DAG's run
    let (st, v) = dev(&s, "GET", "/api/v2/dags/~/dagRuns", "").await;
    assert_eq!(st, 200, "{v}");
    let dags: Vec<String> = ids(&v, "dag_runs", "dag_id");
    assert_eq!(dags, ["dev-pipe"], "{v}");
    let (_, v) = dev(&s, "GET", "/api/v2/dags/~/dagRuns?dag_id_pattern=prod", "").await;
    assert_eq!(v["total_entries"], 0, "{v}");
    let (_, v) = admin(&s, "GET", "/api/v2/dags/~/dagRuns", "").await;
    assert_eq!(v["total_entries"], 2, "the admin sees both: {v}");
    for path in [
        "/api/v2/dags/~/dagRuns/~/taskInstances",
        "/api/v2/dags/~/dagRuns/shared-id/taskInstances",
        "/api/v2/dags/~/dagRuns/shared-id/taskInstances?dag_id_pattern=prod-pipe",
    ] {
        let (st, v) = dev(&s, "GET", path, "").await;
        assert_eq!(st, 200, "{path}: {v}");
        assert!(
            v["task_instances"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["dag_id"] == "dev-pipe"),
            "{path}: {v}"
        );
    }
    // marking the caller's own run of the same id changes that DAG's run only, also through
    // a path that tries to climb into the other DAG
    let (st, v) = dev(
        &s,
        "PATCH",
        "/api/v2/dags/dev-pipe/dagRuns/shared-id/taskInstances/a",
        r#"{"new_state": "success"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task_instances"][0]["dag_id"], "dev-pipe", "{v}");
    for path in [
        "/api/v2/dags/dev-pipe%2F..%2Fprod-pipe/dagRuns/shared-id/taskInstances/a",
        "/api/v2/dags/dev-pipe/../prod-pipe/dagRuns/shared-id/taskInstances/a",
        "/api/v2/dags/dev-pipe/dagRuns/..%2F..%2Fprod-pipe%2FdagRuns%2Fshared-id/taskInstances/a",
    ] {
        let (st, v) = dev(&s, "PATCH", path, r#"{"new_state": "failed"}"#).await;
        assert!(matches!(st, 403 | 404 | 422), "{path}: {st} {v}");
    }
    // the prod run is untouched
    let store = s.state.dag_store().unwrap();
    assert!(store.get_run("prod-pipe", "shared-id").unwrap().is_some());
    assert!(store.tis_of("prod-pipe", "shared-id").unwrap().is_empty());
    assert_eq!(
        store
            .get_run("prod-pipe", "shared-id")
            .unwrap()
            .unwrap()
            .note,
        None
    );
    assert_eq!(store.dag_paused("prod-pipe").unwrap(), None);
    // variables and connections: only `dev_*`
    let (st, _) = admin(
        &s,
        "POST",
        "/api/v2/variables",
        r#"{"key": "prod_db", "value": "x"}"#,
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = dev(
        &s,
        "POST",
        "/api/v2/variables",
        r#"{"key": "dev_db", "value": "y"}"#,
    )
    .await;
    assert_eq!(st, 201);
    let (_, v) = dev(&s, "GET", "/api/v2/variables", "").await;
    assert_eq!(ids(&v, "variables", "key"), ["dev_db"]);
    for (method, path, body) in [
        ("GET", "/api/v2/variables/prod_db", ""),
        ("GET", "/api/v2/variables/PROD_DB", ""),
        (
            "PATCH",
            "/api/v2/variables/prod_db",
            r#"{"key": "prod_db", "value": "z"}"#,
        ),
        ("DELETE", "/api/v2/variables/prod_db", ""),
        (
            "POST",
            "/api/v2/variables",
            r#"{"key": "prod_other", "value": "z"}"#,
        ),
        (
            "POST",
            "/api/v2/connections",
            r#"{"connection_id": "prod_pg", "conn_type": "postgres"}"#,
        ),
    ] {
        let (st, v) = dev(&s, method, path, body).await;
        assert_eq!(st, 403, "{method} {path}: {v}");
    }
    let (_, v) = admin(&s, "GET", "/api/v2/variables/prod_db", "").await;
    assert_eq!(v["value"], "x", "the denied patch changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_and_bodies_are_refused_in_airflows_shape() {
    let s = start().await;
    for q in [
        "order_by=conf",
        "order_by=state%3BDROP%20TABLE%20dag_run",
        "order_by=__class__",
        "order_by=a,b,c,d,e,f",
    ] {
        let (st, v) = admin(&s, "GET", &format!("/api/v2/dags/dev-pipe/dagRuns?{q}"), "").await;
        assert_eq!(st, 400, "{q}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains("disallowed") || q.contains(','),
            "{q}: {v}"
        );
    }
    for q in [
        "limit=-1",
        "limit=ten",
        "offset=1e3",
        "logical_date_gte=yesterday",
        "state=done",
    ] {
        let (st, v) = admin(&s, "GET", &format!("/api/v2/dags/dev-pipe/dagRuns?{q}"), "").await;
        assert_eq!(st, 422, "{q}: {v}");
        assert_eq!(v["detail"][0]["loc"][0], "query", "{q}: {v}");
    }
    // a huge limit is capped to 100
    for i in 0..105 {
        let (st, v) = admin(
            &s,
            "POST",
            "/api/v2/variables",
            &format!(r#"{{"key": "v{i:03}", "value": "{i}"}}"#),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let (_, v) = admin(&s, "GET", "/api/v2/variables?limit=1000000000", "").await;
    assert_eq!(v["variables"].as_array().unwrap().len(), 100);
    assert_eq!(v["total_entries"], 105);
    let (_, v) = admin(
        &s,
        "GET",
        "/api/v2/variables?limit=10&offset=100&order_by=-key",
        "",
    )
    .await;
    assert_eq!(
        ids(&v, "variables", "key"),
        ["v004", "v003", "v002", "v001", "v000"]
    );

    // bodies
    let big = format!(r#"{{"conf": {{"x": "{}"}}}}"#, "a".repeat(70 * 1024));
    for (path, body, loc) in [
        ("/api/v2/dags/dev-pipe/dagRuns", "not json", json!(["body"])),
        ("/api/v2/dags/dev-pipe/dagRuns", "[1]", json!(["body"])),
        (
            "/api/v2/dags/dev-pipe/dagRuns",
            r#"{"conf": 5}"#,
            json!(["body", "conf"]),
        ),
        (
            "/api/v2/dags/dev-pipe/dagRuns",
            &big,
            json!(["body", "conf"]),
        ),
        (
            "/api/v2/dags/dev-pipe/dagRuns",
            r#"{"dag_run_id": "a/../b"}"#,
            json!(["body", "dag_run_id"]),
        ),
        (
            "/api/v2/dags/dev-pipe/dagRuns",
            r#"{"logical_date": "soon"}"#,
            json!(["body", "logical_date"]),
        ),
        (
            "/api/v2/dags/dev-pipe/dagRuns",
            r#"{"unknown": 1}"#,
            json!(["body", "unknown"]),
        ),
        (
            "/api/v2/variables",
            r#"{"key": "k"}"#,
            json!(["body", "value"]),
        ),
        (
            "/api/v2/connections",
            r#"{"connection_id": "c", "conn_type": "x", "port": 70000}"#,
            json!(["body", "port"]),
        ),
    ] {
        let (st, v) = admin(&s, "POST", path, body).await;
        assert_eq!(st, 422, "{path} {}: {v}", &body[..body.len().min(60)]);
        assert_eq!(v["detail"][0]["loc"], loc, "{v}");
        assert!(v["detail"][0]["msg"].is_string(), "{v}");
    }
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/dev-pipe",
        r#"{"is_paused": "yes"}"#,
    )
    .await;
    assert_eq!(st, 422, "{v}");
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/dev-pipe?update_mask=fileloc",
        r#"{"is_paused": true}"#,
    )
    .await;
    assert_eq!(st, 400, "{v}");
    // a DAG id outside Airflow's alphabet is simply not found
    let (st, _) = admin(&s, "GET", "/api/v2/dags/a%2F..%2Fb", "").await;
    assert_eq!(st, 404);
    // no run can be deleted while the scheduler owns it; marking it ends it
    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/dags/prod-pipe/dagRuns",
        r#"{"dag_run_id": "r1", "logical_date": "2030-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let store = s.state.dag_store().unwrap();
    let mut rec = store.get_run("prod-pipe", "r1").unwrap().unwrap();
    rec.state = "running".into();
    store.put_run(&rec).unwrap();
    let (st, v) = admin(&s, "DELETE", "/api/v2/dags/prod-pipe/dagRuns/r1", "").await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/prod-pipe/dagRuns/r1",
        r#"{"state": "success"}"#,
    )
    .await;
    assert_eq!((st, &v["state"]), (200, &json!("success")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_secrets_are_never_returned() {
    let s = start().await;
    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/connections",
        r#"{"connection_id": "warehouse", "conn_type": "postgres", "host": "db", "login": "etl",
            "password": "hunter2", "port": 5432,
            "extra": "{\"sslmode\": \"require\", \"private_key\": \"PEM\", \"nested\": {\"token\": \"t0k\"}}"}"#,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    for path in ["/api/v2/connections/warehouse", "/api/v2/connections"] {
        let (_, v) = admin(&s, "GET", path, "").await;
        let text = v.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("PEM") && !text.contains("t0k"),
            "{path}: {text}"
        );
        assert!(text.contains("require"), "{text}");
    }
    let (_, v) = admin(&s, "GET", "/api/v2/connections/warehouse", "").await;
    assert_eq!(v["password"], "***");
    // sending the mask back keeps the password; the stored value is intact
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/connections/warehouse?update_mask=host&update_mask=password",
        r#"{"connection_id": "warehouse", "conn_type": "postgres", "host": "db2", "password": "***"}"#,
    )
    .await;
    assert_eq!((st, &v["host"]), (200, &json!("db2")), "{v}");
    let file = weft_engine::variables::SecretsFile::new(s.state.store.home());
    let stored = file
        .get(weft_engine::variables::Kind::Connection, "warehouse")
        .unwrap()
        .unwrap();
    assert!(stored.contains("hunter2"), "{stored}");
    let (st, _) = admin(&s, "DELETE", "/api/v2/connections/warehouse", "").await;
    assert_eq!(st, 204);
    let (st, _) = admin(&s, "GET", "/api/v2/connections/warehouse", "").await;
    assert_eq!(st, 404);
}

/// Figures, not a test of speed: `GET /api/v2/dags/{id}/dagRuns` over 10,000 finished runs of
/// one DAG (a page of 100, newest first; and a filtered page). Run with
/// `cargo test --workspace --test airflow_api -- --ignored --nocapture list_runs_figures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn list_runs_figures() {
    let s = start().await;
    let store = s.state.dag_store().unwrap();
    let t0 = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    for i in 0..10_000i64 {
        let d = t0 + chrono::Duration::hours(i);
        store
            .insert_run(&weft_engine::scheduler::DagRunRecord {
                dag_id: "dev-pipe".into(),
                run_id: format!("scheduled__{i:05}"),
                run_type: "scheduled".into(),
                logical_date: d,
                data_interval_start: d,
                data_interval_end: d + chrono::Duration::hours(1),
                state: if i % 10 == 0 { "failed" } else { "success" }.into(),
                conf: Default::default(),
                queued_at: d,
                start_date: Some(d),
                end_date: Some(d + chrono::Duration::minutes(5)),
                note: None,
            })
            .unwrap();
    }
    store.flush().unwrap();
    for (what, path) in [
        (
            "page of 100, -logical_date",
            "/api/v2/dags/dev-pipe/dagRuns?limit=100&order_by=-logical_date",
        ),
        (
            "state=failed, logical_date_gte, page of 100",
            "/api/v2/dags/dev-pipe/dagRuns?limit=100&state=failed&logical_date_gte=2020-06-01T00:00:00Z",
        ),
        ("~ (every DAG), page of 100", "/api/v2/dags/~/dagRuns?limit=100"),
    ] {
        let mut ms = Vec::new();
        for _ in 0..20 {
            let t = std::time::Instant::now();
            let (st, v) = admin(&s, "GET", path, "").await;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(st, 200, "{v}");
            assert!(v["total_entries"].as_u64().unwrap() > 0);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "list DAG runs, 10,000 runs, {what}: p50 {:.1} ms, p90 {:.1} ms (20 requests, debug build)",
            ms[10], ms[18]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_source_and_delete() {
    let s = start().await;
    let (st, v) = admin(&s, "GET", "/api/v2/dagSources/dev-pipe", "").await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["content"].as_str().unwrap().starts_with("dev-pipe:"),
        "{v}"
    );
    let (st, _) = dev(&s, "GET", "/api/v2/dagSources/prod-pipe", "").await;
    assert_eq!(st, 403);
    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/dags/dev-pipe/dagRuns",
        r#"{"dag_run_id": "d1", "logical_date": "2024-01-02T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/dev-pipe",
        r#"{"is_paused": false}"#,
    )
    .await;
    assert_eq!(st, 200);
    let store = s.state.dag_store().unwrap();
    // the server's scheduler takes d1 to its end first (its operator cannot run here), so
    // that it does not end the run this test marks running below
    for _ in 0..400 {
        let state = store.get_run("dev-pipe", "d1").unwrap().unwrap().state;
        if state == "success" || state == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // a run the scheduler owns holds the delete back
    let mut r = store.get_run("dev-pipe", "d1").unwrap().unwrap();
    r.state = "running".into();
    store.put_run(&r).unwrap();
    let (st, v) = admin(&s, "DELETE", "/api/v2/dags/dev-pipe", "").await;
    assert_eq!(st, 409, "{v}");
    r.state = "failed".into();
    store.put_run(&r).unwrap();
    let (st, _) = dev(&s, "DELETE", "/api/v2/dags/prod-pipe", "").await;
    assert_eq!(st, 403);
    let (st, v) = admin(&s, "DELETE", "/api/v2/dags/dev-pipe", "").await;
    assert_eq!(st, 200, "{v}");
    assert!(store.runs_of("dev-pipe").unwrap().is_empty());
    assert_eq!(store.dag_paused("dev-pipe").unwrap(), None);
    let (st, _) = admin(&s, "DELETE", "/api/v2/dags/never-was", "").await;
    assert_eq!(st, 404);
}

/// Reads `weft:asset:s3://lake/pub*` assets and posts their events; nothing else of assets.
const LAKE_PUB: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["assets:*"], "Resource": ["weft:asset:s3://lake/pub*"]}]}"#;

/// A producer with `outlets`, a consumer scheduled on the same asset spelled differently, and
/// a task whose outlet spells a private asset through a public-looking path.
async fn start_assets() -> Srv {
    let dags = [
        (
            "producer.yaml",
            "producer:
  tasks:
    make:
      operator: echo
      outlets: ['s3://lake/pub/orders', 's3://lake/pub/../private/keys']
"
            .to_string(),
        ),
        (
            "consumer.yaml",
            "consumer:
  is_paused_upon_creation: false
  schedule:
    - __type__: airflow.sdk.Asset
      uri: 'S3://lake//pub/x/../orders/'
  tasks:
    use:
      operator: airflow.operators.empty.EmptyOperator
"
            .to_string(),
        ),
    ];
    let tokens = Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("dev", "dev-secret", Some(DEV)),
        principal("lake", "lake-secret", Some(LAKE_PUB)),
    ]));
    common::start_with_dags(Some(tokens), &dags, &["echo"]).await
}

fn asset_id_of(list: &Value, uri: &str) -> i64 {
    list["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["uri"] == uri)
        .unwrap_or_else(|| panic!("no asset {uri} in {list}"))["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_asset_event_triggers_its_consumer() {
    let s = start_assets().await;
    let (st, list) = admin(&s, "GET", "/api/v2/assets?order_by=uri", "").await;
    assert_eq!(st, 200, "{list}");
    let uris: Vec<&str> = list["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["uri"].as_str().unwrap())
        .collect();
    // one asset per canonical URI, whatever the spelling in the DAG files
    assert_eq!(
        uris,
        ["s3://lake/private/keys", "s3://lake/pub/orders"],
        "{list}"
    );
    let orders = list["assets"][1].clone();
    assert_eq!(orders["producing_tasks"][0]["task_id"], "make", "{orders}");
    assert_eq!(
        orders["scheduled_dags"][0]["dag_id"], "consumer",
        "{orders}"
    );
    let id = orders["id"].as_i64().unwrap();
    let (st, one) = admin(&s, "GET", &format!("/api/v2/assets/{id}"), "").await;
    assert_eq!(
        (st, &one["uri"]),
        (200, &json!("s3://lake/pub/orders")),
        "{one}"
    );

    let body = json!({"asset_id": id, "extra": {"rows": 42}}).to_string();
    let (st, ev) = admin(&s, "POST", "/api/v2/assets/events", &body).await;
    assert_eq!(st, 200, "{ev}");
    assert_eq!(
        ev["extra"],
        json!({"rows": 42, "from_rest_api": true}),
        "{ev}"
    );
    assert_eq!(ev["asset_id"], id, "{ev}");

    // the server's scheduler creates the consumer's run and runs it
    let mut run = Value::Null;
    for _ in 0..600 {
        let (_, runs) = admin(&s, "GET", "/api/v2/dags/consumer/dagRuns", "").await;
        if let Some(r) = runs["dag_runs"].as_array().and_then(|a| a.first()) {
            if r["state"] == "success" {
                run = r.clone();
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(run["run_type"], "asset_triggered", "{run}");
    assert_eq!(run["triggered_by"], "asset", "{run}");
    let (_, q) = admin(&s, "GET", "/api/v2/dags/consumer/assets/queuedEvents", "").await;
    assert_eq!(q["total_entries"], 0, "{q}");

    let (st, evs) = admin(
        &s,
        "GET",
        &format!("/api/v2/assets/events?asset_id={id}&limit=5"),
        "",
    )
    .await;
    assert_eq!(st, 200, "{evs}");
    assert_eq!(evs["total_entries"], 1, "{evs}");
    assert_eq!(
        evs["asset_events"][0]["created_dagruns"][0]["dag_id"], "consumer",
        "{evs}"
    );
    // a posted event came through no alias
    assert_eq!(evs["asset_events"][0]["source_aliases"], json!([]), "{evs}");
    let (_, none) = admin(
        &s,
        "GET",
        "/api/v2/assets/events?source_dag_id=producer",
        "",
    )
    .await;
    assert_eq!(none["total_entries"], 0, "{none}");
    let (st, _) = admin(&s, "GET", "/api/v2/assets/events?order_by=extra", "").await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_authorised_per_canonical_uri() {
    let s = start_assets().await;
    let (_, list) = admin(&s, "GET", "/api/v2/assets", "").await;
    let orders = asset_id_of(&list, "s3://lake/pub/orders");
    let private = asset_id_of(&list, "s3://lake/private/keys");
    let post = |id: i64| json!({"asset_id": id}).to_string();

    // without `assets:` rights: nothing listed, nothing posted, nothing read
    let (st, l) = dev(&s, "GET", "/api/v2/assets", "").await;
    assert_eq!((st, &l["total_entries"]), (200, &json!(0)), "{l}");
    let (st, _) = dev(&s, "POST", "/api/v2/assets/events", &post(orders)).await;
    assert_eq!(st, 403);
    let (st, _) = dev(&s, "GET", &format!("/api/v2/assets/{orders}"), "").await;
    assert_eq!(st, 403);
    admin(&s, "POST", "/api/v2/assets/events", &post(orders)).await;
    let (_, e) = dev(&s, "GET", "/api/v2/assets/events", "").await;
    assert_eq!(e["total_entries"], 0, "{e}");

    // `s3://lake/pub/../private/keys` is the private asset: its public-looking spelling in a
    // DAG file gives no right to it
    let (_, l) = call(&s, Some("lake-secret"), "GET", "/api/v2/assets", "").await;
    let uris: Vec<&str> = l["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["s3://lake/pub/orders"], "{l}");
    let (st, _) = call(
        &s,
        Some("lake-secret"),
        "POST",
        "/api/v2/assets/events",
        &post(private),
    )
    .await;
    assert_eq!(st, 403);
    // an id no asset has is the same 403 for it: which URIs exist cannot be probed
    let (st, _) = call(
        &s,
        Some("lake-secret"),
        "POST",
        "/api/v2/assets/events",
        &post(private ^ 1),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = call(
        &s,
        Some("lake-secret"),
        "GET",
        &format!("/api/v2/assets/{}", private ^ 1),
        "",
    )
    .await;
    assert_eq!(st, 403);
    let (st, ev) = call(
        &s,
        Some("lake-secret"),
        "POST",
        "/api/v2/assets/events",
        &post(orders),
    )
    .await;
    assert_eq!(st, 200, "{ev}");

    // hostile bodies
    let huge = json!({"asset_id": orders, "extra": {"x": "y".repeat(70 * 1024)}}).to_string();
    let (st, e) = admin(&s, "POST", "/api/v2/assets/events", &huge).await;
    assert_eq!(st, 413, "{e}");
    let (st, _) = admin(
        &s,
        "POST",
        "/api/v2/assets/events",
        &json!({"asset_id": 7}).to_string(),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = admin(
        &s,
        "POST",
        "/api/v2/assets/events",
        &json!({"asset_id": orders, "uri": "s3://lake/private/keys"}).to_string(),
    )
    .await;
    assert_eq!(st, 422);
    let (st, _) = admin(
        &s,
        "POST",
        "/api/v2/assets/events",
        &json!({"asset_id": "x"}).to_string(),
    )
    .await;
    assert_eq!(st, 422);
    let (st, _) = admin(&s, "GET", "/api/v2/assets/not-a-number", "").await;
    assert_eq!(st, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_are_listed_and_cleared() {
    let dags = [(
        "held.yaml",
        "held:
  is_paused_upon_creation: true
  schedule: ['s3://lake/pub/held']
  tasks:
    t:
      operator: airflow.operators.empty.EmptyOperator
"
        .to_string(),
    )];
    let tokens = Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("lake", "lake-secret", Some(LAKE_PUB)),
    ]));
    let s = common::start_with_dags(Some(tokens), &dags, &["echo"]).await;
    let (_, list) = admin(&s, "GET", "/api/v2/assets", "").await;
    let id = asset_id_of(&list, "s3://lake/pub/held");
    let body = json!({"asset_id": id}).to_string();
    for _ in 0..2 {
        let (st, _) = admin(&s, "POST", "/api/v2/assets/events", &body).await;
        assert_eq!(st, 200);
    }
    // the DAG is paused: its events wait in its queue (one entry per asset)
    let (st, q) = admin(&s, "GET", "/api/v2/dags/held/assets/queuedEvents", "").await;
    assert_eq!((st, &q["total_entries"]), (200, &json!(1)), "{q}");
    assert_eq!(q["queued_events"][0]["asset_id"], id, "{q}");
    let (st, one) = admin(
        &s,
        "GET",
        &format!("/api/v2/dags/held/assets/{id}/queuedEvents"),
        "",
    )
    .await;
    assert_eq!((st, &one["dag_id"]), (200, &json!("held")), "{one}");
    let (st, by_asset) = admin(&s, "GET", &format!("/api/v2/assets/{id}/queuedEvents"), "").await;
    assert_eq!(st, 200, "{by_asset}");
    assert_eq!(
        by_asset["queued_events"].as_array().unwrap().len(),
        2,
        "{by_asset}"
    );

    // clearing needs the DAG too
    let (st, _) = call(
        &s,
        Some("lake-secret"),
        "DELETE",
        "/api/v2/dags/held/assets/queuedEvents",
        "",
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = admin(&s, "DELETE", "/api/v2/dags/held/assets/queuedEvents", "").await;
    assert_eq!(st, 204);
    let (_, q) = admin(&s, "GET", "/api/v2/dags/held/assets/queuedEvents", "").await;
    assert_eq!(q["total_entries"], 0, "{q}");
    let (st, _) = admin(
        &s,
        "DELETE",
        &format!("/api/v2/assets/{id}/queuedEvents"),
        "",
    )
    .await;
    assert_eq!(st, 404);
    admin(&s, "POST", "/api/v2/assets/events", &body).await;
    let (st, _) = admin(
        &s,
        "DELETE",
        &format!("/api/v2/dags/held/assets/{id}/queuedEvents"),
        "",
    )
    .await;
    assert_eq!(st, 204);
    let (st, _) = admin(
        &s,
        "GET",
        &format!("/api/v2/dags/held/assets/{id}/queuedEvents"),
        "",
    )
    .await;
    assert_eq!(st, 404);
}

/// A server running DAG `watch` for real: two sensors that poke a file that never comes (so
/// their tries run until something stops them) and a task after the first.
async fn start_watching() -> Srv {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().display().to_string();
    for d in ["dags", "roles", "in"] {
        std::fs::create_dir_all(home.path().join(d)).unwrap();
    }
    std::fs::write(
        home.path().join("roles/watch.json"),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["fs:Read"],
            "Resource": [format!("file:{h}/in"), format!("file:{h}/in/*")]}]})
        .to_string(),
    )
    .unwrap();
    let sensor = |id: &str| {
        format!("    {id}:\n      operator: file-sensor\n      grant: watch\n      path: {h}/in/never.flag\n      poke_interval: 0.1\n      timeout: 600\n")
    };
    std::fs::write(
        home.path().join("dags/watch.yaml"),
        format!(
            "watch:\n  schedule: null\n  is_paused_upon_creation: false\n  tasks:\n{}{}    after:\n      operator: echo\n      dependencies: [wait]\n",
            sensor("wait"),
            sensor("side")
        ),
    )
    .unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let dir = std::env::var_os("WEFT_PLUGINS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins")
        });
    for p in ["echo.wasm", "file-sensor.wasm"] {
        weft_plugins::install_path(
            &store.plugin_store(),
            &dir.join(p),
            &weft_plugins::InstallOptions { force: true },
        )
        .unwrap();
    }
    let tokens = Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("dev", "dev-secret", Some(DEV)),
    ]));
    common::serve_state(
        home,
        weft_server::AppState::with_limit(store, Some(tokens), 10).unwrap(),
    )
    .await
}

/// Polls `path` (as the admin) until `f` holds on its JSON (at most a minute).
async fn poll_until(s: &Srv, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        let (_, v) = admin(s, "GET", path, "").await;
        if f(&v) {
            return v;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "never {what}: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_running_work_stops_its_tries_and_notes_are_kept() {
    let s = start_watching().await;
    let (st, v) = admin(
        &s,
        "POST",
        "/api/v2/dags/watch/dagRuns",
        r#"{"dag_run_id": "r1", "logical_date": null, "note": "first try"}"#,
    )
    .await;
    assert_eq!((st, &v["note"]), (200, &json!("first try")), "{v}");
    let ti = "/api/v2/dags/watch/dagRuns/r1/taskInstances";
    poll_until(&s, &format!("{ti}/wait"), "wait running", |v| {
        v["state"] == "running"
    })
    .await;
    // a dry run lists what would change and changes nothing
    let (st, v) = admin(
        &s,
        "PATCH",
        &format!("{ti}/wait/dry_run"),
        r#"{"new_state": "success"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v, "task_instances", "task_id"), ["wait"]);
    let (_, v) = admin(&s, "GET", &format!("{ti}/wait"), "").await;
    assert_eq!(v["state"], "running", "{v}");
    // marked success while it pokes: the try is stopped, its downstream runs
    let (st, v) = admin(
        &s,
        "PATCH",
        &format!("{ti}/wait"),
        r#"{"new_state": "success"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task_instances"][0]["state"], "success", "{v}");
    let after = poll_until(&s, &format!("{ti}/after"), "after ran", |v| {
        v["state"] == "success"
    })
    .await;
    // a try the node ran itself names the node's host
    assert_eq!(
        after["hostname"],
        weft_engine::remote::host_name(),
        "{after}"
    );
    let log = poll_until(
        &s,
        &format!("{ti}/wait/logs/1"),
        "the stopped try's log",
        |v| v.to_string().contains("Weft.Cancelled"),
    )
    .await;
    assert!(log.to_string().contains("Weft.Marked"), "{log}");
    let (_, v) = admin(&s, "GET", &format!("{ti}/wait"), "").await;
    assert_eq!(v["state"], "success", "the late result was discarded: {v}");
    // the run marked failed while `side` pokes: `side` fails, the run ends at once
    poll_until(&s, &format!("{ti}/side"), "side running", |v| {
        v["state"] == "running"
    })
    .await;
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/watch/dagRuns/r1",
        r#"{"state": "failed"}"#,
    )
    .await;
    assert_eq!((st, &v["state"]), (200, &json!("failed")), "{v}");
    let (_, v) = admin(&s, "GET", &format!("{ti}/side"), "").await;
    assert_eq!(v["state"], "failed", "{v}");
    poll_until(
        &s,
        &format!("{ti}/side/logs/1"),
        "side's try stopped",
        |v| v.to_string().contains("Weft.Cancelled"),
    )
    .await;
    // notes, with update_mask; the state stays
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/watch/dagRuns/r1?update_mask=note",
        r#"{"note": "checked", "state": "success"}"#,
    )
    .await;
    assert_eq!(
        (st, &v["note"], &v["state"]),
        (200, &json!("checked"), &json!("failed")),
        "{v}"
    );
    let (st, v) = admin(
        &s,
        "PATCH",
        &format!("{ti}/wait?update_mask=note"),
        r#"{"note": "ok by hand"}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = admin(&s, "GET", &format!("{ti}/wait"), "").await;
    assert_eq!(
        (&v["note"], &v["state"]),
        (&json!("ok by hand"), &json!("success"))
    );
    let long = json!({ "note": "x".repeat(1001) }).to_string();
    let (st, v) = admin(&s, "PATCH", "/api/v2/dags/watch/dagRuns/r1", &long).await;
    assert_eq!(st, 422, "{v}");
    // a principal without rights on the DAG can neither read nor change any of it
    for (method, path, body) in [
        ("GET", "/api/v2/dags/watch/dagRuns/r1".to_string(), ""),
        ("GET", format!("{ti}/wait"), ""),
        (
            "PATCH",
            "/api/v2/dags/watch".to_string(),
            r#"{"is_paused": true}"#,
        ),
        (
            "PATCH",
            "/api/v2/dags/watch/dagRuns/r1".to_string(),
            r#"{"state": "success"}"#,
        ),
        ("PATCH", format!("{ti}/wait"), r#"{"new_state": "failed"}"#),
        ("DELETE", "/api/v2/dags/watch".to_string(), ""),
    ] {
        let (st, v) = dev(&s, method, &path, body).await;
        assert_eq!(st, 403, "{method} {path}: {v}");
    }
    let (_, v) = admin(&s, "GET", "/api/v2/dags/watch/dagRuns/r1", "").await;
    assert_eq!(
        (&v["state"], &v["note"]),
        (&json!("failed"), &json!("checked"))
    );
    // Airflow's metrics and the per-state-machine Step Functions series on /metrics
    let sm = common::sfn_ok(
        &s,
        "admin-secret",
        "CreateStateMachine",
        json!({"name": "pass", "definition": r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
            "roleArn": "arn:aws:iam::000000000000:role/x"}),
    )
    .await["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    common::sfn_ok(
        &s,
        "admin-secret",
        "StartExecution",
        json!({"stateMachineArn": sm, "input": "{}"}),
    )
    .await;
    let sm_label = format!("weft_states_ExecutionsSucceeded{{state_machine_arn=\"{sm}\"}}");
    let text = poll_metrics(&s, &sm_label).await;
    let m = parse_metrics(&text);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(
        get(r#"airflow_dagrun_duration_failed_count{dag_id="watch"}"#),
        1.0
    );
    assert!(get(r#"airflow_dagrun_duration_failed_sum{dag_id="watch"}"#) > 0.0);
    assert_eq!(
        get(r#"airflow_ti_successes{dag_id="watch",task_id="after"}"#),
        1.0
    );
    assert_eq!(
        get(r#"airflow_task_duration_count{dag_id="watch",task_id="after"}"#),
        1.0
    );
    assert!(get("airflow_scheduler_heartbeat") >= 1.0);
    assert!(get(r#"airflow_pool_open_slots{pool="default_pool"}"#) >= 1.0);
    assert!(m.contains_key(r#"airflow_pool_running_slots{pool="default_pool"}"#));
    assert!(m.contains_key(r#"airflow_pool_queued_slots{pool="default_pool"}"#));
    assert!(m.contains_key("airflow_executor_open_slots"));
    assert!(m.contains_key("airflow_executor_queued_tasks"));
    assert!(m.contains_key("airflow_executor_running_tasks"));
    assert_eq!(get("airflow_dag_processing_import_errors"), 0.0);
    assert_eq!(get("airflow_dag_processing_dag_count"), 1.0);
    assert!(m.contains_key("airflow_dag_processing_total_parse_time"));
    assert_eq!(
        get(&format!(
            "weft_states_ExecutionsStarted{{state_machine_arn=\"{sm}\"}}"
        )),
        1.0
    );
    assert_eq!(get(&sm_label), 1.0);
    assert_eq!(
        get(&format!(
            "weft_states_ExecutionTime_count{{state_machine_arn=\"{sm}\"}}"
        )),
        1.0
    );
    // a principal without weft:GetMetrics reads none of it
    let (st, _) = dev(&s, "GET", "/metrics", "").await;
    assert_eq!(st, 403);
    // the run has finished: the DAG's records can be deleted
    let (st, v) = admin(&s, "DELETE", "/api/v2/dags/watch", "").await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = admin(&s, "GET", "/api/v2/dags/watch/dagRuns/r1", "").await;
    assert_eq!(st, 404);
}

/// The samples of a Prometheus text scrape: `name{labels}` -> value (comments skipped; every
/// other line must be `SERIES VALUE`).
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let v: f64 = v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (k.to_string(), v)
        })
        .collect()
}

/// Scrapes `/metrics` (as the admin) until `series` appears (at most a minute).
async fn poll_metrics(s: &Srv, series: &str) -> String {
    let t0 = std::time::Instant::now();
    loop {
        let auth = "Bearer admin-secret".to_string();
        let (st, _, text) =
            common::request(s.addr, "GET", "/metrics", &[("Authorization", &auth)], "").await;
        assert_eq!(st, 200, "{text}");
        if parse_metrics(&text).contains_key(series) {
            return text;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "never {series}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A server with DAGs `dev-pipe` and `prod-pipe` of tasks `a`, `b` and a mapped `m`, for the
/// bulk routes; principals `admin`, `dev` and `marker` (may patch task instances, not delete).
async fn start_bulk() -> Srv {
    let pipe = |id: &str| {
        format!(
            "{id}:
  schedule: null
  start_date: 2024-01-01
  tasks:
    a:
      operator: echo
    b:
      operator: echo
      dependencies: [a]
    m:
      operator: echo
      expand:
        channel: [x, y]
"
        )
    };
    let dags = [
        ("dev-pipe.yaml", pipe("dev-pipe")),
        ("prod-pipe.yaml", pipe("prod-pipe")),
    ];
    let marker = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["dags:PatchTaskInstance", "dags:ListDagRuns"], "Resource": ["weft:dag:*"]}]}"#;
    let tokens = Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("dev", "dev-secret", Some(DEV)),
        principal("marker", "marker-secret", Some(marker)),
    ]));
    common::start_with_dags(Some(tokens), &dags, &["echo"]).await
}

/// A finished run `run_id` of `dag_id` written straight to the store, with `a` and `b`
/// succeeded and `m` mapped over indexes 0 and 1.
fn finished_run(s: &Srv, dag_id: &str, run_id: &str, days: i64) {
    let store = s.state.dag_store().unwrap();
    let ti = |task: &str, map_index: i64| weft_engine::scheduler::StoredTi {
        ti: weft_dag::TiRecord {
            task_id: task.into(),
            map_index,
            state: weft_dag::TiState::Success,
            try_number: 1,
            tries_before_clear: 0,
            duration_s: 0.0,
            wait_until: 0.0,
            first_poke_at: None,
            pokes: 0,
            xcom: Value::Null,
            error: None,
            mapped_args: Default::default(),
            note: None,
            xcoms: Default::default(),
        },
        start_date: Some(1.0),
        end_date: Some(2.0),
        hostname: None,
    };
    let at = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
        + chrono::Duration::days(days);
    store
        .insert_run(&weft_engine::scheduler::DagRunRecord {
            dag_id: dag_id.into(),
            run_id: run_id.into(),
            run_type: "manual".into(),
            logical_date: at,
            data_interval_start: at,
            data_interval_end: at,
            state: "success".into(),
            conf: Default::default(),
            queued_at: at,
            start_date: Some(at),
            end_date: Some(at),
            note: None,
        })
        .unwrap();
    store
        .write_tis(
            dag_id,
            run_id,
            &[],
            &[ti("a", -1), ti("b", -1), ti("m", 0), ti("m", 1)],
        )
        .unwrap();
}

async fn ti_state(s: &Srv, dag: &str, run: &str, task: &str) -> Value {
    let (_, v) = admin(
        s,
        "GET",
        &format!("/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}"),
        "",
    )
    .await;
    v["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_task_instance_actions_mark_note_and_delete() {
    let s = start_bulk().await;
    finished_run(&s, "dev-pipe", "r1", 0);
    finished_run(&s, "dev-pipe", "r2", 1);
    let bulk = "/api/v2/dags/dev-pipe/dagRuns/r1/taskInstances";
    // marks with a note, one entity on another run of the DAG; a mapped task by index
    let (st, v) = dev(
        &s,
        "PATCH",
        bulk,
        r#"{"actions": [{"action": "update", "entities": [
            {"task_id": "a", "new_state": "failed", "note": "bad data"},
            {"task_id": "b", "dag_run_id": "r2", "new_state": "skipped"}]}]}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["update"]["success"],
        json!(["dev-pipe.r1.a[-1]", "dev-pipe.r2.b[-1]"]),
        "{v}"
    );
    assert_eq!(v["update"]["errors"], json!([]));
    assert_eq!((&v["create"], &v["delete"]), (&Value::Null, &Value::Null));
    assert_eq!(ti_state(&s, "dev-pipe", "r1", "a").await, "failed");
    assert_eq!(ti_state(&s, "dev-pipe", "r2", "b").await, "skipped");
    let (_, v) = admin(&s, "GET", "/api/v2/dags/dev-pipe/dagRuns/r1", "").await;
    assert_eq!(v["state"], "failed", "the run follows its instances: {v}");
    let (_, v) = admin(&s, "GET", &format!("{bulk}/a"), "").await;
    assert_eq!(v["note"], "bad data");
    // update_mask keeps only the note; the state stays
    let (_, v) = admin(
        &s,
        "PATCH",
        bulk,
        r#"{"actions": [{"action": "update", "update_mask": ["note"], "entities": [
            {"task_id": "a", "new_state": "success", "note": "looked at"}]}]}"#,
    )
    .await;
    assert_eq!(v["update"]["success"], json!(["dev-pipe.r1.a[-1]"]), "{v}");
    let (_, v) = admin(&s, "GET", &format!("{bulk}/a"), "").await;
    assert_eq!(
        (&v["note"], &v["state"]),
        (&json!("looked at"), &json!("failed"))
    );
    // every instance of a mapped task without `map_index`, one with it
    let (_, v) = admin(
        &s,
        "PATCH",
        bulk,
        r#"{"actions": [{"action": "update", "entities": [{"task_id": "m", "new_state": "failed"}]}]}"#,
    )
    .await;
    assert_eq!(
        v["update"]["success"],
        json!(["dev-pipe.r1.m[0]", "dev-pipe.r1.m[1]"]),
        "{v}"
    );
    // the same mark again, a missing instance, and create: errors in Airflow's words
    let (st, v) = admin(
        &s,
        "PATCH",
        bulk,
        r#"{"actions": [
            {"action": "update", "entities": [{"task_id": "m", "map_index": 1, "new_state": "failed"}]},
            {"action": "create", "entities": []}]}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["update"]["errors"][0]["status_code"], 409, "{v}");
    assert!(v["update"]["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("already in failed state"));
    assert_eq!(v["create"]["errors"][0]["status_code"], 405, "{v}");
    let missing = r#"{"actions": [{"action": "update", "entities": [{"task_id": "m", "map_index": 7, "new_state": "success"}]ACTION}]}"#;
    let (_, v) = admin(&s, "PATCH", bulk, &missing.replace("ACTION", "")).await;
    assert_eq!(v["update"]["errors"][0]["status_code"], 404, "{v}");
    let (_, v) = admin(
        &s,
        "PATCH",
        bulk,
        &missing.replace("ACTION", r#", "action_on_non_existence": "skip""#),
    )
    .await;
    assert_eq!(
        (&v["update"]["success"], &v["update"]["errors"]),
        (&json!([]), &json!([])),
        "{v}"
    );
    // delete by id (the path's run) and by object; they are gone, the others stay
    let (st, v) = dev(
        &s,
        "PATCH",
        bulk,
        r#"{"actions": [{"action": "delete", "entities": ["b", {"task_id": "m", "map_index": 0}]}]}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["delete"]["success"],
        json!(["dev-pipe.r1.b[-1]", "dev-pipe.r1.m[0]"]),
        "{v}"
    );
    let (st, _) = admin(&s, "GET", &format!("{bulk}/b"), "").await;
    assert_eq!(st, 404);
    let (st, _) = admin(&s, "GET", &format!("{bulk}/m/1"), "").await;
    assert_eq!(st, 200);
    // a wildcard path needs the DAG and run in each entity
    let (st, v) = admin(
        &s,
        "PATCH",
        "/api/v2/dags/~/dagRuns/~/taskInstances",
        r#"{"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "success"},
            {"task_id": "a", "dag_id": "dev-pipe", "dag_run_id": "r2", "new_state": "failed"}]}]}"#,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["update"]["errors"][0]["status_code"], 400, "{v}");
    assert_eq!(v["update"]["success"], json!(["dev-pipe.r2.a[-1]"]), "{v}");
    // malformed bodies are 422 in Airflow's shape, and change nothing
    for body in [
        r#"{"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "running"}]}]}"#,
        r#"{"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "success", "state": "x"}]}]}"#,
        r#"{"actions": {"action": "update"}}"#,
        r#"{"entities": []}"#,
    ] {
        let (st, v) = admin(&s, "PATCH", bulk, body).await;
        assert_eq!(st, 422, "{body}: {v}");
        assert!(v["detail"][0]["loc"].is_array(), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_body_cannot_reach_a_dag_the_caller_may_not_patch() {
    let s = start_bulk().await;
    finished_run(&s, "dev-pipe", "r1", 0);
    finished_run(&s, "prod-pipe", "r1", 0);
    let entity = |action: &str| {
        format!(
            r#"{{"actions": [
            {{"action": "{action}", "entities": [{{"task_id": "a", "dag_id": "dev-pipe", "dag_run_id": "r1", "new_state": "failed"}}]}},
            {{"action": "{action}", "entities": [{{"task_id": "a", "dag_id": "prod-pipe", "dag_run_id": "r1", "new_state": "failed"}}]}}]}}"#
        )
    };
    for path in [
        "/api/v2/dags/dev-pipe/dagRuns/r1/taskInstances",
        "/api/v2/dags/~/dagRuns/~/taskInstances",
        "/api/v2/dags/prod-pipe/dagRuns/r1/taskInstances",
    ] {
        for action in ["update", "delete"] {
            let (st, v) = dev(&s, "PATCH", path, &entity(action)).await;
            assert_eq!(st, 403, "{path} {action}: {v}");
            assert!(v["detail"].is_string(), "{v}");
        }
    }
    // nothing changed on either DAG: the denial came before the first action
    assert_eq!(ti_state(&s, "dev-pipe", "r1", "a").await, "success");
    assert_eq!(ti_state(&s, "prod-pipe", "r1", "a").await, "success");
    // without credentials
    let (st, _) = call(
        &s,
        None,
        "PATCH",
        "/api/v2/dags/dev-pipe/dagRuns/r1/taskInstances",
        &entity("update"),
    )
    .await;
    assert_eq!(st, 401);
    // a caller who may patch but not delete task instances
    let path = "/api/v2/dags/dev-pipe/dagRuns/r1/taskInstances";
    let (st, v) = call(
        &s,
        Some("marker-secret"),
        "PATCH",
        path,
        r#"{"actions": [{"action": "delete", "entities": ["a"]}]}"#,
    )
    .await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = call(
        &s,
        Some("marker-secret"),
        "PATCH",
        path,
        r#"{"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "skipped"}]}]}"#,
    )
    .await;
    assert_eq!(
        (st, &v["update"]["success"]),
        (200, &json!(["dev-pipe.r1.a[-1]"])),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_aliases_named_by_dags_are_listed_per_caller() {
    let dags = [(
        "alias.yaml",
        "dev-alias:
  tasks:
    make:
      operator: echo
      outlets:
        - __type__: airflow.sdk.AssetAlias
          name: dev-orders
        - __type__: airflow.sdk.AssetAlias
          name: prod-orders
        - s3://lake/plain
"
        .to_string(),
    )];
    let only_dev = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["assets:GetAssetAlias"], "Resource": ["weft:asset-alias:dev-*"]}]}"#;
    let tokens = Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("dev", "dev-secret", Some(only_dev)),
    ]));
    let s = common::start_with_dags(Some(tokens), &dags, &["echo"]).await;
    let (st, v) = admin(&s, "GET", "/api/v2/assets/aliases?order_by=-name", "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        ids(&v, "asset_aliases", "name"),
        ["prod-orders", "dev-orders"]
    );
    assert_eq!(
        (&v["total_entries"], &v["asset_aliases"][0]["group"]),
        (&json!(2), &json!("asset"))
    );
    let prod = v["asset_aliases"][0]["id"].as_i64().unwrap();
    let dev_id = v["asset_aliases"][1]["id"].as_i64().unwrap();
    let (st, one) = admin(&s, "GET", &format!("/api/v2/assets/aliases/{prod}"), "").await;
    assert_eq!((st, &one["name"]), (200, &json!("prod-orders")), "{one}");
    let (_, v) = admin(&s, "GET", "/api/v2/assets/aliases?name_pattern=dev", "").await;
    assert_eq!(ids(&v, "asset_aliases", "name"), ["dev-orders"]);
    // the caller allowed `dev-*` aliases sees one, and gets the same 403 for another alias as
    // for an id that names none
    let (st, v) = dev(&s, "GET", "/api/v2/assets/aliases", "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v, "asset_aliases", "name"), ["dev-orders"]);
    let (st, _) = dev(&s, "GET", &format!("/api/v2/assets/aliases/{dev_id}"), "").await;
    assert_eq!(st, 200);
    for id in [prod, 12345] {
        let (st, v) = dev(&s, "GET", &format!("/api/v2/assets/aliases/{id}"), "").await;
        assert_eq!(st, 403, "{id}: {v}");
    }
    let (st, _) = admin(&s, "GET", "/api/v2/assets/aliases/12345", "").await;
    assert_eq!(st, 404);
    let (st, v) = admin(&s, "GET", "/api/v2/assets/aliases/not-a-number", "").await;
    assert_eq!(st, 422, "{v}");
}
