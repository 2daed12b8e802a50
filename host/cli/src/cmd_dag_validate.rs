//! `weft validate` / `weft dag validate` for DAG files and DAG folders: every DAG found, each
//! file skipped because it is not a DAG file (with why), each warning, and every error with its
//! `file:line` (exit 2).
//!
//! A file inside the DAG folder (`$WEFT_DAGS`, else `$WEFT_HOME/dags`) is checked as part of that
//! folder: the folder's `weft.yaml` maps its operators and the `defaults.yml` files from the
//! folder down apply, as when the scheduler loads it. Any other file is its own folder's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use weft_dag::{Dag, DagError};

use crate::context::{open_plugin_store, usage};

/// The DAG folder a file belongs to.
fn root_for(file: &Path) -> PathBuf {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dags = crate::cmd_dag::dags_dir(None);
    match (file.canonicalize(), dags.canonicalize()) {
        (Ok(f), Ok(d)) if f.starts_with(&d) => dags,
        _ => parent,
    }
}

/// Check one DAG file.
pub fn file(path: &Path, json: bool) -> Result<ExitCode> {
    let store = open_plugin_store()?;
    let check = crate::cmd_dag::known(&store);
    let (dags, errors) = weft_dag::load_dag_file_in(&root_for(path), path, &check);
    report(&dags, &[], &errors, json)
}

/// Check every DAG file of a DAG folder.
pub fn folder(dir: &Path, json: bool) -> Result<ExitCode> {
    let store = open_plugin_store()?;
    let check = crate::cmd_dag::known(&store);
    let load = weft_dag::load_folder(dir, &check);
    if load.dags.is_empty() && load.errors.is_empty() {
        report(&[], &load.skipped, &[], json)?;
        return Err(usage(format!("{}: no DAG file found", dir.display())));
    }
    report(&load.dags, &load.skipped, &load.errors, json)
}

fn report(dags: &[Dag], skipped: &[DagError], errors: &[DagError], json: bool) -> Result<ExitCode> {
    if json {
        let v = serde_json::json!({
            "dags": dags.iter().map(|d| serde_json::json!({
                "file": d.file.display().to_string(), "dag_id": d.dag_id,
                "tasks": d.tasks.len(), "warnings": d.warnings,
            })).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    for note in skipped {
        eprintln!("{note}; skipped");
    }
    for d in dags {
        for w in &d.warnings {
            eprintln!("{}: {}: warning: {w}", d.file.display(), d.dag_id);
        }
    }
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(usage(lines.join("\n")));
    }
    for d in dags {
        println!(
            "{}: DAG {} is valid ({} tasks)",
            d.file.display(),
            d.dag_id,
            d.tasks.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
