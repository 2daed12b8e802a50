//! Real-world Amazon States Language: the definitions under `tests/fixtures/asl-corpus/`
//! (public AWS samples; see its README.md and SOURCES.tsv) against the real `weft` binary.
//!
//! - every definition is accepted by `weft validate --allow-unmapped FILE` (exit 0; warnings
//!   allowed), since AWS Step Functions accepts all of them (their service integrations are
//!   mocked here, not mapped to plugins);
//! - the runs listed in `expect.json` execute with `weft run FILE --mock-config MOCKS
//!   --test-case CASE --fast-forward --input JSON` against Step Functions Local style mock
//!   configurations (`mocks/`), and end with the expected output or error.
//!
//! Each test collects every failure and reports them all in one assertion.

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No single `weft` process may take longer than this.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Processes run at once.
const WORKERS: usize = 4;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asl-corpus")
}

fn definitions_dir() -> PathBuf {
    corpus().join("definitions")
}

fn manifest() -> Value {
    let path = corpus().join("expect.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The definition files on disk, sorted.
fn definition_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(definitions_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What one `weft` process did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

impl Outcome {
    fn describe(&self) -> String {
        let mut s = if self.timed_out {
            format!("timed out after {}s", PROCESS_TIMEOUT.as_secs())
        } else {
            format!("exit {:?}", self.code)
        };
        for (what, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = text.trim();
            if !text.is_empty() {
                s.push_str(&format!("\n    {what}: {}", text.replace('\n', "\n      ")));
            }
        }
        s
    }
}

/// Runs `weft ARGS` with `$WEFT_HOME` = `home`, killing it after [`PROCESS_TIMEOUT`].
fn weft(home: &Path, args: &[String]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_HOME", home)
        .current_dir(corpus())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft");
    // drain the pipes while waiting so that a chatty process cannot block on a full pipe
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for weft") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("reap weft");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        timed_out,
    }
}

/// Runs `job` on every item with [`WORKERS`] threads, each with a `$WEFT_HOME` of its own;
/// returns every failure message, in the items' order.
fn for_each_parallel<T: Sync>(
    items: &[T],
    job: impl Fn(&Path, &T) -> Option<String> + Sync,
) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                let home = tempfile::tempdir().unwrap();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Some(msg) = job(home.path(), item) {
                        results.lock().unwrap().push((i, msg));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, m)| m).collect()
}

fn report(what: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} failed:\n\n{}\n",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn corpus_manifest_and_sources_cover_every_definition() {
    let m = manifest();
    let on_disk: BTreeSet<String> = definition_files().into_iter().collect();
    let listed: BTreeSet<String> = m["definitions"]
        .as_object()
        .expect("expect.json: definitions is an object")
        .keys()
        .cloned()
        .collect();
    let sources = std::fs::read_to_string(corpus().join("SOURCES.tsv")).unwrap();
    let sourced: BTreeSet<String> = sources
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect();
    let mut failures = Vec::new();
    for f in on_disk.difference(&listed) {
        failures.push(format!("{f}: not in expect.json"));
    }
    for f in listed.difference(&on_disk) {
        failures.push(format!("{f}: in expect.json but not in definitions/"));
    }
    for f in on_disk.difference(&sourced) {
        failures.push(format!("{f}: not in SOURCES.tsv"));
    }
    for f in sourced.difference(&on_disk) {
        failures.push(format!("{f}: in SOURCES.tsv but not in definitions/"));
    }
    for (f, e) in m["definitions"].as_object().unwrap() {
        if e != "valid" {
            failures.push(format!("{f}: unknown expectation {e}"));
        }
    }
    for (i, run) in m["runs"].as_array().unwrap().iter().enumerate() {
        let def = run["definition"].as_str().unwrap_or_default();
        if !on_disk.contains(def) {
            failures.push(format!("runs[{i}]: no definition {def:?}"));
        }
        let mocks = corpus().join(run["mocks"].as_str().unwrap_or_default());
        match std::fs::read_to_string(&mocks)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(cfg) => {
                let case = &cfg["StateMachines"][stem(def)]["TestCases"]
                    [run["test_case"].as_str().unwrap_or_default()];
                if !case.is_object() {
                    failures.push(format!(
                        "runs[{i}]: {} has no StateMachines.{}.TestCases.{}",
                        mocks.display(),
                        stem(def),
                        run["test_case"]
                    ));
                }
            }
            Err(e) => failures.push(format!("runs[{i}]: {}: {e}", mocks.display())),
        }
        if run.get("output").is_some() == run.get("error").is_some() {
            failures.push(format!("runs[{i}]: needs exactly one of output and error"));
        }
    }
    report("manifest checks", on_disk.len(), &failures);
}

#[test]
fn corpus_definitions_validate() {
    let files = definition_files();
    let failures = for_each_parallel(&files, |home, f| {
        let path = definitions_dir().join(f);
        let o = weft(
            home,
            // (their AWS service integrations are mocked in the corpus runs, not mapped)
            &[
                "validate".into(),
                "--allow-unmapped".into(),
                path.to_string_lossy().into_owned(),
            ],
        );
        if o.code == Some(0) && !o.timed_out {
            None
        } else {
            Some(format!("{f}: {}", o.describe()))
        }
    });
    report("definitions (weft validate)", files.len(), &failures);
}

/// The state machine name a mock configuration uses for a definition: its file name without
/// `.asl.json`, `.asl.yaml`, `.asl.yml`, `.json`, `.yaml` or `.yml`.
fn stem(file: &str) -> &str {
    for ext in [
        ".asl.json",
        ".asl.yaml",
        ".asl.yml",
        ".json",
        ".yaml",
        ".yml",
    ] {
        if let Some(s) = file.strip_suffix(ext) {
            return s;
        }
    }
    file
}

#[test]
fn corpus_mocked_runs() {
    let m = manifest();
    let runs = m["runs"].as_array().unwrap().clone();
    let failures = for_each_parallel(&runs, |home, run| {
        let def = run["definition"].as_str().unwrap();
        let case = run["test_case"].as_str().unwrap();
        let label = format!("{def} [{case}]");
        let args = vec![
            "run".to_string(),
            definitions_dir().join(def).to_string_lossy().into_owned(),
            "--mock-config".into(),
            corpus()
                .join(run["mocks"].as_str().unwrap())
                .to_string_lossy()
                .into_owned(),
            "--test-case".into(),
            case.into(),
            "--fast-forward".into(),
            "--input".into(),
            run["input"].to_string(),
        ];
        let o = weft(home, &args);
        let got: Option<Value> = serde_json::from_str(o.stdout.trim()).ok();
        if let Some(want) = run.get("output") {
            if o.code == Some(0) && got.as_ref() == Some(want) {
                return None;
            }
            return Some(format!(
                "{label}: expected exit 0 with output {want}\n    got {}",
                o.describe()
            ));
        }
        let want_error = &run["error"];
        let want_cause = run.get("cause");
        let ok = o.code == Some(1)
            && got.as_ref().is_some_and(|g| {
                &g["Error"] == want_error && want_cause.is_none_or(|c| &g["Cause"] == c)
            });
        if ok {
            None
        } else {
            Some(format!(
                "{label}: expected exit 1 with Error {want_error}{}\n    got {}",
                want_cause
                    .map(|c| format!(" and Cause {c}"))
                    .unwrap_or_default(),
                o.describe()
            ))
        }
    });
    report(
        "mocked runs (weft run --mock-config)",
        runs.len(),
        &failures,
    );
}
