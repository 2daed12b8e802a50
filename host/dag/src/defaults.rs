//! dag-factory's `defaults.yml` convention: defaults shared by the DAG files of a folder tree.
//!
//! As dag-factory does, for a DAG file every folder from the DAG folder root down to the file's
//! own folder may hold a `defaults.yml` (else `defaults.yaml`); nearer folders win. Their
//! `default_args` are merged key by key, their other keys (DAG arguments such as `schedule`,
//! `catchup`) are replaced whole by nearer files, except `tags`, which accumulate (sorted, without
//! repeats). The result sits under the file's own `default` block (see `load`).
//!
//! The lookup never leaves the DAG folder: a `defaults.yml` that is a link to a file outside it
//! is an error, and the file must be a regular file of at most [`MAX_DEFAULTS_BYTES`].

use std::path::{Path, PathBuf};

use crate::error::DagError;
use crate::yaml::{self, Key, Node, Val};

/// Names of a folder's defaults file, in order of preference.
pub const DEFAULTS_FILE_NAMES: [&str; 2] = ["defaults.yml", "defaults.yaml"];

/// Largest defaults file read.
pub const MAX_DEFAULTS_BYTES: u64 = 1 << 20;

/// Whether a file name is a defaults file (not a DAG file).
pub fn is_defaults_file(name: &str) -> bool {
    DEFAULTS_FILE_NAMES.contains(&name)
}

/// The folders searched for `file`, farthest (the root) first, compared after resolving links
/// and `..`. A file that is not inside `root` gets no folder defaults.
fn search_dirs(canon_root: &Path, file: &Path) -> Vec<PathBuf> {
    let parent = file.parent().unwrap_or(Path::new("."));
    let Ok(parent) = parent.canonicalize() else {
        return Vec::new();
    };
    if !parent.starts_with(canon_root) {
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = parent
        .ancestors()
        .take_while(|d| d.starts_with(canon_root))
        .map(Path::to_path_buf)
        .collect();
    dirs.reverse();
    dirs
}

/// The merged folder defaults for `file` under the DAG folder `root` (`None` when there are none).
pub fn folder_defaults(root: &Path, file: &Path) -> Result<Option<Node>, DagError> {
    let Ok(canon_root) = root.canonicalize() else {
        return Ok(None);
    };
    let mut merged: Option<Node> = None;
    for dir in search_dirs(&canon_root, file) {
        let Some(path) = DEFAULTS_FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.symlink_metadata().is_ok())
        else {
            continue;
        };
        let node = read_defaults(&canon_root, &path)?;
        merged = Some(match merged {
            None => node,
            Some(base) => merge_level(&base, &node),
        });
    }
    Ok(merged)
}

fn read_defaults(canon_root: &Path, path: &Path) -> Result<Node, DagError> {
    let err = |line, reason: String| DagError {
        file: path.to_path_buf(),
        line,
        path: String::new(),
        dag_id: None,
        traceback: None,
        reason,
    };
    let real = path
        .canonicalize()
        .map_err(|e| err(0, format!("cannot read defaults file: {e}")))?;
    if !real.starts_with(canon_root) {
        return Err(err(
            0,
            format!(
                "defaults file resolves to {}, outside the DAG folder {}; it is not read",
                real.display(),
                canon_root.display()
            ),
        ));
    }
    let meta = std::fs::metadata(&real).map_err(|e| err(0, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(err(0, "a defaults file must be a regular file".into()));
    }
    if meta.len() > MAX_DEFAULTS_BYTES {
        return Err(err(
            0,
            format!("defaults file is larger than {MAX_DEFAULTS_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(&real).map_err(|e| err(0, format!("cannot read: {e}")))?;
    let node = yaml::parse(&text).map_err(|e| err(e.line, e.reason()))?;
    let node = crate::pytypes::normalize(node).map_err(|e| err(e.line, e.message))?;
    match node.value {
        Val::Map(_) => Ok(node),
        Val::Null => Ok(Node {
            value: Val::Map(Vec::new()),
            line: 1,
        }),
        _ => Err(err(
            node.line,
            format!(
                "a defaults file must be a mapping, got {}",
                node.type_name()
            ),
        )),
    }
}

/// Merge a nearer defaults file (`over`) onto the farther ones (`base`) as dag-factory does.
fn merge_level(base: &Node, over: &Node) -> Node {
    let mut out: Vec<(Key, Node)> = base.entries().to_vec();
    for (k, v) in over.entries() {
        let pos = out.iter().position(|(ok, _)| ok.name == k.name);
        let value = match (k.name.as_str(), pos) {
            ("default_args", Some(i)) => shallow_merge(&out[i].1, v),
            ("tags", Some(i)) => union_tags(&out[i].1, v),
            _ => v.clone(),
        };
        match pos {
            Some(i) => out[i] = (k.clone(), value),
            None => out.push((k.clone(), value)),
        }
    }
    Node {
        value: Val::Map(out),
        line: over.line,
    }
}

/// Key-level merge of two mappings (`over` wins); a non-mapping `over` replaces `base`.
pub fn shallow_merge(base: &Node, over: &Node) -> Node {
    let (Val::Map(b), Val::Map(o)) = (&base.value, &over.value) else {
        return over.clone();
    };
    let mut out = b.clone();
    for (k, v) in o {
        match out.iter_mut().find(|(ok, _)| ok.name == k.name) {
            Some(slot) => *slot = (k.clone(), v.clone()),
            None => out.push((k.clone(), v.clone())),
        }
    }
    Node {
        value: Val::Map(out),
        line: over.line,
    }
}

fn union_tags(base: &Node, over: &Node) -> Node {
    let (Val::Seq(b), Val::Seq(o)) = (&base.value, &over.value) else {
        return over.clone();
    };
    let mut tags: Vec<Node> = Vec::new();
    for t in b.iter().chain(o) {
        if !tags.iter().any(|x| x.scalar_text() == t.scalar_text()) {
            tags.push(t.clone());
        }
    }
    tags.sort_by_key(|t| t.scalar_text().unwrap_or_default());
    Node {
        value: Val::Seq(tags),
        line: over.line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearer_defaults_win_and_tags_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("team/sub")).unwrap();
        std::fs::write(
            root.join("defaults.yml"),
            "default_args:\n  owner: root\n  retries: 1\nschedule: '@daily'\ntags: [b, a]\n",
        )
        .unwrap();
        std::fs::write(
            root.join("team/defaults.yaml"),
            "default_args:\n  owner: team\ncatchup: true\ntags: [c, a]\n",
        )
        .unwrap();
        let file = root.join("team/sub/x.yml");
        let d = folder_defaults(root, &file).unwrap().unwrap().to_json();
        assert_eq!(
            d["default_args"],
            serde_json::json!({"owner": "team", "retries": 1})
        );
        assert_eq!(d["schedule"], "@daily");
        assert_eq!(d["catchup"], true);
        assert_eq!(d["tags"], serde_json::json!(["a", "b", "c"]));
        // A file outside the root gets no folder defaults.
        let other = tempfile::tempdir().unwrap();
        assert!(folder_defaults(root, &other.path().join("y.yml"))
            .unwrap()
            .is_none());
    }

    #[cfg(unix)]
    #[test]
    fn defaults_outside_the_dag_folder_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(
            outside.path().join("secret.yml"),
            "default_args: {owner: x}\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("dags");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.yml"), root.join("defaults.yml"))
            .unwrap();
        let e = folder_defaults(&root, &root.join("x.yml")).unwrap_err();
        assert!(e.reason.contains("outside the DAG folder"), "{e}");
        // `..` in the file path does not climb above the root either.
        std::fs::remove_file(root.join("defaults.yml")).unwrap();
        std::fs::write(
            dir.path().join("defaults.yml"),
            "default_args: {owner: up}\n",
        )
        .unwrap();
        let sneaky = root.join("..").join("x.yml");
        assert!(folder_defaults(&root, &sneaky).unwrap().is_none());
        assert!(folder_defaults(&root, &root.join("x.yml"))
            .unwrap()
            .is_none());
    }
}
