//! The file-arrival trigger: a DAG whose `trigger:` names a directory and a file-name glob gets
//! a run each time a matching file appears there (or is rewritten), found by polling.
//!
//! Every file seen is recorded in sled with its modification time, so a restarted scheduler
//! does not trigger again for files it already handled. The run's conf carries the file
//! (`{{ dag_run.conf.file }}` / `{{ params.file }}`), with `path` (absolute) and `name`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Map, Value};
use weft_dag::{Dag, FileTriggerSpec};

use super::store::SchedStore;
use super::SchedulerError;

/// One DAG's file-arrival trigger and when it was last polled.
pub struct FileTrigger {
    /// The DAG id.
    pub dag_id: String,
    /// What to watch.
    pub spec: FileTriggerSpec,
    /// The directory, resolved against the DAG file's folder.
    pub dir: PathBuf,
    last_poll: Option<Instant>,
}

impl FileTrigger {
    /// The DAG's trigger, if it has one.
    pub fn of(dag: &Dag) -> Option<FileTrigger> {
        let spec = dag.file_trigger()?;
        let p = Path::new(&spec.path);
        let dir = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dag.file.parent().unwrap_or(Path::new(".")).join(p)
        };
        Some(FileTrigger {
            dag_id: dag.dag_id.clone(),
            spec,
            dir,
            last_poll: None,
        })
    }

    /// Whether a poll is due.
    pub fn due(&self) -> bool {
        self.last_poll
            .is_none_or(|t| t.elapsed() >= self.spec.poll_interval)
    }

    /// List the directory and return the conf of a run for every new or changed matching file
    /// (oldest first), recording them as seen.
    pub fn poll(&mut self, store: &SchedStore) -> Result<Vec<Map<String, Value>>, SchedulerError> {
        self.last_poll = Some(Instant::now());
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dag_id = %self.dag_id, dir = %self.dir.display(), error = %e, "file trigger: cannot list the watched directory");
                return Ok(Vec::new());
            }
        };
        let mut found: Vec<(f64, PathBuf, String)> = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !weft_sandbox::policy::glob_match(&self.spec.glob, &name) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            found.push((mtime, e.path(), name));
        }
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut out = Vec::new();
        for (mtime, path, name) in found {
            let shown = path.display().to_string();
            if store.see_file(&self.dag_id, &shown, mtime)? {
                continue;
            }
            let abs = std::fs::canonicalize(&path).unwrap_or(path);
            let mut conf = Map::new();
            conf.insert(
                "file".into(),
                json!({"path": abs.display().to_string(), "name": name, "mtime": mtime}),
            );
            out.push(conf);
        }
        Ok(out)
    }
}
