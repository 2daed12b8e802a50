//! Distributed Map ItemReader/ResultWriter against a real S3 wire protocol: moto's S3 server
//! (`moto[server]` from PyPI, installed into a venv under `target/` when missing), started by
//! the test on a free 127.0.0.1 port and stopped when it ends. Skipped with a message only
//! when moto cannot be installed, unless `WEFT_REQUIRE_MOTO=1` (`make test` sets it).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use weft_asl::{parse, run_express, FakeClock, Hooks, NoTasks, RunOptions, StateError};
use weft_engine::buckets::config::S3Entry;
use weft_engine::buckets::{BucketAccess, Buckets, Location};
use weft_sandbox::Policy;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `moto_server`, installed into `target/moto-venv` when needed; `None`: it cannot be.
fn moto_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEFT_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let venv = repo_root().join("target/moto-venv");
    let bin = venv.join("bin/moto_server");
    if bin.is_file() {
        return Some(bin);
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "moto[server]"])
            .status()
            .is_ok_and(|s| s.success());
    (ok && bin.is_file()).then_some(bin)
}

/// A moto server of this test's own, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    fn start(bin: &PathBuf) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let mut m = Moto { child, port };
        // ready once it answers (it exits on its own if it cannot start)
        loop {
            if let Some(status) = m.child.try_wait().unwrap() {
                panic!("moto_server exited: {status}");
            }
            if m.request("GET", "/", b"").is_some() {
                return m;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// One unsigned HTTP/1.0 request; the response's status line and body.
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Option<(String, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
        let status = String::from_utf8_lossy(&out[..out.iter().position(|b| *b == b'\r')?]);
        Some((status.into_owned(), out[split + 4..].to_vec()))
    }
}

fn run(def: &Value, a: &BucketAccess) -> Result<Value, StateError> {
    let sm = parse(&def.to_string()).unwrap_or_else(|e| panic!("{e}"));
    run_express(
        &sm,
        json!({}),
        &RunOptions::default(),
        &NoTasks,
        &FakeClock::default(),
        Hooks {
            item_reader: Some(a),
            result_writer: Some(a),
            ..Hooks::default()
        },
    )
}

fn machine(reader: Value, writer: Option<Value>) -> Value {
    let mut m = json!({"Type": "Map", "ItemReader": reader,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true});
    if let Some(w) = writer {
        m["ResultWriter"] = w;
    }
    json!({"StartAt": "M", "States": {"M": m}})
}

#[test]
fn item_reader_and_result_writer_over_the_s3_wire_protocol() {
    let Some(bin) = moto_server() else {
        assert!(
            std::env::var("WEFT_REQUIRE_MOTO").is_err(),
            "WEFT_REQUIRE_MOTO is set but moto[server] could not be installed"
        );
        eprintln!("SKIPPED: moto[server] could not be installed from PyPI (python3 -m venv + pip); the S3 wire test did not run");
        return;
    };
    let mut moto = Moto::start(&bin);
    let (status, _) = moto.request("PUT", "/lake", b"").unwrap();
    assert!(status.contains(" 200"), "{status}");
    let (status, _) = moto
        .request(
            "PUT",
            "/lake/in/items.jsonl",
            b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n",
        )
        .unwrap();
    assert!(status.contains(" 200"), "{status}");
    moto.request("PUT", "/lake/in/rows.csv", b"a;b\n1;2\n")
        .unwrap();
    // signed requests with credentials from the variables the entry names
    std::env::set_var("WEFT_TEST_S3_KEY_ID", "testing");
    std::env::set_var("WEFT_TEST_S3_SECRET", "testing");
    let entry = S3Entry {
        endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
        region: "us-east-1".into(),
        bucket: Some("lake".into()),
        allow_http: true,
        access_key_id_env: "WEFT_TEST_S3_KEY_ID".into(),
        secret_access_key_env: "WEFT_TEST_S3_SECRET".into(),
    };
    let mut locs = BTreeMap::new();
    locs.insert("lake".to_string(), Location::S3(entry));
    let buckets = Arc::new(Buckets::from_locations(locs).unwrap());
    let a_buckets = buckets.clone();
    let role = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::lake","arn:aws:s3:::lake/in/*"]},
                         {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::lake/out/*"}]}"#,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let a = BucketAccess::new(buckets, Some(Arc::new(role)), tmp.path().to_path_buf());
    let get = |key: &str, cfg: Value| {
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": cfg,
            "Parameters": {"Bucket": "lake", "Key": key}})
    };
    assert_eq!(
        run(
            &machine(get("in/items.jsonl", json!({"InputType": "JSONL"})), None),
            &a
        ),
        Ok(json!([{"n": 1}, {"n": 2}, {"n": 3}]))
    );
    assert_eq!(
        run(
            &machine(
                get(
                    "in/rows.csv",
                    json!({"InputType": "CSV", "CSVDelimiter": "SEMICOLON"})
                ),
                None
            ),
            &a
        ),
        Ok(json!([{"a": "1", "b": "2"}]))
    );
    let listed = run(
        &machine(
            json!({"Resource": "arn:aws:states:::s3:listObjectsV2",
                "Parameters": {"Bucket": "lake", "Prefix": "in/"}}),
            None,
        ),
        &a,
    )
    .unwrap();
    assert_eq!(listed[0]["Key"], "in/items.jsonl");
    assert_eq!(listed[0]["Size"], 24);
    assert!(listed[0]["Etag"].as_str().unwrap().len() > 2);
    assert_eq!(listed[1]["Key"], "in/rows.csv");
    // results written through the wire, read back the same way
    let out = run(
        &machine(
            get("in/items.jsonl", json!({"InputType": "JSONL"})),
            Some(json!({"Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "lake", "Prefix": "out"},
                "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}})),
        ),
        &a,
    )
    .unwrap();
    // (objects written with credentials are private: read them back signed)
    let reader = BucketAccess::new(
        a_buckets.clone(),
        Some(Arc::new(
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/*"}]}"#)
                .unwrap(),
        )),
        tmp.path().to_path_buf(),
    );
    let manifest_key = out["ResultWriterDetails"]["Key"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&reader.get("lake", manifest_key).unwrap()).unwrap();
    assert_eq!(manifest["DestinationBucket"], "lake");
    let succeeded = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .unwrap();
    assert_eq!(
        reader.get("lake", succeeded).unwrap(),
        b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"
    );
    // the role decides before the wire is used: no PutObject outside out/, no traversal
    let e = run(
        &machine(
            get("in/items.jsonl", json!({"InputType": "JSONL"})),
            Some(json!({"Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "lake", "Prefix": "in"}})),
        ),
        &a,
    )
    .unwrap_err();
    assert_eq!(e.error, "States.ResultWriterFailed");
    assert!(e
        .cause
        .unwrap()
        .contains("s3:PutObject on arn:aws:s3:::lake/in/"));
    let e = run(&machine(get("in/../secret", json!({})), None), &a).unwrap_err();
    assert_eq!(e.error, "States.ItemReaderFailed");
    let e = run(&machine(get("in/missing.json", json!({})), None), &a).unwrap_err();
    assert!(e
        .cause
        .unwrap()
        .contains("arn:aws:s3:::lake/in/missing.json"));
}
