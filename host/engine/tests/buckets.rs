//! Distributed Map over buckets: every ItemReader format read from a local bucket, the
//! ResultWriter layout compared file by file, and the attacks (traversal keys, unconfigured
//! buckets, a role without the permission, a planted symlink, a huge object). The same
//! reader and writer against a real S3 wire protocol (moto's server) are in `buckets_s3.rs`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weft_asl::{parse, run_express, FakeClock, Hooks, NoTasks, RunOptions, StateError};
use weft_engine::buckets::{BucketAccess, Buckets, Location, MAX_OBJECT_BYTES};
use weft_sandbox::Policy;

const ALL: &str = r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:PutObject"],"Resource":["arn:aws:s3:::data","arn:aws:s3:::data/*","arn:aws:s3:::out/*"]}]}"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    buckets: Arc<Buckets>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    for b in ["data", "out", "outside"] {
        std::fs::create_dir_all(root.join(b)).unwrap();
    }
    let mut locs = BTreeMap::new();
    locs.insert("data".to_string(), Location::Local(root.join("data")));
    locs.insert("out".to_string(), Location::Local(root.join("out")));
    Fixture {
        buckets: Arc::new(Buckets::from_locations(locs).unwrap()),
        _dir: dir,
        root,
    }
}

fn put(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn access(f: &Fixture, policy: Option<&str>) -> BucketAccess {
    BucketAccess::new(
        f.buckets.clone(),
        policy.map(|p| Arc::new(Policy::parse(p).unwrap())),
        f.root.join("outside"),
    )
}

fn map(reader: Value, writer: Option<Value>) -> Value {
    let mut m = json!({"Type": "Map", "ItemReader": reader,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true});
    if let Some(w) = writer {
        m["ResultWriter"] = w;
    }
    json!({"StartAt": "M", "States": {"M": m}})
}

fn run(def: &Value, a: &BucketAccess) -> Result<Value, StateError> {
    let sm = parse(&def.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        state_machine_name: "Machine".into(),
        execution_name: "exec1".into(),
        ..RunOptions::default()
    };
    run_express(
        &sm,
        json!({}),
        &opts,
        &NoTasks,
        &FakeClock::default(),
        Hooks {
            item_reader: Some(a),
            result_writer: Some(a),
            ..Hooks::default()
        },
    )
}

fn get_object(key: &str, config: Value) -> Value {
    json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": config,
        "Parameters": {"Bucket": "data", "Key": key}})
}

#[test]
fn every_reader_format_from_a_local_bucket() {
    let f = fixture();
    let d = f.root.join("data");
    put(&d, "in/items.json", br#"[{"a":1},{"a":2}]"#);
    put(&d, "in/items.jsonl", b"{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n");
    put(&d, "in/rows.csv", b"a,b\n1,\"x,y\"\n2,z\n");
    put(&d, "in/rows.psv", b"1|x\n2|y\n");
    let a = access(&f, Some(ALL));
    assert_eq!(
        run(
            &map(
                get_object("in/items.json", json!({"InputType": "JSON"})),
                None
            ),
            &a
        ),
        Ok(json!([{"a": 1}, {"a": 2}]))
    );
    assert_eq!(
        run(
            &map(
                get_object(
                    "in/items.jsonl",
                    json!({"InputType": "JSONL", "MaxItems": 2})
                ),
                None
            ),
            &a
        ),
        Ok(json!([{"a": 1}, {"a": 2}]))
    );
    assert_eq!(
        run(
            &map(get_object("in/rows.csv", json!({"InputType": "CSV"})), None),
            &a
        ),
        Ok(json!([{"a": "1", "b": "x,y"}, {"a": "2", "b": "z"}]))
    );
    assert_eq!(
        run(
            &map(
                get_object(
                    "in/rows.psv",
                    json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN",
                        "CSVHeaders": ["n", "s"], "CSVDelimiter": "PIPE"})
                ),
                None
            ),
            &a
        ),
        Ok(json!([{"n": "1", "s": "x"}, {"n": "2", "s": "y"}]))
    );
    // an S3 Inventory manifest whose data files (one gzipped) are in the same bucket
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"\"src\",\"k1\",\"5\"\n").unwrap();
    put(&d, "inv/data/1.csv.gz", &gz.finish().unwrap());
    put(&d, "inv/data/2.csv", b"\"src\",\"k2\",\"7\"\n");
    put(
        &d,
        "inv/manifest.json",
        br#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::data","version":"2016-11-30",
            "fileFormat":"CSV","fileSchema":"Bucket, Key, Size",
            "files":[{"key":"inv/data/1.csv.gz","size":1,"MD5checksum":"x"},
                     {"key":"inv/data/2.csv","size":1,"MD5checksum":"y"}]}"#,
    );
    assert_eq!(
        run(
            &map(
                get_object("inv/manifest.json", json!({"InputType": "MANIFEST"})),
                None
            ),
            &a
        ),
        Ok(json!([{"Bucket": "src", "Key": "k1", "Size": "5"},
                  {"Bucket": "src", "Key": "k2", "Size": "7"}]))
    );
    // listObjectsV2: AWS's object shape, a string prefix, MaxItems
    let list = json!({"Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {"MaxItems": 3},
        "Parameters": {"Bucket": "data", "Prefix": "in/ite"}});
    let out = run(&map(list, None), &a).unwrap();
    let keys: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["in/items.json", "in/items.jsonl"]);
    assert_eq!(out[0]["Size"], 17);
    assert_eq!(out[0]["StorageClass"], "STANDARD");
    assert!(out[0]["LastModified"].as_i64().unwrap() > 0);
    assert!(out[0]["Etag"].is_string());
    let list = json!({"Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {"MaxItems": 3}, "Parameters": {"Bucket": "data"}});
    assert_eq!(
        run(&map(list, None), &a).unwrap().as_array().unwrap().len(),
        3
    );
}

#[test]
fn result_writer_layout_file_by_file() {
    let f = fixture();
    put(
        &f.root.join("data"),
        "in/items.json",
        br#"[[1,2],{"fail":true},[3]]"#,
    );
    let a = access(&f, Some(ALL));
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "Label": "Rows",
        "ToleratedFailureCount": 1,
        "ItemReader": get_object("in/items.json", json!({"InputType": "JSON"})),
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "out", "Prefix": "runs/"},
            "WriterConfig": {"OutputType": "JSON", "Transformation": "FLATTEN"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "IsPresent": true, "Next": "F"}], "Default": "P"},
                "F": {"Type": "Fail", "Error": "Item.Bad", "Cause": "bad item"},
                "P": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let out = run(&def, &a).unwrap();
    let arn = out["MapRunArn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:states:us-east-1:000000000000:mapRun:Machine/Rows:"));
    let id = arn.rsplit(':').next().unwrap();
    assert_eq!(
        out["ResultWriterDetails"],
        json!({"Bucket": "out", "Key": format!("runs/{id}/manifest.json")})
    );
    let dir = f.root.join("out/runs").join(id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["FAILED_0.json", "SUCCEEDED_0.json", "manifest.json"]
    );
    let read = |n: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(n)).unwrap()).unwrap()
    };
    assert_eq!(read("SUCCEEDED_0.json"), json!([1, 2, 3]));
    let failed = read("FAILED_0.json");
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["Status"], "FAILED");
    assert_eq!(failed[0]["Error"], "Item.Bad");
    assert_eq!(failed[0]["Cause"], "bad item");
    assert_eq!(failed[0]["Input"], r#"{"fail":true}"#);
    assert!(failed[0]["ExecutionArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:states:us-east-1:000000000000:execution:Machine/Rows:"));
    let size = |n: &str| std::fs::metadata(dir.join(n)).unwrap().len();
    assert_eq!(
        read("manifest.json"),
        json!({"DestinationBucket": "out", "MapRunArn": arn, "ResultFiles": {
            "FAILED": [{"Key": format!("runs/{id}/FAILED_0.json"), "Size": size("FAILED_0.json")}],
            "PENDING": [],
            "SUCCEEDED": [{"Key": format!("runs/{id}/SUCCEEDED_0.json"), "Size": size("SUCCEEDED_0.json")}]}})
    );
}

fn cause(r: Result<Value, StateError>) -> (String, String) {
    let e = r.expect_err("must fail");
    (e.error, e.cause.unwrap_or_default())
}

#[test]
fn attacker_keys_buckets_roles_links_and_sizes() {
    let f = fixture();
    put(&f.root, "outside/secret.json", b"[\"secret\"]");
    put(&f.root.join("data"), "in/items.json", b"[1]");
    let a = access(&f, Some(ALL));
    // traversal in every spelling never leaves the bucket
    for key in [
        "../outside/secret.json",
        "in/../../outside/secret.json",
        "/etc/passwd",
        "%2e%2e/outside/secret.json",
        "..%2Foutside%2Fsecret.json",
        "in\\..\\..\\outside\\secret.json",
        "in//items.json",
        "in/\0",
    ] {
        let (err, why) = cause(run(&map(get_object(key, json!({})), None), &a));
        assert_eq!(err, "States.ItemReaderFailed", "{key}");
        assert!(!why.contains("secret\""), "{key}: {why}");
    }
    let (_, why) = cause(run(&map(get_object("../x", json!({})), None), &a));
    assert!(why.contains("`..`"), "{why}");
    // a bucket that is not configured is named, for reading, listing and writing
    let list = |b: &str| json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": b}});
    let (err, why) = cause(run(&map(list("nosuch"), None), &a));
    assert_eq!(err, "States.ItemReaderFailed");
    assert!(why.contains("bucket `nosuch` is not configured"), "{why}");
    let mut unconfigured = get_object("in/items.json", json!({}));
    unconfigured["Parameters"]["Bucket"] = json!("nosuch");
    let (_, why) = cause(run(&map(unconfigured, None), &a));
    assert!(why.contains("bucket `nosuch` is not configured"), "{why}");
    let writer = |b: &str| json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": b, "Prefix": "p"}});
    let (err, why) = cause(run(
        &map(
            get_object("in/items.json", json!({})),
            Some(writer("nosuch")),
        ),
        &a,
    ));
    assert_eq!(err, "States.ResultWriterFailed");
    assert!(why.contains("bucket `nosuch` is not configured"), "{why}");
    // a role without s3:PutObject: the missing permission and the resource are named
    let read_only = r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::data/*"}]}"#;
    let ro = access(&f, Some(read_only));
    let (err, why) = cause(run(
        &map(get_object("in/items.json", json!({})), Some(writer("out"))),
        &ro,
    ));
    assert_eq!(err, "States.ResultWriterFailed");
    assert!(
        why.contains("does not allow s3:PutObject on arn:aws:s3:::out/p/"),
        "{why}"
    );
    assert!(std::fs::read_dir(f.root.join("out"))
        .unwrap()
        .next()
        .is_none());
    // ... nor s3:ListBucket; a Deny wins; no role reads nothing
    let (_, why) = cause(run(&map(list("data"), None), &ro));
    assert!(why.contains("s3:ListBucket on arn:aws:s3:::data"), "{why}");
    let denied = access(
        &f,
        Some(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
                              {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/in/*"}]}"#,
        ),
    );
    let (_, why) = cause(run(
        &map(get_object("in/items.json", json!({})), None),
        &denied,
    ));
    assert!(why.contains("does not allow s3:GetObject"), "{why}");
    let (_, why) = cause(run(
        &map(get_object("in/items.json", json!({})), None),
        &access(&f, None),
    ));
    assert!(why.contains("no execution role"), "{why}");
    // a symlink planted in the bucket (to a file or a directory outside) is never followed,
    // and listing does not show what it leads to
    std::os::unix::fs::symlink(
        f.root.join("outside/secret.json"),
        f.root.join("data/in/link.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(f.root.join("outside"), f.root.join("data/escape")).unwrap();
    for key in ["in/link.json", "escape/secret.json"] {
        let (_, why) = cause(run(&map(get_object(key, json!({})), None), &a));
        assert!(why.contains("symbolic link"), "{key}: {why}");
    }
    let out = run(&map(list("data"), None), &a).unwrap();
    assert_eq!(out, json!([out[0].clone()]));
    assert_eq!(out[0]["Key"], "in/items.json");
    // a link planted where results go is not written through
    std::os::unix::fs::symlink(f.root.join("outside"), f.root.join("out/p")).unwrap();
    let (err, why) = cause(run(
        &map(get_object("in/items.json", json!({})), Some(writer("out"))),
        &a,
    ));
    assert_eq!(err, "States.ResultWriterFailed");
    assert!(why.contains("symbolic link"), "{why}");
    assert_eq!(
        std::fs::read_dir(f.root.join("outside")).unwrap().count(),
        1
    );
    // a huge object is refused without being read whole
    let big = std::fs::File::create(f.root.join("data/big.json")).unwrap();
    big.set_len(MAX_OBJECT_BYTES + 1).unwrap();
    let (_, why) = cause(run(&map(get_object("big.json", json!({})), None), &a));
    assert!(why.contains("larger than"), "{why}");
    // every decision is audited
    let audit = a.audit();
    assert!(audit
        .iter()
        .any(|r| r.action == "s3:GetObject" && r.resource == "arn:aws:s3:::data/in/items.json"));
}
