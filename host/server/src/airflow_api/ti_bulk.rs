//! Airflow's bulk task-instance route, `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`
//! with a `BulkBody` (`{"actions": [{"action": "update" | "delete" | "create", "entities": [...]}]}`):
//! marks (and notes) many task instances, or deletes them from finished runs, in one request,
//! and answers Airflow's `BulkResponse` (`{"create": ..., "update": {"success": ["DAG.RUN.TASK[MAP_INDEX]"],
//! "errors": [{"error": ..., "status_code": ...}]}, "delete": ...}`).
//!
//! An entity may name another DAG and run (`dag_id`, `dag_run_id`; required when the path has
//! `~`). Every DAG the body touches is authorised before anything changes: `dags:PatchTaskInstance`
//! for updates, `dags:DeleteTaskInstance` for deletes, on `weft:dag:DAG_ID`; one denial refuses
//! the whole request (403) so a caller allowed one DAG cannot reach another through the body.
//! Within an action, the first failing entity stops it (its error is listed, earlier entities
//! stay done), as in Airflow.

use super::dag_runs::{get_run, ALL};
use super::task_instances::{apply_patch, TiPatch};
use super::{clip, dag_resource, respond, sched_store, store_err, unprocessable};
use crate::error::ApiError;
use crate::v1_access::V1Request;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use weft_dag::TiState;

/// Most actions in one body.
pub const MAX_ACTIONS: usize = 100;
/// Most entities over all actions of one body.
pub const MAX_ENTITIES: usize = 1_000;

const ENTITY_FIELDS: &[&str] = &[
    "task_id",
    "map_index",
    "dag_id",
    "dag_run_id",
    "new_state",
    "note",
    "include_upstream",
    "include_downstream",
    "include_future",
    "include_past",
];

/// One `BulkTaskInstanceBody` (or a bare task id in a delete), validated.
struct Entity {
    task_id: String,
    map_index: Option<i64>,
    dag_id: Option<String>,
    dag_run_id: Option<String>,
    /// Fields the entity set (`new_state`, `note`), before any `update_mask`.
    set: BTreeSet<&'static str>,
    patch: TiPatch,
}

enum Kind {
    Create,
    Update,
    Delete,
}

struct Action {
    kind: Kind,
    entities: Vec<Entity>,
    update_mask: Option<Vec<String>>,
    /// `action_on_non_existence` is `skip`.
    skip_missing: bool,
}

/// `{"error": ..., "status_code": ...}`.
fn error_entry(e: &ApiError) -> Value {
    json!({"error": e.message, "status_code": e.status.as_u16()})
}

fn loc(parts: &[String]) -> Vec<&str> {
    parts.iter().map(String::as_str).collect()
}

fn invalid(at: &[String], msg: impl Into<String>) -> ApiError {
    unprocessable(&loc(at), msg)
}

/// Parses `new_state` (Airflow lower-cases it).
fn new_state(v: &str) -> Option<TiState> {
    match v.to_ascii_lowercase().as_str() {
        "success" => Some(TiState::Success),
        "failed" => Some(TiState::Failed),
        "skipped" => Some(TiState::Skipped),
        _ => None,
    }
}

fn entity(v: &Value, at: Vec<String>, bare_id_ok: bool) -> Result<Entity, ApiError> {
    let empty = |task_id: String| Entity {
        task_id,
        map_index: None,
        dag_id: None,
        dag_run_id: None,
        set: BTreeSet::new(),
        patch: TiPatch {
            new_state: None,
            note: None,
            upstream: false,
            downstream: false,
            past: false,
            future: false,
        },
    };
    let m = match v {
        Value::String(s) if bare_id_ok => return Ok(empty(s.clone())),
        Value::Object(m) => m,
        _ => return Err(invalid(&at, "Input should be a valid dictionary")),
    };
    let field = |k: &str| {
        let mut a = at.clone();
        a.push(k.to_string());
        a
    };
    if let Some(k) = m.keys().find(|k| !ENTITY_FIELDS.contains(&k.as_str())) {
        return Err(invalid(&field(k), "Extra inputs are not permitted"));
    }
    let string = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&field(k), "Input should be a valid string")),
    };
    let flag = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(&field(k), "Input should be a valid boolean")),
    };
    let task_id = string("task_id")?.ok_or_else(|| invalid(&field("task_id"), "Field required"))?;
    let mut e = empty(task_id);
    e.map_index = match m.get("map_index") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().filter(|i| *i >= -1).ok_or_else(|| {
            invalid(
                &field("map_index"),
                "Input should be an integer of -1 or more",
            )
        })?),
        Some(_) => {
            return Err(invalid(
                &field("map_index"),
                "Input should be a valid integer",
            ))
        }
    };
    e.dag_id = string("dag_id")?;
    e.dag_run_id = string("dag_run_id")?;
    if m.contains_key("new_state") {
        let s = string("new_state")?.ok_or_else(|| {
            invalid(
                &field("new_state"),
                "Value error, 'new_state' should not be empty",
            )
        })?;
        e.patch.new_state = Some(new_state(&s).ok_or_else(|| {
            invalid(
                &field("new_state"),
                format!(
                    "Value error, '{}' is not one of ['success', 'failed', 'skipped']",
                    clip(&s)
                ),
            )
        })?);
        e.set.insert("new_state");
    }
    if m.contains_key("note") {
        let note = string("note")?;
        if note
            .as_ref()
            .is_some_and(|n| n.chars().count() > super::dag_runs::MAX_NOTE_CHARS)
        {
            return Err(invalid(
                &field("note"),
                format!(
                    "String should have at most {} characters",
                    super::dag_runs::MAX_NOTE_CHARS
                ),
            ));
        }
        e.patch.note = Some(note);
        e.set.insert("note");
    }
    e.patch.upstream = flag("include_upstream")?;
    e.patch.downstream = flag("include_downstream")?;
    e.patch.past = flag("include_past")?;
    e.patch.future = flag("include_future")?;
    Ok(e)
}

fn actions(body: &Map<String, Value>) -> Result<Vec<Action>, ApiError> {
    super::only_fields(body, &["actions"])?;
    let list = match body.get("actions") {
        Some(Value::Array(a)) => a,
        None => return Err(unprocessable(&["body", "actions"], "Field required")),
        Some(_) => {
            return Err(unprocessable(
                &["body", "actions"],
                "Input should be a valid list",
            ))
        }
    };
    if list.len() > MAX_ACTIONS {
        return Err(unprocessable(
            &["body", "actions"],
            format!("List should have at most {MAX_ACTIONS} items"),
        ));
    }
    let mut total = 0;
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let at = vec!["body".to_string(), "actions".to_string(), i.to_string()];
        let field = |k: &str| {
            let mut v = at.clone();
            v.push(k.to_string());
            v
        };
        let m = a
            .as_object()
            .ok_or_else(|| invalid(&at, "Input should be a valid dictionary"))?;
        let kind = match m.get("action").and_then(Value::as_str) {
            Some("create") => Kind::Create,
            Some("update") => Kind::Update,
            Some("delete") => Kind::Delete,
            _ => {
                return Err(invalid(
                    &field("action"),
                    "Input should be 'create', 'delete' or 'update'",
                ))
            }
        };
        let known: &[&str] = match kind {
            Kind::Create => &["action", "entities", "action_on_existence"],
            Kind::Update => &[
                "action",
                "entities",
                "update_mask",
                "action_on_non_existence",
            ],
            Kind::Delete => &["action", "entities", "action_on_non_existence"],
        };
        if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(invalid(&field(k), "Extra inputs are not permitted"));
        }
        let entities = match m.get("entities") {
            Some(Value::Array(e)) => e,
            None => return Err(invalid(&field("entities"), "Field required")),
            Some(_) => return Err(invalid(&field("entities"), "Input should be a valid list")),
        };
        total += entities.len();
        if total > MAX_ENTITIES {
            return Err(invalid(
                &field("entities"),
                format!("at most {MAX_ENTITIES} entities in one request"),
            ));
        }
        let skip_missing = match m.get("action_on_non_existence") {
            None | Some(Value::Null) => false,
            Some(v) if v == "fail" => false,
            Some(v) if v == "skip" => true,
            Some(_) => {
                return Err(invalid(
                    &field("action_on_non_existence"),
                    "Input should be 'fail' or 'skip'",
                ))
            }
        };
        let update_mask = match m.get("update_mask") {
            None | Some(Value::Null) => None,
            Some(Value::Array(v)) if v.iter().all(Value::is_string) => Some(
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(_) => {
                return Err(invalid(
                    &field("update_mask"),
                    "Input should be a list of field names",
                ))
            }
        };
        let entities = entities
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let mut at = field("entities");
                at.push(n.to_string());
                entity(e, at, matches!(kind, Kind::Delete))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if matches!(kind, Kind::Update) {
            if let Some(n) = entities.iter().position(|e| e.set.is_empty()) {
                let mut at = field("entities");
                at.push(n.to_string());
                at.push("new_state".into());
                return Err(invalid(&at, "Field required"));
            }
        }
        out.push(Action {
            kind,
            entities,
            update_mask,
            skip_missing,
        });
    }
    Ok(out)
}

/// The DAG and run an entity acts on: its own, or the path's; `~` in the path needs both in
/// the entity.
fn target(e: &Entity, dag_id: &str, run_id: &str) -> Result<(String, String), ApiError> {
    let d = e.dag_id.as_deref().unwrap_or(dag_id);
    let r = e.dag_run_id.as_deref().unwrap_or(run_id);
    if d == ALL || r == ALL {
        return Err(super::bad_request(format!(
            "When using wildcard in path, dag_id and dag_run_id must be specified in request body for task_id: {}",
            clip(&e.task_id)
        )));
    }
    Ok((d.to_string(), r.to_string()))
}

/// The map indexes an entity selects in its run (every instance of the task without
/// `map_index`); empty when none exist.
fn instances(app: &AppState, dag_id: &str, run_id: &str, e: &Entity) -> Result<Vec<i64>, ApiError> {
    let store = sched_store(app)?;
    let Some(_) = store.get_run(dag_id, run_id).map_err(store_err)? else {
        return Ok(Vec::new());
    };
    Ok(store
        .tis_of(dag_id, run_id)
        .map_err(store_err)?
        .into_iter()
        .filter(|t| t.ti.task_id == e.task_id && e.map_index.is_none_or(|m| m == t.ti.map_index))
        .map(|t| t.ti.map_index)
        .collect())
}

fn missing(dag_id: &str, run_id: &str, e: &Entity) -> ApiError {
    match e.map_index {
        Some(m) => super::not_found(format!(
            "The task instances with these identifiers: [{{'dag_id': '{dag_id}', 'dag_run_id': '{}', 'task_id': '{}', 'map_index': {m}}}] were not found",
            clip(run_id),
            clip(&e.task_id)
        )),
        None => super::not_found(format!(
            "No task instances found for dag_id: {dag_id}, run_id: {}, task_id: {}",
            clip(run_id),
            clip(&e.task_id)
        )),
    }
}

/// Runs an update action; the first error stops it.
fn update(app: &AppState, a: &Action, dag_id: &str, run_id: &str, res: &mut Value) {
    let mut plan = Vec::new();
    for e in &a.entities {
        let (d, r) = match target(e, dag_id, run_id) {
            Ok(t) => t,
            Err(err) => {
                push_error(res, &err);
                continue;
            }
        };
        match instances(app, &d, &r, e) {
            Ok(m) if m.is_empty() && a.skip_missing => {}
            Ok(m) if m.is_empty() => return push_error(res, &missing(&d, &r, e)),
            Ok(m) => plan.push((e, d, r, m)),
            Err(err) => return push_error(res, &err),
        }
    }
    for (e, d, r, maps) in plan {
        let fields = match &a.update_mask {
            Some(mask) => e
                .set
                .iter()
                .filter(|f| mask.iter().any(|m| m == **f))
                .copied()
                .collect(),
            None => e.set.clone(),
        };
        let patch = TiPatch {
            new_state: e.patch.new_state.filter(|_| fields.contains("new_state")),
            note: e.patch.note.clone().filter(|_| fields.contains("note")),
            upstream: e.patch.upstream,
            downstream: e.patch.downstream,
            past: e.patch.past,
            future: e.patch.future,
        };
        for m in maps {
            if patch.new_state.is_some() || patch.note.is_some() {
                match apply_patch(app, &d, &r, &e.task_id, Some(m), &patch, false) {
                    Ok(changed) if changed.is_empty() && patch.new_state.is_some() => {
                        let st = patch.new_state.map_or("", |s| s.as_str());
                        return push_error(
                            res,
                            &super::conflict(format!(
                                "Task id {} is already in {st} state",
                                clip(&e.task_id)
                            )),
                        );
                    }
                    Ok(_) => {}
                    Err(err) => return push_error(res, &err),
                }
            }
            push_success(res, &d, &r, &e.task_id, m);
        }
    }
}

/// Runs a delete action: the instances leave their (finished) run; the first error stops it.
fn delete(app: &AppState, a: &Action, dag_id: &str, run_id: &str, res: &mut Value) {
    let store = match sched_store(app) {
        Ok(s) => s,
        Err(e) => return push_error(res, &e),
    };
    for e in &a.entities {
        let (d, r) = match target(e, dag_id, run_id) {
            Ok(t) => t,
            Err(err) => {
                push_error(res, &err);
                continue;
            }
        };
        let maps = match instances(app, &d, &r, e) {
            Ok(m) if m.is_empty() && a.skip_missing => continue,
            Ok(m) if m.is_empty() => return push_error(res, &missing(&d, &r, e)),
            Ok(m) => m,
            Err(err) => return push_error(res, &err),
        };
        let run = match get_run(&store, &d, &r).and_then(|run| {
            super::dag_runs::must_be_finished(&run, "delete its task instances").map(|_| run)
        }) {
            Ok(run) => run,
            Err(err) => return push_error(res, &err),
        };
        let keep: Vec<_> = match store.tis_of(&run.dag_id, &run.run_id) {
            Ok(tis) => tis
                .into_iter()
                .filter(|t| t.ti.task_id == e.task_id && !maps.contains(&t.ti.map_index))
                .collect(),
            Err(err) => return push_error(res, &store_err(err)),
        };
        let done = store
            .write_tis(&d, &r, std::slice::from_ref(&e.task_id), &keep)
            .and_then(|_| store.flush());
        if let Err(err) = done {
            return push_error(res, &store_err(err));
        }
        tracing::info!(dag_id = %d, run_id = %r, task_id = %e.task_id, deleted = maps.len(), "task instances deleted");
        for m in maps {
            push_success(res, &d, &r, &e.task_id, m);
        }
    }
}

fn push_error(res: &mut Value, e: &ApiError) {
    if let Some(v) = res["errors"].as_array_mut() {
        v.push(error_entry(e));
    }
}

fn push_success(res: &mut Value, dag_id: &str, run_id: &str, task_id: &str, map_index: i64) {
    if let Some(v) = res["success"].as_array_mut() {
        v.push(json!(format!("{dag_id}.{run_id}.{task_id}[{map_index}]")));
    }
}

/// `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances` (`BulkBody` of
/// `BulkTaskInstanceBody`): `BulkResponse`.
pub async fn bulk(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "dags:PatchTaskInstance",
        StatusCode::OK,
        |ctx| {
            let body = super::body_object(&req)?;
            let actions = actions(&body)?;
            // every DAG the body touches, authorised before anything changes
            if dag_id == ALL {
                ctx.filtered("*");
            } else {
                ctx.authorize(dag_resource(&dag_id)?)?;
            }
            for a in &actions {
                let act = match a.kind {
                    Kind::Create => continue,
                    Kind::Update => "dags:PatchTaskInstance",
                    Kind::Delete => "dags:DeleteTaskInstance",
                };
                for e in &a.entities {
                    let d = e.dag_id.as_deref().unwrap_or(&dag_id);
                    if d != ALL {
                        ctx.authorize_also(act, &dag_resource(d)?)?;
                    }
                }
            }
            let mut out = json!({"create": null, "update": null, "delete": null});
            for a in &actions {
                let key = match a.kind {
                    Kind::Create => "create",
                    Kind::Update => "update",
                    Kind::Delete => "delete",
                };
                if out[key].is_null() {
                    out[key] = json!({"success": [], "errors": []});
                }
                let res = &mut out[key];
                match a.kind {
                    Kind::Create => push_error(
                        res,
                        &ApiError::new(
                            "MethodNotAllowed",
                            "Task instances bulk create is not supported",
                        )
                        .with_status(StatusCode::METHOD_NOT_ALLOWED),
                    ),
                    Kind::Update => update(&app, a, &dag_id, &run_id, res),
                    Kind::Delete => delete(&app, a, &dag_id, &run_id, res),
                }
            }
            Ok(out)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Vec<Action>, ApiError> {
        actions(v.as_object().unwrap())
    }

    #[test]
    fn bodies_are_validated_as_airflow_does() {
        let a = parse(json!({"actions": [
            {"action": "update", "entities": [{"task_id": "a", "new_state": "SUCCESS", "map_index": 2}],
             "update_mask": ["new_state"], "action_on_non_existence": "skip"},
            {"action": "delete", "entities": ["a", {"task_id": "b", "dag_id": "d", "dag_run_id": "r"}]},
        ]}))
        .unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].entities[0].patch.new_state, Some(TiState::Success));
        assert_eq!(a[0].entities[0].map_index, Some(2));
        assert!(a[0].skip_missing);
        assert_eq!(a[1].entities[1].dag_id.as_deref(), Some("d"));
        for bad in [
            json!({}),
            json!({"actions": [{"action": "merge", "entities": []}]}),
            json!({"actions": [{"action": "update", "entities": ["a"]}]}),
            json!({"actions": [{"action": "update", "entities": [{"task_id": "a"}]}]}),
            json!({"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "running"}]}]}),
            json!({"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "success", "pool": "x"}]}]}),
            json!({"actions": [{"action": "update", "entities": [{"task_id": "a", "new_state": "success", "map_index": -2}]}]}),
            json!({"actions": [{"action": "delete", "entities": [1]}]}),
            json!({"actions": [{"action": "delete", "entities": [], "action_on_non_existence": "ignore"}]}),
            json!({"actions": [], "extra": 1}),
        ] {
            let e = parse(bad.clone())
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let many = vec![json!("t"); MAX_ENTITIES + 1];
        let e = parse(json!({"actions": [{"action": "delete", "entities": many}]})).err();
        assert!(e.is_some());
    }

    #[test]
    fn a_wildcard_path_needs_the_entitys_dag_and_run() {
        let a = parse(json!({"actions": [{"action": "delete", "entities": ["t",
            {"task_id": "t", "dag_id": "d", "dag_run_id": "r"}]}]}))
        .unwrap();
        assert!(target(&a[0].entities[0], ALL, "r").is_err());
        assert!(target(&a[0].entities[0], "d", ALL).is_err());
        assert_eq!(
            target(&a[0].entities[1], ALL, ALL).unwrap(),
            ("d".to_string(), "r".to_string())
        );
        assert_eq!(
            target(&a[0].entities[0], "x", "y").unwrap(),
            ("x".to_string(), "y".to_string())
        );
    }
}
