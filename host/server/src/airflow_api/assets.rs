//! Airflow 3's asset routes: `GET /api/v2/assets[/{asset_id}]`, `GET|POST
//! /api/v2/assets/events`, and `GET|DELETE` of the queued events of an asset
//! (`/api/v2/assets/{asset_id}/queuedEvents`), of a DAG
//! (`/api/v2/dags/{dag_id}/assets/queuedEvents`) and of both
//! (`/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents`).
//!
//! The assets are those the loaded DAGs name (task `outlets`, asset schedules) and those with
//! recorded events; an asset's id is derived from its canonical URI
//! ([`weft_engine::scheduler::assets::asset_id`]). Every asset is authorised as
//! `weft:asset:CANONICAL_URI`: lists are filtered per asset (`assets:GetAsset`,
//! `assets:GetAssetEvent`), posting an event needs `assets:CreateAssetEvent` on its asset, the
//! queued events of a DAG need `dags:GetDag` on it and `assets:GetAsset` per asset; deleting
//! queued events needs `assets:DeleteQueuedEvent` on each asset (and `dags:GetDag` on the
//! DAG named in the path).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use weft_dag::Dag;
use weft_engine::persistence::asset_query::{AssetEventOrder, AssetEventQuery, AssetStats};
use weft_engine::scheduler::assets::{
    asset_id, condition_of, consumers_of, outlets_of, MAX_EXTRA_BYTES,
};
use weft_engine::scheduler::{AssetEvent, QueuedAssetEvent};

use super::{
    body_object, clip, dag_resource, iso, not_found, only_fields, respond, sched_store, sort_json,
    store_err, unprocessable, Query,
};
use crate::error::ApiError;
use crate::v1_access::V1Request;
use crate::AppState;

/// The policy resource of an asset (its URI canonical already).
pub fn asset_resource(uri: &str) -> String {
    format!("weft:asset:{uri}")
}

/// What is known of one asset.
#[derive(Default)]
struct Known {
    producing: Vec<(String, String)>,
    consuming: Vec<String>,
    last_event: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    first_seen: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every asset the loaded DAGs name or an event recorded, by canonical URI.
fn known_assets(dags: &[Dag], stats: &[AssetStats]) -> BTreeMap<String, Known> {
    let mut out: BTreeMap<String, Known> = BTreeMap::new();
    for d in dags {
        for t in d.tasks.values() {
            for uri in outlets_of(t) {
                out.entry(uri)
                    .or_default()
                    .producing
                    .push((d.dag_id.clone(), t.task_id.clone()));
            }
        }
        if let Some(c) = condition_of(d) {
            for uri in c.uris() {
                out.entry(uri).or_default().consuming.push(d.dag_id.clone());
            }
        }
    }
    for s in stats {
        let k = out.entry(s.uri.clone()).or_default();
        k.last_event = Some((s.last_id, s.last_timestamp));
        k.first_seen = Some(s.first_timestamp);
    }
    out
}

fn asset_json(uri: &str, k: &Known, dags_time: &Value) -> Value {
    let created = k.first_seen.as_ref().map_or_else(|| dags_time.clone(), iso);
    let updated = k
        .last_event
        .as_ref()
        .map_or_else(|| created.clone(), |(_, t)| iso(t));
    json!({
        "id": asset_id(uri),
        "name": uri,
        "uri": uri,
        "group": "asset",
        "extra": {},
        "created_at": created,
        "updated_at": updated,
        "scheduled_dags": k.consuming.iter().map(|d| json!({
            "dag_id": d, "created_at": dags_time, "updated_at": dags_time,
        })).collect::<Vec<_>>(),
        "producing_tasks": k.producing.iter().map(|(d, t)| json!({
            "dag_id": d, "task_id": t, "created_at": dags_time, "updated_at": dags_time,
        })).collect::<Vec<_>>(),
        "consuming_tasks": [],
        "aliases": [],
        "watchers": [],
        "last_asset_event": k.last_event.as_ref().map(|(id, t)| json!({"id": id, "timestamp": iso(t)})),
    })
}

fn event_json(e: &AssetEvent, created: &[Value]) -> Value {
    json!({
        "id": e.id,
        "asset_id": asset_id(&e.uri),
        "uri": e.uri,
        "name": e.uri,
        "group": "asset",
        "extra": e.extra,
        "source_task_id": e.source_task_id,
        "source_dag_id": e.source_dag_id,
        "source_run_id": e.source_run_id,
        "source_map_index": e.source_map_index,
        "source_aliases": e.source_aliases.iter().map(|a| json!({"name": a, "group": "asset"})).collect::<Vec<_>>(),
        "created_dagruns": created,
        "partition_key": Value::Null,
        "timestamp": iso(&e.timestamp),
    })
}

fn queued_json(q: &QueuedAssetEvent, dags: &[Dag]) -> Value {
    let name = dags
        .iter()
        .find(|d| d.dag_id == q.dag_id)
        .map_or_else(|| q.dag_id.clone(), super::dags::display_name);
    json!({
        "dag_id": q.dag_id,
        "asset_id": asset_id(&q.uri),
        "created_at": iso(&q.created_at),
        "dag_display_name": name,
    })
}

/// When the DAG folder was last loaded, as the created/updated time of DAG references.
fn dags_time() -> Value {
    iso(&chrono::Utc::now())
}

fn parse_asset_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| {
        unprocessable(
            &["path", "asset_id"],
            format!("Input should be a valid integer, got `{}`", clip(raw)),
        )
    })
}

/// The canonical URI of the asset `id` among the known ones, authorised for the route's
/// action. An unknown id is decided on `weft:asset:#ID` first, so a caller allowed only some
/// assets gets the same 403 for an asset that does not exist as for one it may not see (no
/// probing which URIs exist through their ids); 404 for a caller allowed every asset.
fn authorised_uri(
    ctx: &mut crate::v1_access::Ctx,
    known: &BTreeMap<String, Known>,
    id: i64,
) -> Result<String, ApiError> {
    match known.keys().find(|u| asset_id(u) == id) {
        Some(uri) => {
            ctx.authorize(asset_resource(uri))?;
            Ok(uri.clone())
        }
        None => {
            ctx.authorize(format!("weft:asset:#{id}"))?;
            Err(not_found(format!(
                "The Asset with ID: `{id}` was not found"
            )))
        }
    }
}

/// What a route about one asset works on: the scheduler's store, the loaded DAGs, the assets
/// they and the recorded events name, and the canonical URI of the asset `id` names,
/// authorised for the route's action (see [`authorised_uri`]).
struct OneAsset {
    store: weft_engine::scheduler::SchedStore,
    dags: Vec<Dag>,
    known: BTreeMap<String, Known>,
    uri: String,
}

fn one_asset(
    app: &AppState,
    ctx: &mut crate::v1_access::Ctx,
    id: i64,
) -> Result<OneAsset, ApiError> {
    let store = sched_store(app)?;
    let (dags, _, _) = crate::rest::load_dags(app);
    let stats = store.asset_stats().map_err(store_err)?;
    let known = known_assets(&dags, &stats);
    let uri = authorised_uri(ctx, &known, id)?;
    Ok(OneAsset {
        store,
        dags,
        known,
        uri,
    })
}

/// `GET /api/v2/assets` (`limit`, `offset`, `order_by` `id`/`name`/`uri`/`created_at`/
/// `updated_at`, `name_pattern`, `uri_pattern`, `dag_ids`): `AssetCollectionResponse`, the
/// assets the caller may read.
pub async fn list(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "assets:GetAsset", StatusCode::OK, |ctx| {
        ctx.filtered("weft:asset:*");
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(&["id", "name", "uri", "created_at", "updated_at"], "id")?;
        let name_pat = q.get("name_pattern");
        let uri_pat = q.get("uri_pattern");
        let dag_ids = q.all("dag_ids");
        let store = sched_store(&app)?;
        let (dags, _, _) = crate::rest::load_dags(&app);
        let stats = store.asset_stats().map_err(store_err)?;
        let known = known_assets(&dags, &stats);
        let now = dags_time();
        let mut out = Vec::new();
        for (uri, k) in &known {
            if !ctx.may("assets:GetAsset", &asset_resource(uri)) {
                continue;
            }
            if name_pat.is_some_and(|p| !super::dags::like(p, uri))
                || uri_pat.is_some_and(|p| !super::dags::like(p, uri))
            {
                continue;
            }
            if !dag_ids.is_empty()
                && !dag_ids.iter().any(|d| {
                    k.consuming.iter().any(|c| c == d) || k.producing.iter().any(|(p, _)| p == d)
                })
            {
                continue;
            }
            out.push(asset_json(uri, k, &now));
        }
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"assets": page.take(out), "total_entries": total}))
    })
}

/// `GET /api/v2/assets/{asset_id}`: `AssetResponse`.
pub async fn get(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "assets:GetAsset", StatusCode::OK, |ctx| {
        let id = parse_asset_id(&raw)?;
        let OneAsset { known, uri, .. } = one_asset(&app, ctx, id)?;
        Ok(asset_json(&uri, &known[&uri], &dags_time()))
    })
}

/// The runs each event triggered: event id -> `DagRunAssetReference`s.
fn created_runs(
    store: &weft_engine::scheduler::SchedStore,
    dags: &[Dag],
) -> Result<BTreeMap<i64, Vec<Value>>, ApiError> {
    let mut out: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for d in dags.iter().filter(|d| condition_of(d).is_some()) {
        for r in store.runs_of(&d.dag_id).map_err(store_err)? {
            if r.run_type != weft_engine::scheduler::assets::ASSET_TRIGGERED {
                continue;
            }
            let ids = store
                .triggering_event_ids(&r.dag_id, &r.run_id)
                .map_err(store_err)?;
            // (Airflow: the run's most recent consumed event is the one that triggered it)
            let last = ids.iter().max().copied();
            let v = json!({
                "run_id": r.run_id, "dag_id": r.dag_id,
                "logical_date": iso(&r.logical_date),
                "start_date": super::iso_opt(r.start_date.as_ref().or(Some(&r.queued_at))),
                "end_date": super::iso_opt(r.end_date.as_ref()),
                "state": r.state,
                "data_interval_start": iso(&r.data_interval_start),
                "data_interval_end": iso(&r.data_interval_end),
                "partition_key": Value::Null,
            });
            for id in ids {
                let mut v = v.clone();
                v["triggering"] = Value::Bool(Some(id) == last);
                out.entry(id).or_default().push(v);
            }
        }
    }
    Ok(out)
}

/// `GET /api/v2/assets/events` (`asset_id`, `source_dag_id`, `source_task_id`,
/// `source_run_id`, `source_map_index`, `timestamp_gte`/`_lte`, `limit`, `offset`, `order_by`
/// `id`/`timestamp`/`source_dag_id`/...): `AssetEventCollectionResponse`, the events of the
/// assets the caller may read.
pub async fn list_events(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "assets:GetAssetEvent", StatusCode::OK, |ctx| {
        ctx.filtered("weft:asset:*");
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(
            &[
                "id",
                "timestamp",
                "asset_id",
                "source_dag_id",
                "source_task_id",
                "source_run_id",
                "source_map_index",
            ],
            "timestamp",
        )?;
        let want_asset = q.get("asset_id").map(parse_asset_id).transpose()?;
        let want_map = q.get("source_map_index").map(|m| {
            m.parse::<i64>().map_err(|_| {
                unprocessable(
                    &["query", "source_map_index"],
                    "Input should be a valid integer",
                )
            })
        });
        let want_map = want_map.transpose()?;
        let store = sched_store(&app)?;
        // the assets with events, narrowed to those the caller may read (and `asset_id`)
        let mut uris: Vec<String> = store
            .asset_stats()
            .map_err(store_err)?
            .into_iter()
            .map(|s| s.uri)
            .collect();
        let all = uris.len();
        uris.retain(|u| {
            ctx.may("assets:GetAssetEvent", &asset_resource(u))
                && want_asset.is_none_or(|a| a == asset_id(u))
        });
        let mut rank = uris.clone();
        rank.sort_by_key(|u| asset_id(u));
        let by = |f: &str| match f {
            "id" => AssetEventOrder::Id,
            "timestamp" => AssetEventOrder::Timestamp,
            "asset_id" => AssetEventOrder::Asset,
            "source_dag_id" => AssetEventOrder::SourceDagId,
            "source_task_id" => AssetEventOrder::SourceTaskId,
            "source_run_id" => AssetEventOrder::SourceRunId,
            _ => AssetEventOrder::SourceMapIndex,
        };
        let query = AssetEventQuery {
            uris: (uris.len() < all || want_asset.is_some()).then_some(uris),
            source_dag_id: q.get("source_dag_id").map(str::to_string),
            source_task_id: q.get("source_task_id").map(str::to_string),
            source_run_id: q.get("source_run_id").map(str::to_string),
            source_map_index: want_map,
            timestamp_gte: q.date("timestamp_gte")?,
            timestamp_lte: q.date("timestamp_lte")?,
            order: order.iter().map(|&(f, d)| (by(f), d)).collect(),
            asset_rank: rank,
            limit: page.limit,
            offset: page.offset,
        };
        let found = store.asset_events_page(&query).map_err(store_err)?;
        let (dags, _, _) = crate::rest::load_dags(&app);
        let created = created_runs(&store, &dags)?;
        let out: Vec<Value> = found
            .events
            .iter()
            .map(|e| event_json(e, &created.get(&e.id).cloned().unwrap_or_default()))
            .collect();
        Ok(json!({"asset_events": out, "total_entries": found.total}))
    })
}

/// `POST /api/v2/assets/events` `{"asset_id": ID, "extra": {...}}` (`CreateAssetEventsBody`):
/// records an event of a known asset (`extra` up to 64 KiB, marked `from_rest_api` as Airflow
/// does) and queues it for the DAGs scheduled on it; `AssetEventResponse`.
pub async fn create_event(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(
        &app,
        &req,
        "assets:CreateAssetEvent",
        StatusCode::OK,
        |ctx| {
            let body = body_object(&req)?;
            only_fields(
                &body,
                &["asset_id", "extra", "partition_key", "access_control"],
            )?;
            // partitioned assets and per-event access control are not kept by weft
            for k in ["partition_key", "access_control"] {
                if body.get(k).is_some_and(|v| !v.is_null()) {
                    return Err(unprocessable(
                        &["body", k],
                        format!("`{k}` is not supported by weft"),
                    ));
                }
            }
            let id = match body.get("asset_id") {
                Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                    unprocessable(&["body", "asset_id"], "Input should be a valid integer")
                })?,
                Some(_) => {
                    return Err(unprocessable(
                        &["body", "asset_id"],
                        "Input should be a valid integer",
                    ))
                }
                None => return Err(unprocessable(&["body", "asset_id"], "Field required")),
            };
            let mut extra: Map<String, Value> = match body.get("extra") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(_) => {
                    return Err(unprocessable(
                        &["body", "extra"],
                        "Input should be a valid dictionary",
                    ))
                }
            };
            let size = serde_json::to_vec(&extra).map_or(usize::MAX, |v| v.len());
            if size > MAX_EXTRA_BYTES {
                return Err(super::bad_request(format!(
                    "`extra` is {size} bytes of JSON, more than the {MAX_EXTRA_BYTES} an asset event may carry"
                ))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            extra.insert("from_rest_api".into(), Value::Bool(true));
            // the id names a canonical URI: what is authorised is what is stored
            let OneAsset {
                store, dags, uri, ..
            } = one_asset(&app, ctx, id)?;
            let consumers = consumers_of(&dags, &uri);
            let ev = AssetEvent {
                id: 0,
                uri,
                extra,
                source_dag_id: None,
                source_task_id: None,
                source_run_id: None,
                source_map_index: -1,
                source_aliases: Vec::new(),
                timestamp: chrono::Utc::now(),
            };
            let ev = store.add_asset_event(&ev, &consumers).map_err(store_err)?;
            tracing::info!(uri = %ev.uri, event_id = ev.id, consumers = consumers.len(), caller = %ctx.caller(), "asset event posted");
            Ok(event_json(&ev, &[]))
        },
    )
}

/// `GET /api/v2/assets/{asset_id}/queuedEvents`: `QueuedEventCollectionResponse`, the DAGs
/// waiting on the asset (those the caller may read).
pub async fn asset_queued(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "assets:GetAsset", StatusCode::OK, |ctx| {
        let id = parse_asset_id(&raw)?;
        let OneAsset {
            store, dags, uri, ..
        } = one_asset(&app, ctx, id)?;
        let out: Vec<Value> = store
            .asset_queue(None)
            .map_err(store_err)?
            .iter()
            .filter(|q| q.uri == uri && ctx.may("dags:GetDag", &format!("weft:dag:{}", q.dag_id)))
            .map(|q| queued_json(q, &dags))
            .collect();
        let total = out.len();
        Ok(json!({"queued_events": out, "total_entries": total}))
    })
}

/// `GET /api/v2/dags/{dag_id}/assets/queuedEvents`: the events a DAG's asset schedule is
/// waiting on (one entry per asset, the oldest queued time).
pub async fn dag_queued(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let dag = super::dags::find(&app, &dag_id)?;
        let store = sched_store(&app)?;
        let mut first: BTreeMap<String, QueuedAssetEvent> = BTreeMap::new();
        for q in store.asset_queue(Some(&dag.dag_id)).map_err(store_err)? {
            first.entry(q.uri.clone()).or_insert(q);
        }
        let dags = [dag];
        let out: Vec<Value> = first
            .values()
            .filter(|q| ctx.may("assets:GetAsset", &asset_resource(&q.uri)))
            .map(|q| queued_json(q, &dags))
            .collect();
        let total = out.len();
        Ok(json!({"queued_events": out, "total_entries": total}))
    })
}

/// `GET /api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents`: `QueuedEventResponse` (404 when
/// nothing of that asset is queued for the DAG).
pub async fn dag_asset_queued(
    State(app): State<Arc<AppState>>,
    Path((dag_id, raw)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "assets:GetAsset", StatusCode::OK, |ctx| {
        ctx.authorize_also("dags:GetDag", &dag_resource(&dag_id)?)?;
        let id = parse_asset_id(&raw)?;
        let dag = super::dags::find(&app, &dag_id)?;
        let OneAsset { store, uri, .. } = one_asset(&app, ctx, id)?;
        let first = store
            .asset_queue(Some(&dag.dag_id))
            .map_err(store_err)?
            .into_iter()
            .find(|q| q.uri == uri)
            .ok_or_else(|| {
                not_found(format!(
                    "Queue event with dag_id: `{}` and asset id: `{id}` was not found",
                    dag.dag_id
                ))
            })?;
        Ok(queued_json(&first, &[dag]))
    })
}

/// `DELETE /api/v2/assets/{asset_id}/queuedEvents`: the asset's queued events, for every DAG
/// (204; 404 when none was queued).
pub async fn delete_asset_queued(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "assets:DeleteQueuedEvent",
        StatusCode::NO_CONTENT,
        |ctx| {
            let id = parse_asset_id(&raw)?;
            let OneAsset { store, uri, .. } = one_asset(&app, ctx, id)?;
            let n = store
                .delete_asset_queue(None, Some(&[uri]))
                .map_err(store_err)?;
            if n == 0 {
                return Err(not_found(format!(
                    "Queue event with asset_id: `{id}` was not found"
                )));
            }
            Ok(Value::Null)
        },
    )
}

/// `DELETE /api/v2/dags/{dag_id}/assets/queuedEvents`: the DAG's queued events of the assets
/// the caller may delete them for (204; 404 when none was deleted).
pub async fn delete_dag_queued(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "assets:DeleteQueuedEvent",
        StatusCode::NO_CONTENT,
        |ctx| {
            ctx.authorize_also("dags:GetDag", &dag_resource(&dag_id)?)?;
            ctx.filtered("weft:asset:*");
            let dag = super::dags::find(&app, &dag_id)?;
            let store = sched_store(&app)?;
            let uris: Vec<String> = store
                .asset_queue(Some(&dag.dag_id))
                .map_err(store_err)?
                .into_iter()
                .map(|q| q.uri)
                .filter(|u| ctx.may("assets:DeleteQueuedEvent", &asset_resource(u)))
                .collect();
            let n = if uris.is_empty() {
                0
            } else {
                store
                    .delete_asset_queue(Some(&dag.dag_id), Some(&uris))
                    .map_err(store_err)?
            };
            if n == 0 {
                return Err(not_found(format!(
                    "Queue event with dag_id: `{}` was not found",
                    dag.dag_id
                )));
            }
            Ok(Value::Null)
        },
    )
}

/// `DELETE /api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents` (204; 404 when none).
pub async fn delete_dag_asset_queued(
    State(app): State<Arc<AppState>>,
    Path((dag_id, raw)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "assets:DeleteQueuedEvent",
        StatusCode::NO_CONTENT,
        |ctx| {
            ctx.authorize_also("dags:GetDag", &dag_resource(&dag_id)?)?;
            let id = parse_asset_id(&raw)?;
            let dag = super::dags::find(&app, &dag_id)?;
            let OneAsset { store, uri, .. } = one_asset(&app, ctx, id)?;
            let n = store
                .delete_asset_queue(Some(&dag.dag_id), Some(&[uri]))
                .map_err(store_err)?;
            if n == 0 {
                return Err(not_found(format!(
                    "Queue event with dag_id: `{}` and asset id: `{id}` was not found",
                    dag.dag_id
                )));
            }
            Ok(Value::Null)
        },
    )
}
