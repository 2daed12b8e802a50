//! Runs every recorded AWS conformance case in `shared/asl-conformance/cases` in place,
//! in-process with `run_express`, and compares like the suite's `run.py` (ignore_paths,
//! numbers compared by value, error + cause). Set `WEFT_SKIP_CONFORMANCE=1` to skip when the
//! folder is absent; `WEFT_CONFORMANCE_FILTER=substr` runs a subset.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use weft_asl::{parse, run_express, FakeClock, Hooks, NoTasks, RunOptions};

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/asl-conformance/cases"
);

fn unescape(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

fn remove_pointer(doc: &mut Value, ptr: &str) {
    if ptr.is_empty() {
        *doc = Value::Null;
        return;
    }
    let parts: Vec<String> = ptr.split('/').skip(1).map(unescape).collect();
    let mut cur = doc;
    for p in &parts[..parts.len() - 1] {
        let next = match cur {
            Value::Object(m) => m.get_mut(p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    let last = &parts[parts.len() - 1];
    match cur {
        Value::Object(m) => {
            m.shift_remove(last);
        }
        Value::Array(a) => {
            if let Some(x) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *x = Value::Null;
            }
        }
        _ => {}
    }
}

fn strip(doc: &Value, ptrs: &[String]) -> Value {
    let mut d = doc.clone();
    let mut ps: Vec<&String> = ptrs.iter().collect();
    ps.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in ps {
        remove_pointer(&mut d, p);
    }
    d
}

/// LocalStack's snapshots replace a generated random number by this placeholder; it stands
/// for "some number" (the only comparison rule added on top of run.py's).
const RANDOM_PLACEHOLDER: &str = "RandomNumberGenerated";

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::Number(_)) if s == RANDOM_PLACEHOLDER => true,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn run_case(case: &Value) -> Result<(), String> {
    let def = serde_json::to_string(&case["definition"]).map_err(|e| e.to_string())?;
    let exp = &case["expect"];
    let sm = match parse(&def) {
        Ok(sm) => sm,
        Err(e) => {
            if exp["status"] == "INVALID" {
                return Ok(());
            }
            return Err(format!("definition rejected (exit 2):\n{e}"));
        }
    };
    let opts = RunOptions {
        max_transitions: Some(100_000),
        ..RunOptions::default()
    };
    let clock = FakeClock::default();
    let got = run_express(
        &sm,
        case["input"].clone(),
        &opts,
        &NoTasks,
        &clock,
        Hooks::default(),
    );
    match exp["status"].as_str() {
        Some("SUCCEEDED") => match got {
            Ok(out) => {
                let ign: Vec<String> = case["ignore_paths"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let e = strip(&exp["output"], &ign);
                let g = strip(&out, &ign);
                if json_eq(&e, &g) {
                    Ok(())
                } else {
                    Err(format!(
                        "output differs\n    expected: {e}\n    got:      {g}"
                    ))
                }
            }
            Err(f) => Err(format!(
                "expected SUCCEEDED, got FAILED {} / {:?}",
                f.error, f.cause
            )),
        },
        _ => match got {
            Ok(out) => Err(format!(
                "expected FAILED {}, got SUCCEEDED {out}",
                exp["error"]
            )),
            Err(f) => {
                let ee = exp["error"].as_str().unwrap_or("");
                if f.error != ee {
                    return Err(format!(
                        "error differs: expected {ee:?} got {:?} (cause {:?})",
                        f.error, f.cause
                    ));
                }
                if let Some(c) = exp["cause"].as_str() {
                    if f.cause.as_deref() != Some(c) {
                        return Err(format!(
                            "cause differs\n    expected: {c}\n    got:      {:?}",
                            f.cause
                        ));
                    }
                }
                Ok(())
            }
        },
    }
}

#[test]
fn conformance_cases() {
    let dir = PathBuf::from(CASES);
    if !dir.is_dir() {
        if std::env::var("WEFT_SKIP_CONFORMANCE").as_deref() == Ok("1") {
            eprintln!(
                "conformance cases not found at {}; skipped (WEFT_SKIP_CONFORMANCE=1)",
                dir.display()
            );
            return;
        }
        panic!(
            "conformance cases not found at {} (expected the `shared` folder next to the repository); set WEFT_SKIP_CONFORMANCE=1 to skip",
            dir.display()
        );
    }
    let filter = std::env::var("WEFT_CONFORMANCE_FILTER").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read cases dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut by_tag: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut passed = 0;
    for f in &files {
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if let Some(flt) = &filter {
            if !name.contains(flt.as_str()) {
                continue;
            }
        }
        let text = std::fs::read_to_string(f).expect("read case");
        let case: Value = serde_json::from_str(&text).expect("case JSON");
        let r =
            std::panic::catch_unwind(|| run_case(&case)).unwrap_or_else(|_| Err("PANIC".into()));
        let tags: Vec<String> = case["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for t in &tags {
            let e = by_tag.entry(t.clone()).or_default();
            if r.is_ok() {
                e.0 += 1
            } else {
                e.1 += 1
            }
        }
        match r {
            Ok(()) => passed += 1,
            Err(msg) => failures.push(format!("FAIL {name}: {msg}")),
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!("by tag (passed/failed):");
    for (t, (p, fl)) in &by_tag {
        eprintln!("  {t:<22} {p}/{fl}");
    }
    eprintln!("{passed} passed, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} conformance cases failed",
        failures.len()
    );
}
