//! Hostile DAG files in a DAG folder: each is refused with `file:line` and a reason, nothing in
//! it is evaluated, and the folder's other DAG files still load.
//!
//! dag-factory reads DAG files with PyYAML's `FullLoader` (not `safe_load`), which refuses
//! `!!python/object/apply` and `!!python/object/new` but imports modules named by
//! `!!python/name:` and `!!python/object:` when they are already loaded; weft imports nothing.

use std::path::Path;

use weft_dag::{load_folder, AnyOperator, FolderLoad};

const GOOD: &str =
    "good:\n  tasks:\n    a:\n      operator: airflow.operators.empty.EmptyOperator\n";

/// Load a folder holding `good.yml` and `bad.yml` (with `bad`'s text).
fn load_with(bad: &str) -> (tempfile::TempDir, FolderLoad) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yml"), GOOD).unwrap();
    std::fs::write(dir.path().join("bad.yml"), bad).unwrap();
    let load = load_folder(dir.path(), &AnyOperator);
    (dir, load)
}

/// The single error of the folder: in `bad.yml`, at `line`, saying `what`; `good` still loads.
fn refused(dir: &Path, load: &FolderLoad, line: usize, what: &str) {
    let ids: Vec<&str> = load.dags.iter().map(|d| d.dag_id.as_str()).collect();
    assert_eq!(ids, ["good"], "{:?}", load.errors);
    assert_eq!(load.errors.len(), 1, "{:?}", load.errors);
    let e = &load.errors[0];
    assert_eq!(e.file, dir.join("bad.yml"));
    assert_eq!(e.line, line, "{e}");
    assert!(e.reason.contains(what), "{e}");
}

#[test]
fn billion_laughs_through_aliases_is_refused() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("bomb:\n  tasks:\n    t:\n      operator: x\n      arg: *a9\n");
    let (dir, load) = load_with(&text);
    let e = &load.errors[0];
    refused(dir.path(), &load, e.line, "document too large");
    assert!(e.line >= 2 && e.line <= 11, "{e}");
}

#[test]
fn billion_laughs_through_merge_keys_is_refused() {
    let mut text =
        String::from("m0: &m0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8}\n");
    for i in 1..26 {
        let p = i - 1;
        // each level merges its parent and holds it twice more as values (merged keys that
        // repeat collapse, so the values are what doubles)
        text.push_str(&format!(
            "m{i}: &m{i}\n  <<: *m{p}\n  a: *m{p}\n  b: *m{p}\n"
        ));
    }
    let (dir, load) = load_with(&text);
    let line = load.errors.first().map_or(0, |e| e.line);
    refused(dir.path(), &load, line, "document too large");
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    // flow style and block style
    let flow = format!(
        "d:\n  tasks:\n    t:\n      operator: x\n      arg: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (dir, load) = load_with(&flow);
    // the parser's own recursion limit stops this one
    refused(dir.path(), &load, 5, "recursion limit exceeded");
    let mut block = String::from("d:\n");
    for depth in 1..400 {
        block.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
    }
    let (dir, load) = load_with(&block);
    let line = load.errors.first().map_or(0, |e| e.line);
    assert!(line > 100, "{:?}", load.errors);
    refused(dir.path(), &load, line, "nesting deeper than");
}

#[test]
fn huge_files_are_refused_unread() {
    let text = format!("{GOOD}# {}\n", "x".repeat(5 << 20)).replace("good:", "huge:");
    let (dir, load) = load_with(&text);
    refused(dir.path(), &load, 0, "larger than");
}

#[test]
fn tags_that_would_run_code_are_refused_never_evaluated() {
    let marker = std::env::temp_dir().join(format!("weft-pwned-{}", std::process::id()));
    for (tag_line, shown) in [
        (
            format!(
                "!!python/object/apply:os.system ['touch {}']",
                marker.display()
            ),
            "!!python/object/apply:os.system",
        ),
        (
            format!(
                "!!python/object/new:subprocess.Popen [['touch', '{}']]",
                marker.display()
            ),
            "!!python/object/new:subprocess.Popen",
        ),
        (
            "!!python/object:os._wrap_close {}".to_string(),
            "!!python/object:os._wrap_close",
        ),
        ("!!python/module:os ''".to_string(), "!!python/module:os"),
        ("!Custom {a: 1}".to_string(), "!Custom"),
    ] {
        let text = format!(
            "bad:\n  tasks:\n    t:\n      operator: airflow.operators.empty.EmptyOperator\n      arg: {tag_line}\n"
        );
        let (dir, load) = load_with(&text);
        refused(dir.path(), &load, 5, &format!("tag `{shown}`"));
        assert!(!load.errors[0].reason.starts_with("YAML syntax error"));
    }
    assert!(!marker.exists(), "a tag was evaluated");
}

#[test]
fn python_names_stay_references() {
    // `!!python/name:` is how dag-factory files name callables: weft keeps the text and imports
    // nothing (PyYAML's FullLoader would import an already-loaded module's attribute).
    let text = "ref:\n  tasks:\n    t:\n      operator: airflow.operators.python.PythonOperator\n      python_callable: !!python/name:os.system\n";
    let (_dir, load) = load_with(text);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let dag = load.dags.iter().find(|d| d.dag_id == "ref").unwrap();
    assert_eq!(dag.tasks["t"].arguments["python_callable"], "os.system");
}

#[test]
fn a_hostile_defaults_file_is_refused_for_the_files_under_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("defaults.yml"),
        "default_args:\n  owner: !!python/object/apply:os.getcwd []\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("good.yml"), GOOD).unwrap();
    let load = load_folder(dir.path(), &AnyOperator);
    assert!(load.dags.is_empty());
    let e = &load.errors[0];
    assert_eq!(e.file, dir.path().join("defaults.yml"));
    assert_eq!(e.line, 2, "{e}");
    assert!(e.reason.contains("!!python/object/apply:os.getcwd"), "{e}");
}
