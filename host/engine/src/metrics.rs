//! Labelled metric series with a cardinality guard: [`Series`] keeps a sum and a count per
//! combination of label values, and folds label values beyond its cap into `other` so that a
//! flood of DAG ids, task ids or state machines cannot grow the process's memory or a scrape
//! without bound. [`DagMetrics`] is the DAG scheduler's set, named after Airflow's metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The label value that stands for every value past the cap.
pub const OTHER: &str = "other";

/// Distinct label combinations a series keeps by default (`WEFT_METRICS_MAX_SERIES` overrides).
pub const DEFAULT_MAX_SERIES: usize = 1000;

/// The cap from `$WEFT_METRICS_MAX_SERIES` (at least 1), else [`DEFAULT_MAX_SERIES`].
pub fn max_series_from_env() -> usize {
    std::env::var("WEFT_METRICS_MAX_SERIES")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(DEFAULT_MAX_SERIES, |n| n.max(1))
}

/// One sample: a sum (a counter's value, a gauge's value, a summary's sum) and a count of
/// observations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Sum, or the value.
    pub sum: f64,
    /// Observations.
    pub count: u64,
}

/// Samples by label values, at most `cap` combinations (then `other` for every label).
#[derive(Debug)]
pub struct Series {
    cap: usize,
    map: Mutex<BTreeMap<Vec<String>, Sample>>,
}

impl Series {
    /// An empty series keeping at most `cap` label combinations besides `other`.
    pub fn new(cap: usize) -> Self {
        Series {
            cap: cap.max(1),
            map: Mutex::new(BTreeMap::new()),
        }
    }

    fn with(&self, labels: &[&str], f: impl FnOnce(&mut Sample)) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let key = if map.contains_key(&key) || map.len() < self.cap {
            key
        } else {
            vec![OTHER.to_string(); labels.len()]
        };
        f(map.entry(key).or_default());
    }

    /// Adds `v` (a counter, or a summary's observation).
    pub fn observe(&self, labels: &[&str], v: f64) {
        self.with(labels, |s| {
            s.sum += v;
            s.count += 1;
        });
    }

    /// Sets a gauge.
    pub fn set(&self, labels: &[&str], v: f64) {
        self.with(labels, |s| {
            s.sum = v;
            s.count = 1;
        });
    }

    /// Every sample, by label values.
    pub fn snapshot(&self) -> Vec<(Vec<String>, Sample)> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// The DAG scheduler's metrics, as Airflow names them (Prometheus names as Airflow's StatsD
/// exporter mapping gives them, `airflow_` prefix added by the renderer).
#[derive(Debug)]
pub struct DagMetrics {
    /// `dagrun.duration.success` by `dag_id`, seconds.
    pub dagrun_duration_success: Series,
    /// `dagrun.duration.failed` by `dag_id`, seconds.
    pub dagrun_duration_failed: Series,
    /// `ti_successes` by `dag_id`, `task_id`.
    pub ti_successes: Series,
    /// `ti_failures` by `dag_id`, `task_id`.
    pub ti_failures: Series,
    /// `task.duration` by `dag_id`, `task_id`, seconds (every finished try).
    pub task_duration: Series,
    /// `scheduler_heartbeat`: loop ticks.
    pub scheduler_heartbeat: Series,
    /// `pool.open_slots` by `pool`.
    pub pool_open_slots: Series,
    /// `pool.queued_slots` by `pool`.
    pub pool_queued_slots: Series,
    /// `pool.running_slots` by `pool`.
    pub pool_running_slots: Series,
    /// `executor.open_slots`.
    pub executor_open_slots: Series,
    /// `executor.queued_tasks`.
    pub executor_queued_tasks: Series,
    /// `executor.running_tasks`.
    pub executor_running_tasks: Series,
    /// `dag_processing.import_errors`.
    pub dag_processing_import_errors: Series,
    /// `dag_processing.total_parse_time`, seconds.
    pub dag_processing_total_parse_time: Series,
    /// `dag_processing.file_path_queue_size`-like: DAG files loaded at the last parse.
    pub dag_processing_dag_count: Series,
}

impl DagMetrics {
    /// Empty series, each capped at `cap` label combinations.
    pub fn new(cap: usize) -> Self {
        let s = || Series::new(cap);
        DagMetrics {
            dagrun_duration_success: s(),
            dagrun_duration_failed: s(),
            ti_successes: s(),
            ti_failures: s(),
            task_duration: s(),
            scheduler_heartbeat: s(),
            pool_open_slots: s(),
            pool_queued_slots: s(),
            pool_running_slots: s(),
            executor_open_slots: s(),
            executor_queued_tasks: s(),
            executor_running_tasks: s(),
            dag_processing_import_errors: s(),
            dag_processing_total_parse_time: s(),
            dag_processing_dag_count: s(),
        }
    }
}

impl Default for DagMetrics {
    fn default() -> Self {
        DagMetrics::new(max_series_from_env())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_past_the_cap_fold_into_other() {
        let s = Series::new(2);
        for d in ["a", "b", "c", "d", "a"] {
            s.observe(&[d, "t"], 1.0);
        }
        let snap = s.snapshot();
        let keys: Vec<String> = snap.iter().map(|(k, _)| k.join("/")).collect();
        assert_eq!(keys, ["a/t", "b/t", "other/other"]);
        assert_eq!(snap[0].1.count, 2);
        assert_eq!(snap[2].1.count, 2, "c and d");
        s.set(&["b", "t"], 7.0);
        assert_eq!(s.snapshot()[1].1.sum, 7.0);
    }
}
