//! A Distributed Map's results as AWS's `ResultWriter` exports them: `WriterConfig`
//! transformations (`NONE`, `COMPACT`, `FLATTEN`), `JSON`/`JSONL` output, and the object
//! layout under `Prefix/<map run id>/` (`manifest.json`, `SUCCEEDED_n.json`,
//! `FAILED_n.json`, `PENDING_n.json`). Pure: it returns the objects to write; the caller's
//! [`crate::express::ResultWriter`] writes them.

use crate::error::StateError;
use crate::model::{WriterOutputType, WriterTransformation};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The most bytes of results in one `SUCCEEDED_n`/`FAILED_n`/`PENDING_n` object before the
/// next one starts.
pub const MAX_RESULT_FILE_BYTES: usize = 64 << 20;

/// How one item of a Map Run ended.
#[derive(Debug, Clone)]
pub enum ItemOutcome {
    Succeeded(Value),
    Failed(StateError),
    /// Started, then stopped by a sibling's failure.
    Aborted,
    /// Never ran (the run stopped first).
    Pending,
}

/// One item of a Map Run with its child execution's times.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub input: Value,
    pub outcome: ItemOutcome,
    pub start_ms: i64,
    pub stop_ms: i64,
}

/// The names of one Map Run: its id and ARN, and the ARN its child executions run under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRunNames {
    /// The UUID ending the ARN, also the folder of its exported results.
    pub id: String,
    /// `arn:aws:states:REGION:ACCOUNT:mapRun:MACHINE/LABEL:ID`.
    pub arn: String,
    /// `arn:aws:states:REGION:ACCOUNT:stateMachine:MACHINE/LABEL`.
    pub state_machine_arn: String,
    /// `arn:aws:states:REGION:ACCOUNT:execution:MACHINE/LABEL` (a child's name follows).
    pub execution_prefix: String,
}

impl MapRunNames {
    /// Names a Map Run of `machine` labelled `label` (the Map's `Label`, else the
    /// execution's name), with the given id.
    pub fn new(region: &str, account: &str, machine: &str, label: &str, id: String) -> Self {
        let base = format!("arn:aws:states:{region}:{account}");
        MapRunNames {
            arn: format!("{base}:mapRun:{machine}/{label}:{id}"),
            state_machine_arn: format!("{base}:stateMachine:{machine}/{label}"),
            execution_prefix: format!("{base}:execution:{machine}/{label}"),
            id,
        }
    }

    /// The name of the child execution of item `index` (stable for a Map Run).
    pub fn child_name(&self, index: usize) -> String {
        derived_uuid(&[&self.id, &index.to_string()])
    }
}

/// A UUID-shaped name derived from `parts` (the same parts always give the same name).
pub fn derived_uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // version 8 (custom), RFC 4122 variant
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn status(o: &ItemOutcome) -> &'static str {
    match o {
        ItemOutcome::Succeeded(_) => "SUCCEEDED",
        ItemOutcome::Failed(e) if e.error == crate::error::names::TIMEOUT => "TIMED_OUT",
        ItemOutcome::Failed(_) => "FAILED",
        ItemOutcome::Aborted => "ABORTED",
        ItemOutcome::Pending => "PENDING",
    }
}

/// Each item as the `NONE` transformation shows it: the child execution's description.
fn with_metadata(names: &MapRunNames, index: usize, r: &ItemResult) -> Value {
    let name = names.child_name(index);
    let mut o = Map::new();
    o.insert(
        "ExecutionArn".into(),
        json!(format!("{}:{name}", names.execution_prefix)),
    );
    o.insert("Input".into(), json!(r.input.to_string()));
    o.insert("InputDetails".into(), json!({"Included": true}));
    o.insert("Name".into(), json!(name));
    match &r.outcome {
        ItemOutcome::Succeeded(v) => {
            o.insert("Output".into(), json!(v.to_string()));
            o.insert("OutputDetails".into(), json!({"Included": true}));
        }
        ItemOutcome::Failed(e) => {
            o.insert("Error".into(), json!(e.error));
            if let Some(c) = &e.cause {
                o.insert("Cause".into(), json!(c));
            }
        }
        ItemOutcome::Aborted | ItemOutcome::Pending => {}
    }
    o.insert("RedriveCount".into(), json!(0));
    o.insert("RedriveStatus".into(), json!("NOT_REDRIVABLE"));
    o.insert("StartDate".into(), json!(date(r.start_ms)));
    o.insert("StateMachineArn".into(), json!(names.state_machine_arn));
    o.insert("Status".into(), json!(status(&r.outcome)));
    if !matches!(r.outcome, ItemOutcome::Pending) {
        o.insert("StopDate".into(), json!(date(r.stop_ms)));
    }
    Value::Object(o)
}

/// The items of one status after the transformation (failed and pending items are always
/// shown with their metadata, as AWS does).
fn transform(
    names: &MapRunNames,
    items: &[(usize, &ItemResult)],
    t: WriterTransformation,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    for (i, r) in items {
        match (&r.outcome, t) {
            (ItemOutcome::Succeeded(v), WriterTransformation::Compact) => out.push(v.clone()),
            (ItemOutcome::Succeeded(Value::Array(a)), WriterTransformation::Flatten) => {
                out.extend(a.iter().cloned())
            }
            (ItemOutcome::Succeeded(v), WriterTransformation::Flatten) => out.push(v.clone()),
            _ => out.push(with_metadata(names, *i, r)),
        }
    }
    out
}

/// The state output of a Map whose `ResultWriter` has only a `WriterConfig`: every item in
/// order, transformed.
pub fn transformed_output(
    names: &MapRunNames,
    results: &[ItemResult],
    t: WriterTransformation,
) -> Value {
    let all: Vec<(usize, &ItemResult)> = results.iter().enumerate().collect();
    Value::Array(transform(names, &all, t))
}

/// One object to write: its key and body.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultObject {
    pub key: String,
    pub body: Vec<u8>,
}

/// The objects AWS writes for a Map Run under `PREFIX/<map run id>/`, result files first and
/// `manifest.json` last, and the key of the manifest.
pub fn layout(
    names: &MapRunNames,
    bucket: &str,
    prefix: &str,
    results: &[ItemResult],
    t: WriterTransformation,
    output: WriterOutputType,
) -> (Vec<ResultObject>, String) {
    let prefix = prefix.trim_end_matches('/');
    let folder = if prefix.is_empty() {
        names.id.clone()
    } else {
        format!("{prefix}/{}", names.id)
    };
    let mut objects = Vec::new();
    let mut files = Map::new();
    for st in ["FAILED", "PENDING", "SUCCEEDED"] {
        let items: Vec<(usize, &ItemResult)> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| match status(&r.outcome) {
                "TIMED_OUT" | "ABORTED" => st == "FAILED",
                s => s == st,
            })
            .collect();
        let mut listed = Vec::new();
        let values = transform(names, &items, t);
        let mut n = 0usize;
        let mut chunk: Vec<String> = Vec::new();
        let mut size = 0usize;
        let mut flush = |chunk: &mut Vec<String>, n: &mut usize, listed: &mut Vec<Value>| {
            let body = match output {
                WriterOutputType::Json => format!("[{}]", chunk.join(",")),
                WriterOutputType::Jsonl => {
                    let mut s = chunk.join("\n");
                    s.push('\n');
                    s
                }
            };
            let key = format!("{folder}/{st}_{n}.json");
            listed.push(json!({"Key": key, "Size": body.len()}));
            objects.push(ResultObject {
                key,
                body: body.into_bytes(),
            });
            chunk.clear();
            *n += 1;
        };
        for v in values {
            let s = v.to_string();
            if !chunk.is_empty() && size + s.len() > MAX_RESULT_FILE_BYTES {
                flush(&mut chunk, &mut n, &mut listed);
                size = 0;
            }
            size += s.len() + 1;
            chunk.push(s);
        }
        if !chunk.is_empty() {
            flush(&mut chunk, &mut n, &mut listed);
        }
        files.insert(st.to_string(), Value::Array(listed));
    }
    let manifest_key = format!("{folder}/manifest.json");
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": names.arn,
        "ResultFiles": files,
    });
    objects.push(ResultObject {
        key: manifest_key.clone(),
        body: manifest.to_string().into_bytes(),
    });
    (objects, manifest_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> MapRunNames {
        MapRunNames::new("us-east-1", "1", "M", "L", "run".into())
    }

    fn results() -> Vec<ItemResult> {
        let r = |outcome| ItemResult {
            input: json!({"n": 1}),
            outcome,
            start_ms: 0,
            stop_ms: 1000,
        };
        vec![
            r(ItemOutcome::Succeeded(json!([1, 2]))),
            r(ItemOutcome::Failed(StateError::new("E", "boom"))),
            r(ItemOutcome::Pending),
            r(ItemOutcome::Succeeded(json!(3))),
        ]
    }

    #[test]
    fn layout_follows_aws() {
        let (objs, manifest) = layout(
            &names(),
            "b",
            "out/",
            &results(),
            WriterTransformation::Compact,
            WriterOutputType::Json,
        );
        let keys: Vec<&str> = objs.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "out/run/FAILED_0.json",
                "out/run/PENDING_0.json",
                "out/run/SUCCEEDED_0.json",
                "out/run/manifest.json"
            ]
        );
        assert_eq!(manifest, "out/run/manifest.json");
        assert_eq!(objs[2].body, b"[[1,2],3]");
        let failed: Value = serde_json::from_slice(&objs[0].body).unwrap();
        assert_eq!(failed[0]["Status"], "FAILED");
        assert_eq!(failed[0]["Error"], "E");
        assert_eq!(failed[0]["Input"], "{\"n\":1}");
        let m: Value = serde_json::from_slice(&objs[3].body).unwrap();
        assert_eq!(m["DestinationBucket"], "b");
        assert_eq!(m["MapRunArn"], "arn:aws:states:us-east-1:1:mapRun:M/L:run");
        assert_eq!(
            m["ResultFiles"]["SUCCEEDED"][0],
            json!({"Key": "out/run/SUCCEEDED_0.json", "Size": 9})
        );
        let (objs, _) = layout(
            &names(),
            "b",
            "",
            &results(),
            WriterTransformation::Flatten,
            WriterOutputType::Jsonl,
        );
        assert_eq!(objs[2].key, "run/SUCCEEDED_0.json");
        assert_eq!(objs[2].body, b"1\n2\n3\n");
    }

    #[test]
    fn none_keeps_metadata_and_names_are_stable() {
        let v = transformed_output(&names(), &results(), WriterTransformation::None);
        assert_eq!(v[0]["Output"], "[1,2]");
        assert_eq!(v[0]["Status"], "SUCCEEDED");
        assert_eq!(
            v[0]["StateMachineArn"],
            "arn:aws:states:us-east-1:1:stateMachine:M/L"
        );
        assert_eq!(names().child_name(3), names().child_name(3));
        assert_ne!(names().child_name(3), names().child_name(4));
        assert_eq!(names().child_name(0).len(), 36);
    }
}
