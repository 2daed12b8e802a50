//! A DAG folder as dag-factory and Airflow see it: which of its files are DAG files, and
//! loading them all.
//!
//! Every `*.yaml` / `*.yml` file under the folder is a candidate (and every `*.py` file, parsed
//! by the check's [`crate::PythonDagEvaluator`] when it mentions `airflow` and `dag`), except the folder's `weft.yaml`
//! (the operator map), dag-factory's `defaults.yml` / `defaults.yaml` files and hidden entries.
//! A candidate that is not a DAG file (empty, a list, a Kubernetes manifest, a datasets list)
//! is skipped with a note, as dag-factory skips it with a log line; a file holding several DAGs
//! yields each of them. `.airflowignore` files leave out what their patterns match, as in
//! Airflow and dag-factory (glob syntax: gitignore's rules, relative to the ignore file's folder;
//! `#` comments, `!` re-includes). Files larger than [`MAX_DAG_FILE_BYTES`] are refused unread,
//! linked folders are followed once (a link loop ends there) and no deeper than
//! [`MAX_FOLDER_DEPTH`].

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use crate::error::DagError;
use crate::load::{
    load_folder_config, parse_file_of_folder, FileOutcome, FolderConfig, OperatorCheck,
    FOLDER_CONFIG,
};
use crate::model::Dag;

/// Largest DAG file read (dag-factory files are a few KiB; this leaves room for generated ones).
pub const MAX_DAG_FILE_BYTES: u64 = 4 << 20;

/// Deepest folder nesting searched below the DAG folder.
pub const MAX_FOLDER_DEPTH: usize = 32;

/// Name of a folder's ignore file.
pub const IGNORE_FILE: &str = ".airflowignore";

/// Largest `.airflowignore` read.
pub const MAX_IGNORE_FILE_BYTES: u64 = 64 << 10;

/// What loading a DAG folder found.
#[derive(Debug, Default)]
pub struct FolderLoad {
    /// DAGs of the files without errors, in file order.
    pub dags: Vec<Dag>,
    /// Problems: each names its file and line.
    pub errors: Vec<DagError>,
    /// Files skipped because they are not DAG files, each with the reason.
    pub skipped: Vec<DagError>,
}

/// Load every DAG file under `dir` (recursively, sorted). DAGs of files with errors are left out;
/// files that are not DAG files are skipped (see [`load_folder`] for the notes).
pub fn load_dags(dir: &Path, check: &dyn OperatorCheck) -> (Vec<Dag>, Vec<DagError>) {
    let load = load_folder(dir, check);
    for note in &load.skipped {
        tracing::debug!(%note, "skipped: not a DAG file");
    }
    (load.dags, load.errors)
}

/// Load every DAG file under `dir`, with a note for each file skipped. A folder whose settings
/// cannot be read (a broken `weft.yaml`, an Airflow setting in the environment that is not a
/// boolean) loads no DAG: that error is the one reported.
pub fn load_folder(dir: &Path, check: &dyn OperatorCheck) -> FolderLoad {
    let mut load = FolderLoad::default();
    // without its settings every file of the folder would be misread: none is loaded
    let mut config = match load_folder_config(dir) {
        Ok(c) => c,
        Err(e) => {
            load.errors.push(e);
            return load;
        }
    };
    config.defaults_root = Some(dir.to_path_buf());
    let mut files = Vec::new();
    let mut walk = Walk {
        root: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
        ..Walk::default()
    };
    walk.collect(dir, 0, &mut files, &mut load.errors);
    files.sort();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let text = match read_dag_file(&file) {
            Ok(t) => t,
            Err(e) => {
                load.errors.push(e);
                continue;
            }
        };
        let (file_dags, file_errors) = match parse_any_file(&file, &text, &config, check) {
            FileOutcome::Parsed(d, e) => (d, e),
            FileOutcome::NotDagFile(note) => {
                load.skipped.push(note);
                continue;
            }
        };
        load.errors.extend(file_errors);
        for dag in file_dags {
            if let Some(other) = seen.get(&dag.dag_id) {
                load.errors.push(DagError {
                    file: dag.file.clone(),
                    line: dag.line,
                    path: dag.dag_id.clone(),
                    dag_id: Some(dag.dag_id.clone()),
                    traceback: None,
                    reason: format!("duplicate dag id, also defined in {}", other.display()),
                });
                continue;
            }
            seen.insert(dag.dag_id.clone(), dag.file.clone());
            load.dags.push(dag);
        }
    }
    load
}

/// Load one DAG file, using the `weft.yaml` and `defaults.yml` of its folder (for
/// `weft validate FILE`).
pub fn load_dag_file(path: &Path, check: &dyn OperatorCheck) -> (Vec<Dag>, Vec<DagError>) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    load_dag_file_in(dir, path, check)
}

/// Load one DAG file of the DAG folder `root`: the root's `weft.yaml` maps operators and the
/// `defaults.yml` files from the root down to the file's folder apply.
pub fn load_dag_file_in(
    root: &Path,
    path: &Path,
    check: &dyn OperatorCheck,
) -> (Vec<Dag>, Vec<DagError>) {
    let mut config = match load_folder_config(root) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut errors = Vec::new();
    config.defaults_root = Some(root.to_path_buf());
    match read_dag_file(path) {
        Ok(text) => {
            let (dags, errs) = match parse_any_file(path, &text, &config, check) {
                FileOutcome::Parsed(d, e) => (d, e),
                FileOutcome::NotDagFile(why) => (Vec::new(), vec![why]),
            };
            errors.extend(errs);
            (dags, errors)
        }
        Err(e) => {
            errors.push(e);
            (Vec::new(), errors)
        }
    }
}

/// Read a DAG file: a regular file (links followed) of at most [`MAX_DAG_FILE_BYTES`], UTF-8.
pub fn read_dag_file(path: &Path) -> Result<String, DagError> {
    let err = |reason: String| DagError {
        file: path.to_path_buf(),
        line: 0,
        path: String::new(),
        dag_id: None,
        traceback: None,
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    let too_big = || {
        err(format!(
            "DAG file is larger than {MAX_DAG_FILE_BYTES} bytes; it is not read"
        ))
    };
    if meta.len() > MAX_DAG_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    // the file may grow after the size check: read one byte past the cap at most
    file.take(MAX_DAG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_DAG_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        err(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Parse a DAG file of either kind: Python files through the check's evaluator (skipped with a
/// note without one, or when they do not mention both `airflow` and `dag`, as Airflow's safe
/// mode skips them), YAML files with the dag-factory loader.
fn parse_any_file(
    file: &Path,
    text: &str,
    config: &FolderConfig,
    check: &dyn OperatorCheck,
) -> FileOutcome {
    let is_py = file
        .file_name()
        .is_some_and(|n| crate::pyfile::is_python_file(&n.to_string_lossy()));
    if !is_py {
        return parse_file_of_folder(file, text, config, check);
    }
    let note = |reason: &str| {
        FileOutcome::NotDagFile(DagError {
            file: file.to_path_buf(),
            line: 0,
            path: String::new(),
            dag_id: None,
            traceback: None,
            reason: reason.to_string(),
        })
    };
    if !crate::pyfile::looks_like_dag_file(text) {
        return note("a Python file that mentions neither `airflow` nor `dag`: not a DAG file");
    }
    match check.python_evaluator() {
        Some(evaluator) => crate::pyfile::parse_python_file(file, text, config, check, evaluator),
        None => note("a Python DAG file, and no Python DAG parser is available here"),
    }
}

/// Whether a file name in a DAG folder is a DAG file candidate.
fn is_candidate(name: &str) -> bool {
    (name.ends_with(".yaml") || name.ends_with(".yml") || crate::pyfile::is_python_file(name))
        && name != FOLDER_CONFIG
        && name != "weft.yml"
        && !crate::defaults::is_defaults_file(name)
}

/// The state of a walk over a DAG folder.
#[derive(Default)]
struct Walk {
    /// The DAG folder (canonical): ignore files resolving outside it are not read.
    root: PathBuf,
    /// Folders already read (canonical paths).
    visited: HashSet<PathBuf>,
    /// The `.airflowignore` rules of the folders from the root down to the current one.
    ignores: Vec<Gitignore>,
}

impl Walk {
    /// Whether the ignore files in force leave `path` out (the deepest rule that matches wins).
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let mut ignored = false;
        for g in &self.ignores {
            match g.matched(path, is_dir) {
                Match::Ignore(_) => ignored = true,
                Match::Whitelist(_) => ignored = false,
                Match::None => {}
            }
        }
        ignored
    }

    /// Read `dir/.airflowignore`, if any.
    fn ignore_file(&self, dir: &Path) -> Result<Option<Gitignore>, DagError> {
        let path = dir.join(IGNORE_FILE);
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(None);
        };
        let err = |line: usize, reason: String| DagError {
            file: path.clone(),
            line,
            path: String::new(),
            dag_id: None,
            traceback: None,
            reason,
        };
        // a link to a file elsewhere is not read (its lines would come back in messages)
        if !path.canonicalize().is_ok_and(|p| p.starts_with(&self.root)) {
            return Err(err(
                0,
                "resolves outside the DAG folder; it is not read".into(),
            ));
        }
        if !meta.is_file() || meta.len() > MAX_IGNORE_FILE_BYTES {
            return Err(err(
                0,
                format!("must be a regular file of at most {MAX_IGNORE_FILE_BYTES} bytes"),
            ));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| err(0, format!("cannot read: {e}")))?;
        let mut builder = GitignoreBuilder::new(dir);
        for (i, line) in text.lines().enumerate() {
            // Airflow strips `#` comments anywhere on the line
            let pattern = line.split('#').next().unwrap_or("").trim();
            if pattern.is_empty() {
                continue;
            }
            builder
                .add_line(None, pattern)
                .map_err(|e| err(i + 1, format!("bad pattern `{pattern}`: {e}")))?;
        }
        builder
            .build()
            .map(Some)
            .map_err(|e| err(0, format!("bad patterns: {e}")))
    }

    fn collect(
        &mut self,
        dir: &Path,
        depth: usize,
        out: &mut Vec<PathBuf>,
        errors: &mut Vec<DagError>,
    ) {
        let folder_error = |reason: String| DagError {
            file: dir.to_path_buf(),
            line: 0,
            path: String::new(),
            dag_id: None,
            traceback: None,
            reason,
        };
        // a folder reached twice (through a link) is read once, as dag-factory does
        match dir.canonicalize() {
            Ok(real) => {
                if !self.visited.insert(real) {
                    return;
                }
            }
            Err(e) => {
                errors.push(folder_error(format!("cannot read DAG folder: {e}")));
                return;
            }
        }
        if depth > MAX_FOLDER_DEPTH {
            errors.push(folder_error(format!(
                "folder nested deeper than {MAX_FOLDER_DEPTH} levels below the DAG folder; not searched"
            )));
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(folder_error(format!("cannot read DAG folder: {e}")));
                return;
            }
        };
        let pushed = match self.ignore_file(dir) {
            Ok(Some(g)) => {
                self.ignores.push(g);
                true
            }
            Ok(None) => false,
            Err(e) => {
                errors.push(e);
                false
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let is_dir = path.is_dir();
            if self.ignored(&path, is_dir) {
                tracing::debug!(path = %path.display(), "left out by {IGNORE_FILE}");
                continue;
            }
            if is_dir {
                self.collect(&path, depth + 1, out, errors);
            } else if is_candidate(&name) {
                out.push(path);
            }
        }
        if pushed {
            self.ignores.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::AnyOperator;

    const DAG: &str = "d:\n  tasks:\n    a:\n      operator: echo\n";

    #[test]
    fn non_dag_files_are_skipped_with_a_note_and_several_dags_load() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("two.yml"),
            "x:\n  tasks: {a: {operator: echo}}\ny:\n  tasks: {b: {operator: echo}}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("pod.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n",
        )
        .unwrap();
        std::fs::write(root.join("list.yml"), "- a\n- b\n").unwrap();
        std::fs::write(root.join("empty.yml"), "").unwrap();
        std::fs::write(root.join("defaults.yml"), "default_args: {owner: o}\n").unwrap();
        std::fs::write(root.join("weft.yaml"), "operators: {}\n").unwrap();
        let load = load_folder(root, &AnyOperator);
        assert!(load.errors.is_empty(), "{:?}", load.errors);
        let ids: Vec<&str> = load.dags.iter().map(|d| d.dag_id.as_str()).collect();
        assert_eq!(ids, ["x", "y"]);
        let skipped: Vec<String> = load
            .skipped
            .iter()
            .map(|n| n.file.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(skipped, ["empty.yml", "list.yml", "pod.yaml"]);
        assert!(
            load.skipped[2].reason.contains("apiVersion"),
            "{}",
            load.skipped[2]
        );
        // The same files named one by one are errors: the user asked for a DAG file.
        let (_, errors) = load_dag_file(&root.join("pod.yaml"), &AnyOperator);
        assert!(errors[0].reason.starts_with("not a DAG file"), "{errors:?}");
    }

    #[test]
    fn huge_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from(DAG);
        text.push_str(&format!("# {}\n", "x".repeat(MAX_DAG_FILE_BYTES as usize)));
        std::fs::write(dir.path().join("big.yml"), text).unwrap();
        let load = load_folder(dir.path(), &AnyOperator);
        assert!(load.dags.is_empty());
        assert_eq!(load.errors.len(), 1);
        assert!(
            load.errors[0]
                .to_string()
                .contains("big.yml: DAG file is larger than"),
            "{}",
            load.errors[0]
        );
    }

    #[test]
    fn airflowignore_leaves_files_out_as_airflow_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["scratch", "team/old", "team/new"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for f in [
            "a.yml",
            "test_a.yml",
            "scratch/b.yml",
            "team/old/c.yml",
            "team/new/d.yml",
            "team/keep_test_e.yml",
        ] {
            let id = f.replace(['/', '.'], "_");
            std::fs::write(root.join(f), DAG.replace("d:", &format!("{id}:"))).unwrap();
        }
        // root rules, a folder's own rules relative to it, a comment and a re-include
        std::fs::write(
            root.join(".airflowignore"),
            "test_*.yml  # tests\nscratch/\n",
        )
        .unwrap();
        std::fs::write(
            root.join("team/.airflowignore"),
            "old\n*test_*\n!keep_test_e.yml\n",
        )
        .unwrap();
        let load = load_folder(root, &AnyOperator);
        assert!(load.errors.is_empty(), "{:?}", load.errors);
        let mut ids: Vec<&str> = load.dags.iter().map(|d| d.dag_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["a_yml", "team_keep_test_e_yml", "team_new_d_yml"]);
    }

    #[cfg(unix)]
    #[test]
    fn an_ignore_file_linked_outside_the_folder_is_not_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cr3t-line\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.yml"), DAG).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join(IGNORE_FILE))
            .unwrap();
        let load = load_folder(dir.path(), &AnyOperator);
        assert_eq!(load.dags.len(), 1);
        assert_eq!(load.errors.len(), 1, "{:?}", load.errors);
        let e = load.errors[0].to_string();
        assert!(
            e.contains("resolves outside the DAG folder") && !e.contains("s3cr3t"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/d.yml"), DAG).unwrap();
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        let load = load_folder(root, &AnyOperator);
        assert!(load.errors.is_empty(), "{:?}", load.errors);
        assert_eq!(load.dags.len(), 1);
    }
}
