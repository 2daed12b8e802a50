//! Asset events and the per-DAG queue that asset schedules read, as Airflow keeps them.
//!
//! A task instance that succeeds emits one [`AssetEvent`] per asset its `outlets` name, plus one
//! per event its Python callable added through an asset alias (recorded with `source_aliases`),
//! and an event posted through the API is one more; every loaded DAG whose asset condition
//! names that asset, or an alias the event came through, gets a [`QueuedAssetEvent`]. The scheduler creates a run of a DAG once its condition
//! holds over the assets with queued events, and creating the run consumes exactly the queued
//! events it read, in the same transaction ([`crate::persistence::DagStore::create_asset_run`]):
//! a restart neither loses queued events nor counts them twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weft_dag::assets::Condition;
use weft_dag::{Dag, Schedule};

/// Largest `extra` of one asset event, in bytes of JSON.
pub const MAX_EXTRA_BYTES: usize = 64 * 1024;

/// The run type of asset-triggered runs (Airflow 3's name).
pub const ASSET_TRIGGERED: &str = "asset_triggered";

/// One asset event as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetEvent {
    /// Assigned by the store (increasing).
    #[serde(default)]
    pub id: i64,
    /// The asset's canonical URI.
    pub uri: String,
    /// Free-form data the producer attached.
    #[serde(default)]
    pub extra: Map<String, Value>,
    /// The producing DAG (`None` for events posted through the API).
    #[serde(default)]
    pub source_dag_id: Option<String>,
    /// The producing task.
    #[serde(default)]
    pub source_task_id: Option<String>,
    /// The producing run.
    #[serde(default)]
    pub source_run_id: Option<String>,
    /// The producing instance's map index (-1 when not mapped or posted).
    #[serde(default = "minus_one")]
    pub source_map_index: i64,
    /// The asset aliases the event was emitted through (`outlet_events[AssetAlias(..)].add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_aliases: Vec<String>,
    /// When the event was recorded.
    pub timestamp: DateTime<Utc>,
}

fn minus_one() -> i64 {
    -1
}

impl AssetEvent {
    /// The event as templates see it (`triggering_asset_events[uri][n]`).
    pub fn to_context(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "uri": self.uri,
            "asset": {"uri": self.uri, "name": self.uri},
            "extra": self.extra,
            "source_dag_id": self.source_dag_id,
            "source_task_id": self.source_task_id,
            "source_run_id": self.source_run_id,
            "source_map_index": self.source_map_index,
            "source_aliases": self.source_aliases.iter().map(|a| serde_json::json!({"name": a})).collect::<Vec<_>>(),
            "timestamp": self.timestamp.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
        })
    }
}

/// One event waiting in a DAG's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedAssetEvent {
    /// The DAG whose condition names the asset.
    pub dag_id: String,
    /// The asset's canonical URI.
    pub uri: String,
    /// The event's id.
    pub event_id: i64,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The aliases the event was emitted through (an alias leaf of the DAG's condition is
    /// satisfied by them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_aliases: Vec<String>,
}

/// The asset id weft shows for a canonical URI: stable across restarts and stores (the first
/// 48 bits of its BLAKE3 hash, so it stays exact in JSON numbers).
pub fn asset_id(uri: &str) -> i64 {
    let h = blake3::hash(uri.as_bytes());
    let b = h.as_bytes();
    let mut v = [0u8; 8];
    v[2..].copy_from_slice(&b[..6]);
    i64::from_be_bytes(v)
}

/// A DAG's asset condition (`None` when its schedule is not asset-based or does not parse).
pub fn condition_of(dag: &Dag) -> Option<Condition> {
    match &dag.schedule {
        Schedule::Assets { condition, .. } => Condition::parse(condition).ok(),
        _ => None,
    }
}

/// The DAGs among `dags` whose asset condition names `uri`, by DAG id.
pub fn consumers_of<'a>(dags: impl IntoIterator<Item = &'a Dag>, uri: &str) -> Vec<String> {
    consumers_of_event(dags, uri, &[])
}

/// The DAGs among `dags` whose asset condition names `uri` or one of `aliases` (the aliases an
/// event was emitted through), by DAG id.
pub fn consumers_of_event<'a>(
    dags: impl IntoIterator<Item = &'a Dag>,
    uri: &str,
    aliases: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = dags
        .into_iter()
        .filter(|d| {
            condition_of(d).is_some_and(|c| {
                c.uris().iter().any(|u| u == uri) || c.aliases().iter().any(|a| aliases.contains(a))
            })
        })
        .map(|d| d.dag_id.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The canonical URIs a task's `outlets` name (empty when it has none; the loader already
/// refused outlets that do not parse).
pub fn outlets_of(task: &weft_dag::Task) -> Vec<String> {
    task.extra
        .get("outlets")
        .and_then(|v| weft_dag::assets::outlet_uris(v).ok())
        .unwrap_or_default()
}

/// The alias names a task's `outlets` name (empty when it has none).
pub fn outlet_aliases_of(task: &weft_dag::Task) -> Vec<String> {
    task.extra
        .get("outlets")
        .and_then(|v| weft_dag::assets::outlet_aliases(v).ok())
        .unwrap_or_default()
}

/// `triggering_asset_events` as templates see it: URI -> the events, oldest first.
pub fn triggering_context(events: &[AssetEvent]) -> Value {
    let mut by_uri: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for e in events {
        by_uri.entry(&e.uri).or_default().push(e.to_context());
    }
    Value::Object(
        by_uri
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::Array(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_json_safe() {
        let a = asset_id("s3://b/k");
        assert_eq!(a, asset_id("s3://b/k"));
        assert_ne!(a, asset_id("s3://b/k2"));
        assert!((0..(1i64 << 48)).contains(&a));
    }
}
