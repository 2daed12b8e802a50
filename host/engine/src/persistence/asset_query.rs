//! One page of asset events as a [`DagStore`](super::DagStore) answers it: the filter
//! ([`AssetEventQuery`]: assets, source DAG/task/run/map index, timestamp bounds), the order
//! ([`AssetEventOrder`], ties broken by event id) and `limit`/`offset`, so the Airflow API pages
//! events in the database instead of loading every event; and [`AssetStats`], what each asset's
//! events sum up to (count, first and last event) without reading them.
//!
//! The in-memory evaluation here ([`AssetEventQuery::matches`], [`AssetEventQuery::compare`],
//! [`TopK`]) is what sled runs while it scans, and the reference PostgreSQL's SQL must agree
//! with: nulls sort first ascending, text bytewise.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::scheduler::AssetEvent;

/// Most events one page holds.
pub const MAX_PAGE: usize = 1_000;

/// What an event list is ordered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetEventOrder {
    /// The event id (its recording order).
    Id,
    /// The event's timestamp.
    Timestamp,
    /// The asset, in the order of [`AssetEventQuery::asset_rank`] (by URI without it).
    Asset,
    /// The producing DAG.
    SourceDagId,
    /// The producing task.
    SourceTaskId,
    /// The producing run.
    SourceRunId,
    /// The producing instance's map index.
    SourceMapIndex,
}

/// Which events, in what order, which page.
#[derive(Debug, Clone)]
pub struct AssetEventQuery {
    /// Only events of these assets (canonical URIs); `None`: every asset.
    pub uris: Option<Vec<String>>,
    pub source_dag_id: Option<String>,
    pub source_task_id: Option<String>,
    pub source_run_id: Option<String>,
    pub source_map_index: Option<i64>,
    /// Events at or after.
    pub timestamp_gte: Option<DateTime<Utc>>,
    /// Events at or before.
    pub timestamp_lte: Option<DateTime<Utc>>,
    /// Sort keys, each descending when `true`; the event id (ascending) breaks ties.
    pub order: Vec<(AssetEventOrder, bool)>,
    /// The order of assets for [`AssetEventOrder::Asset`] (URIs; others after them, by URI).
    pub asset_rank: Vec<String>,
    /// Page size (capped to [`MAX_PAGE`]).
    pub limit: usize,
    /// Events skipped before the page.
    pub offset: usize,
}

impl Default for AssetEventQuery {
    fn default() -> Self {
        AssetEventQuery {
            uris: None,
            source_dag_id: None,
            source_task_id: None,
            source_run_id: None,
            source_map_index: None,
            timestamp_gte: None,
            timestamp_lte: None,
            order: vec![(AssetEventOrder::Id, false)],
            asset_rank: Vec::new(),
            limit: 100,
            offset: 0,
        }
    }
}

/// One page and how many events match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetEventPage {
    pub events: Vec<AssetEvent>,
    pub total: usize,
}

/// What one asset's recorded events sum up to.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetStats {
    /// The asset's canonical URI.
    pub uri: String,
    /// How many events it has.
    pub count: u64,
    /// When its first event (lowest id) was recorded.
    pub first_timestamp: DateTime<Utc>,
    /// Its latest event (highest id).
    pub last_id: i64,
    /// When that event was recorded.
    pub last_timestamp: DateTime<Utc>,
}

fn cmp_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
    // nulls first, as the API sorts them
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

impl AssetEventQuery {
    /// The page size in effect.
    pub fn page_size(&self) -> usize {
        self.limit.min(MAX_PAGE)
    }

    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &AssetEvent) -> bool {
        let same = |want: &Option<String>, got: &Option<String>| {
            want.as_ref().is_none_or(|w| got.as_deref() == Some(w))
        };
        self.uris.as_ref().is_none_or(|u| u.contains(&e.uri))
            && same(&self.source_dag_id, &e.source_dag_id)
            && same(&self.source_task_id, &e.source_task_id)
            && same(&self.source_run_id, &e.source_run_id)
            && self
                .source_map_index
                .is_none_or(|m| m == e.source_map_index)
            && self.timestamp_gte.is_none_or(|t| e.timestamp >= t)
            && self.timestamp_lte.is_none_or(|t| e.timestamp <= t)
    }

    fn rank(&self, uri: &str) -> (usize, String) {
        match self.asset_rank.iter().position(|u| u == uri) {
            Some(n) => (n, String::new()),
            None => (self.asset_rank.len(), uri.to_string()),
        }
    }

    /// The order of two events.
    pub fn compare(&self, a: &AssetEvent, b: &AssetEvent) -> Ordering {
        for (key, desc) in &self.order {
            let o = match key {
                AssetEventOrder::Id => a.id.cmp(&b.id),
                AssetEventOrder::Timestamp => a.timestamp.cmp(&b.timestamp),
                AssetEventOrder::Asset => self.rank(&a.uri).cmp(&self.rank(&b.uri)),
                AssetEventOrder::SourceDagId => cmp_opt(
                    a.source_dag_id.as_deref().map(str::as_bytes),
                    b.source_dag_id.as_deref().map(str::as_bytes),
                ),
                AssetEventOrder::SourceTaskId => cmp_opt(
                    a.source_task_id.as_deref().map(str::as_bytes),
                    b.source_task_id.as_deref().map(str::as_bytes),
                ),
                AssetEventOrder::SourceRunId => cmp_opt(
                    a.source_run_id.as_deref().map(str::as_bytes),
                    b.source_run_id.as_deref().map(str::as_bytes),
                ),
                AssetEventOrder::SourceMapIndex => a.source_map_index.cmp(&b.source_map_index),
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.id.cmp(&b.id)
    }
}

/// The first `offset + limit` events of a scan in a query's order, holding at most twice that
/// many at a time, and the count of all that matched.
pub struct TopK<'a> {
    q: &'a AssetEventQuery,
    keep: usize,
    held: Vec<AssetEvent>,
    total: usize,
}

impl<'a> TopK<'a> {
    pub fn new(q: &'a AssetEventQuery) -> Self {
        TopK {
            q,
            keep: q.offset.saturating_add(q.page_size()),
            held: Vec::new(),
            total: 0,
        }
    }

    /// Offers one scanned event.
    pub fn offer(&mut self, e: AssetEvent) {
        if !self.q.matches(&e) {
            return;
        }
        self.total += 1;
        if self.keep == 0 {
            return;
        }
        self.held.push(e);
        if self.held.len() >= self.keep.saturating_mul(2) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let q = self.q;
        self.held.sort_by(|a, b| q.compare(a, b));
        self.held.truncate(self.keep);
    }

    /// The page.
    pub fn finish(mut self) -> AssetEventPage {
        self.trim();
        let events = self
            .held
            .into_iter()
            .skip(self.q.offset)
            .take(self.q.page_size())
            .collect();
        AssetEventPage {
            events,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, uri: &str, dag: Option<&str>, secs: i64) -> AssetEvent {
        AssetEvent {
            id,
            uri: uri.into(),
            extra: Default::default(),
            source_dag_id: dag.map(str::to_string),
            source_task_id: None,
            source_run_id: None,
            source_map_index: -1,
            source_aliases: Vec::new(),
            timestamp: DateTime::from_timestamp(secs, 0).unwrap(),
        }
    }

    #[test]
    fn a_scan_keeps_only_the_page_in_order() {
        let q = AssetEventQuery {
            order: vec![(AssetEventOrder::Timestamp, true)],
            limit: 3,
            offset: 2,
            ..Default::default()
        };
        let mut k = TopK::new(&q);
        for i in 0..100 {
            // timestamps out of id order
            k.offer(ev(i, "s3://a", None, (i * 37) % 100));
            assert!(k.held.len() <= 10);
        }
        let p = k.finish();
        assert_eq!(p.total, 100);
        let ts: Vec<i64> = p.events.iter().map(|e| e.timestamp.timestamp()).collect();
        assert_eq!(ts, [97, 96, 95]);
    }

    #[test]
    fn filters_nulls_and_asset_ranks() {
        let q = AssetEventQuery {
            uris: Some(vec!["s3://a".into(), "s3://b".into()]),
            order: vec![(AssetEventOrder::SourceDagId, false)],
            ..Default::default()
        };
        let mut k = TopK::new(&q);
        k.offer(ev(1, "s3://a", Some("d"), 1));
        k.offer(ev(2, "s3://c", None, 1));
        k.offer(ev(3, "s3://b", None, 1));
        let p = k.finish();
        assert_eq!(p.total, 2);
        assert_eq!(p.events[0].id, 3, "null first");
        let q = AssetEventQuery {
            order: vec![(AssetEventOrder::Asset, false)],
            asset_rank: vec!["s3://z".into(), "s3://a".into()],
            ..Default::default()
        };
        let a = ev(1, "s3://a", None, 1);
        let z = ev(2, "s3://z", None, 1);
        let other = ev(3, "s3://b", None, 1);
        assert_eq!(q.compare(&z, &a), Ordering::Less);
        assert_eq!(q.compare(&a, &other), Ordering::Less);
    }
}
