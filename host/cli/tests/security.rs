//! The security suite, end to end through the real `weft` binary: each way out of a grant, around
//! the API's policies or into a crash that SECURITY.md says is closed is tried here as an attacker
//! would, with several spellings of each (the crates' own tests try many more). Every attack is
//! paired with the user's side: the same capability used as granted still works.

mod common;
use common::*;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn weft_in(home: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_HOME", home)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The `{"Error","Cause"}` of a failed run (exit 1).
fn failure(o: &Output) -> Value {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a failed run, got {:?}: {} {}",
        o.status,
        out(o),
        err(o)
    );
    serde_json::from_str(&out(o)).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

fn install(home: &Path, plugins: &[&str]) {
    for p in plugins {
        let o = weft_in(
            home,
            &repo(),
            &["plugin", "install", plugin(p).to_str().unwrap()],
        );
        assert!(o.status.success(), "{p}: {}", err(&o));
    }
}

/// A TCP listener that answers every request with `{"ok":true}` and counts connections.
struct Sink {
    port: u16,
    hits: Arc<AtomicUsize>,
    paths: Arc<std::sync::Mutex<Vec<String>>>,
}

fn sink(ip: &str) -> Sink {
    let l = TcpListener::bind((ip, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, p) = (hits.clone(), paths.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(line) = head.lines().next() {
                p.lock().unwrap().push(line.to_string());
            }
            let body = r#"{"ok":true}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Sink { port, hits, paths }
}

fn write_policy(dir: &Path, name: &str, policy: Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, policy.to_string()).unwrap();
    p.to_str().unwrap().to_string()
}

fn invoke(home: &Path, dir: &Path, plugin: &str, policy: &str, input: Value) -> Output {
    weft_in(
        home,
        dir,
        &[
            "invoke",
            plugin,
            "--policy",
            policy,
            "--input",
            &input.to_string(),
        ],
    )
}

// ---- 1. HTTP grants are matched on the parsed URL that is then requested ----------------------

#[test]
fn http_grants_hold_for_every_spelling_of_a_host() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    install(home.path(), &["http-request.wasm"]);
    let target = sink("127.0.0.2");
    let allowed = sink("127.0.0.1");
    let t = target.port;
    let loopback_only = write_policy(
        work.path(),
        "loopback.json",
        json!({"Statement": [{"Effect": "Allow", "Action": "http:Request",
                              "Resource": "http://127.0.0.1:*/*"}]}),
    );
    // the user's side: the granted host is reached
    let o = invoke(
        home.path(),
        work.path(),
        "http-request",
        &loopback_only,
        json!({"url": format!("http://127.0.0.1:{}/x", allowed.port)}),
    );
    assert!(o.status.success(), "{} {}", out(&o), err(&o));
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 1);

    let spellings = [
        format!("http://127.0.0.1:1@127.0.0.2:{t}/"),
        format!("http://127.0.0.1:{t}@127.0.0.2:{t}/"),
        format!("http://user@127.0.0.2:{t}/"),
        format!("http://2130706434:{t}/"),
        format!("http://0x7f000002:{t}/"),
        format!("http://0x7f.0.0.2:{t}/"),
        format!("http://0177.0.0.2:{t}/"),
        format!("http://127.2:{t}/"),
        format!("http://127.0.0.2.:{t}/"),
        format!("http://[::ffff:127.0.0.2]:{t}/"),
        format!("HTTP://127.0.0.2:{t}/"),
        format!("http://127.0.0.2:{t}/?http://127.0.0.1:1/"),
        format!("http://127.0.0.2:{t}#@127.0.0.1:1/"),
    ];
    for url in &spellings {
        let o = invoke(
            home.path(),
            work.path(),
            "http-request",
            &loopback_only,
            json!({ "url": url }),
        );
        let f = failure(&o);
        assert_eq!(f["Error"], "Sandbox.PermissionDenied", "{url}: {f}");
    }
    // a Deny on 127.0.0.2 holds against the same spellings, under a broad Allow
    let deny = write_policy(
        work.path(),
        "deny.json",
        json!({"Statement": [
            {"Effect": "Allow", "Action": "http:Request", "Resource": "http://*"},
            {"Effect": "Deny", "Action": "http:Request", "Resource": "http://127.0.0.2*"}]}),
    );
    for url in &spellings {
        let o = invoke(
            home.path(),
            work.path(),
            "http-request",
            &deny,
            json!({ "url": url }),
        );
        let f = failure(&o);
        assert_eq!(f["Error"], "Sandbox.PermissionDenied", "{url}: {f}");
    }
    assert_eq!(
        target.hits.load(Ordering::SeqCst),
        0,
        "a denied host was reached: {:?}",
        target.paths.lock().unwrap()
    );

    // a host pattern matches the host, a path pattern the path
    let suffix = write_policy(
        work.path(),
        "suffix.json",
        json!({"Statement": [{"Effect": "Allow", "Action": "http:Request",
                              "Resource": "http://*.example.com/*"}]}),
    );
    for url in [
        format!("http://127.0.0.2:{t}/?.example.com/"),
        format!("http://127.0.0.2:{t}/x.example.com/"),
        format!("http://127.0.0.2:{t}#.example.com/"),
        format!("http://x.example.com@127.0.0.2:{t}/"),
    ] {
        let f = failure(&invoke(
            home.path(),
            work.path(),
            "http-request",
            &suffix,
            json!({ "url": url }),
        ));
        assert_eq!(f["Error"], "Sandbox.PermissionDenied", "{url}: {f}");
    }
    let public = write_policy(
        work.path(),
        "public.json",
        json!({"Statement": [{"Effect": "Allow", "Action": "http:Request",
                              "Resource": format!("http://127.0.0.1:{}/public/*", allowed.port)}]}),
    );
    let a = allowed.port;
    for url in [
        format!("http://127.0.0.1:{a}/public/../index.json"),
        format!("http://127.0.0.1:{a}/public/%2e%2e/index.json"),
        format!("http://127.0.0.1:{a}/public/%2E%2E/index.json"),
        format!("http://127.0.0.1:{a}/public/..%2findex.json"),
        format!("http://127.0.0.1:{a}/public\\..\\index.json"),
    ] {
        let o = invoke(
            home.path(),
            work.path(),
            "http-request",
            &public,
            json!({ "url": url }),
        );
        let f = failure(&o);
        assert_eq!(f["Error"], "Sandbox.PermissionDenied", "{url}: {f}");
    }
    assert_eq!(
        allowed.hits.load(Ordering::SeqCst),
        1,
        "{:?}",
        allowed.paths.lock().unwrap()
    );
    assert_eq!(target.hits.load(Ordering::SeqCst), 0);
}

// ---- 2. Nothing a guest plants on disk widens what a later task reaches -----------------------

#[test]
fn a_planted_symlink_does_not_redirect_a_later_preopen() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    install(
        home.path(),
        &["hostile/symlink.wasm", "hostile/escape.wasm"],
    );
    std::fs::create_dir_all(work.path().join("shared")).unwrap();
    let writer = write_policy(
        work.path(),
        "writer.json",
        json!({"Statement": [{"Effect": "Allow", "Action": ["fs:Read", "fs:Write"],
                              "Resource": "file:shared/*"}]}),
    );
    // the guest may not create a link that leaves the directory it is created in
    for (target, link) in [
        ("../../../../etc", "/shared/reports"),
        ("/etc", "/shared/abs"),
        ("..", "/shared/up"),
        ("a/../../..", "/shared/climb"),
    ] {
        let o = invoke(
            home.path(),
            work.path(),
            "hostile-symlink",
            &writer,
            json!({"target": target, "link": link}),
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{target}: {} {}",
            out(&o),
            err(&o)
        );
        assert!(
            std::fs::symlink_metadata(work.path().join(link.trim_start_matches('/'))).is_err(),
            "the link {link} -> {target} was created"
        );
    }
    // a link inside its own directory is fine
    std::fs::write(work.path().join("shared/a.txt"), "a").unwrap();
    let o = invoke(
        home.path(),
        work.path(),
        "hostile-symlink",
        &writer,
        json!({"target": "a.txt", "link": "/shared/b.txt"}),
    );
    assert!(o.status.success(), "{} {}", out(&o), err(&o));

    // a link planted by an earlier task (here: by hand) is never followed by a preopen, whatever
    // component it sits on
    std::os::unix::fs::symlink(
        "../../../../../../../../etc",
        work.path().join("shared/reports"),
    )
    .unwrap();
    std::fs::create_dir_all(work.path().join("shared/deep")).unwrap();
    std::os::unix::fs::symlink("/etc", work.path().join("shared/deep/abs")).unwrap();
    std::os::unix::fs::symlink("reports", work.path().join("shared/chain")).unwrap();
    for (grant, path) in [
        ("file:shared/reports/*", "/shared/reports/passwd"),
        ("file:shared/reports", "/shared/reports/passwd"),
        ("file:shared/deep/abs/*", "/shared/deep/abs/passwd"),
        ("file:shared/chain/*", "/shared/chain/passwd"),
    ] {
        let reader = write_policy(
            work.path(),
            "reader.json",
            json!({"Statement": [{"Effect": "Allow", "Action": ["fs:Read", "fs:Write"],
                                  "Resource": grant}]}),
        );
        let o = invoke(
            home.path(),
            work.path(),
            "hostile-escape",
            &reader,
            json!({ "path": path }),
        );
        let f = failure(&o);
        assert_eq!(f["Error"], "Sandbox.PermissionDenied", "{grant}: {f}");
        assert!(!out(&o).contains("root:"), "{grant}: {}", out(&o));
    }
}

// ---- 9. A Deny applies to files whatever the spelling of its resource -------------------------

#[test]
fn file_denies_are_never_skipped() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    install(home.path(), &["hostile/escape.wasm"]);
    std::fs::create_dir_all(work.path().join("data/secret")).unwrap();
    std::fs::write(work.path().join("data/secret/key.pem"), "PRIVATE").unwrap();
    std::fs::write(work.path().join("data/public.txt"), "hello").unwrap();
    let abs = work.path().canonicalize().unwrap();
    let allow = json!({"Effect": "Allow", "Action": "fs:Read", "Resource": "file:data/*"});
    // the user's side: the allow alone reads both
    let p = write_policy(
        work.path(),
        "p.json",
        json!({ "Statement": [allow.clone()] }),
    );
    let o = invoke(
        home.path(),
        work.path(),
        "hostile-escape",
        &p,
        json!({"path": "/data/public.txt"}),
    );
    assert!(o.status.success(), "{} {}", out(&o), err(&o));
    for deny in [
        json!("*secret*"),
        json!("file:*secret*"),
        json!(format!("file:{}/data/secret/*", abs.display())),
        json!(format!("file:{}/data/secret", abs.display())),
        json!("file:./data/secret/*"),
        json!("file:data//secret/"),
        json!("*"),
    ] {
        let p = write_policy(
            work.path(),
            "p.json",
            json!({"Statement": [allow.clone(),
                {"Effect": "Deny", "Action": "fs:Read", "Resource": deny.clone()}]}),
        );
        let o = invoke(
            home.path(),
            work.path(),
            "hostile-escape",
            &p,
            json!({"path": "/data/secret/key.pem"}),
        );
        // either the policy is refused as uninterpretable (exit 2) or the read is denied
        if o.status.code() == Some(2) {
            assert!(err(&o).contains("/Statement/1"), "{deny}: {}", err(&o));
            continue;
        }
        let f = failure(&o);
        assert_eq!(f["Error"], "Sandbox.PermissionDenied", "{deny}: {f}");
        assert!(!out(&o).contains("PRIVATE"));
    }
    // a resource weft cannot interpret for fs actions is an error with its pointer
    let p = write_policy(
        work.path(),
        "p.json",
        json!({"Statement": [{"Effect": "Allow", "Action": "fs:Read", "Resource": "data/*"}]}),
    );
    let o = invoke(
        home.path(),
        work.path(),
        "hostile-escape",
        &p,
        json!({"path": "/data/public.txt"}),
    );
    assert_eq!(o.status.code(), Some(2), "{} {}", out(&o), err(&o));
    assert!(err(&o).contains("/Statement/0/Resource"), "{}", err(&o));
}

// ---- 10. Secret names do not alias ------------------------------------------------------------

#[test]
fn secret_names_do_not_alias_around_a_deny() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    install(home.path(), &["hostile/secrets.wasm"]);
    let p = write_policy(
        work.path(),
        "p.json",
        json!({"Statement": [
            {"Effect": "Allow", "Action": "secrets:Get", "Resource": "secret:*"},
            {"Effect": "Deny", "Action": "secrets:Get", "Resource": "secret:root*"}]}),
    );
    let run = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args([
                "invoke",
                "hostile-secrets",
                "--policy",
                &p,
                "--input",
                &json!({ "name": name }).to_string(),
            ])
            .env("WEFT_HOME", home.path())
            .env("WEFT_SECRET_ROOT_PASSWORD", "hunter2")
            .env("WEFT_SECRET_DB_PASSWORD", "s3cret")
            .current_dir(work.path())
            .output()
            .unwrap()
    };
    for name in [
        "root_password",
        "ROOT_PASSWORD",
        "ROOT-PASSWORD",
        "Root_Password",
        "ROOT.PASSWORD",
        "root-password",
        "rOOT_pASSWORD",
        " ROOT_PASSWORD",
        "ROOT_PASSWORD ",
        "ROOT%5FPASSWORD",
        "./ROOT_PASSWORD",
        "\u{0280}OOT_PASSWORD",
    ] {
        let o = run(name);
        assert_eq!(o.status.code(), Some(1), "{name:?}: {}", out(&o));
        assert!(!out(&o).contains("\"length\":7"), "{name:?} read the value");
    }
    // the user's side: an allowed secret is read
    let o = run("db_password");
    assert!(o.status.success(), "{} {}", out(&o), err(&o));
    assert!(out(&o).contains("\"length\":6"), "{}", out(&o));
}

// ---- 11 and 13. Bundles ----------------------------------------------------------------------

fn zip_of(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn hostile_bundles_are_refused_without_inflating_them() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // a bomb: entries that inflate to 255 MiB each
    let bomb = work.path().join("bomb.zip");
    {
        let f = std::fs::File::create(&bomb).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        let chunk = vec![0u8; 1 << 20];
        for i in 0..4 {
            z.start_file(format!("p{i}.wasm"), opts).unwrap();
            for _ in 0..255 {
                z.write_all(&chunk).unwrap();
            }
        }
        z.finish().unwrap();
    }
    assert!(std::fs::metadata(&bomb).unwrap().len() < 8 << 20);
    let child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["plugin", "install", bomb.to_str().unwrap()])
        .env("WEFT_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // peak memory, read while it runs (the bomb is refused long before 255 MiB are inflated)
    let mut peak_kib = 0u64;
    let watcher = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                Ok(s) => {
                    if let Some(v) = s
                        .lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        peak_kib = peak_kib.max(v);
                    }
                }
                Err(_) => break,
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak_kib
    });
    let o = child.wait_with_output().unwrap();
    let peak = watcher.join().unwrap();
    assert!(!o.status.success(), "the bomb was installed");
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {:?}",
        o.status
    );
    assert!(
        peak < 200 * 1024,
        "installing the bomb took {peak} KiB: {}",
        err(&o)
    );

    // two manifests: the installer must not pick one that other tools would not
    let manifest = br#"{"plugins":[]}"#.to_vec();
    let dup = work.path().join("dup.zip");
    // the zip crate refuses to write two equal names: write a placeholder of the same length,
    // then give both records (local headers and directory) the manifest's name
    zip_of(
        &dup,
        &[
            ("weft-bundle.json", manifest.clone()),
            ("weft-bundle.jsoX", manifest.clone()),
        ],
    );
    let mut bytes = std::fs::read(&dup).unwrap();
    let (from, to) = (b"weft-bundle.jsoX", b"weft-bundle.json");
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from) {
        bytes[at + i..at + i + from.len()].copy_from_slice(to);
        at += i + from.len();
    }
    std::fs::write(&dup, bytes).unwrap();
    let o = weft_in(
        home.path(),
        work.path(),
        &["plugin", "install", dup.to_str().unwrap()],
    );
    assert!(!o.status.success(), "a bundle with two manifests installed");
    assert!(err(&o).contains("name the same file"), "{}", err(&o));
    for name in ["../evil.wasm", "/abs.wasm", "a/../../b.wasm"] {
        let z = work.path().join("names.zip");
        zip_of(
            &z,
            &[
                ("weft-bundle.json", manifest.clone()),
                (name, b"\0asm".to_vec()),
            ],
        );
        let o = weft_in(
            home.path(),
            work.path(),
            &["plugin", "install", z.to_str().unwrap()],
        );
        assert!(!o.status.success(), "{name} was accepted");
    }
}

// ---- 14. ItemReader reads only what the execution role grants ---------------------------------

#[test]
fn item_reader_does_not_read_host_files() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for (bucket, key) in [
        ("/etc", "passwd"),
        ("/", "etc/passwd"),
        (".", "../../../../../../etc/passwd"),
        ("data", "/etc/passwd"),
        ("", "/etc/passwd"),
    ] {
        let def = json!({
            "StartAt": "M",
            "States": {"M": {"Type": "Map", "End": true,
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                               "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                               "Parameters": {"Bucket": bucket, "Key": key}},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                                  "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}
        });
        let f = work.path().join("m.asl.json");
        std::fs::write(&f, def.to_string()).unwrap();
        let o = weft_in(
            home.path(),
            work.path(),
            &["run", f.to_str().unwrap(), "--input", "{}"],
        );
        assert!(!out(&o).contains("root"), "{bucket}/{key}: {}", out(&o));
        let fl = failure(&o);
        assert!(
            fl["Error"] == "States.ItemReaderFailed" || fl["Error"] == "Sandbox.PermissionDenied",
            "{bucket}/{key}: {fl}"
        );
    }
}

// ---- 7 and 8. Hostile expressions fail one run, never the process -----------------------------

#[test]
fn hostile_expressions_are_rejected_or_bounded() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let deep = |expr: String| {
        json!({"QueryLanguage": "JSONata", "StartAt": "P",
               "States": {"P": {"Type": "Pass", "Output": format!("{{% {expr} %}}"), "End": true}}})
    };
    for expr in [
        format!("{}1", "-".repeat(20_000)),
        format!("1{}", "+1".repeat(20_000)),
        format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000)),
        format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000)),
        format!("$a{}", ".b".repeat(20_000)),
        format!("{}1", "$not(".repeat(5_000)) + &")".repeat(5_000),
    ] {
        let f = work.path().join("deep.asl.json");
        std::fs::write(&f, deep(expr).to_string()).unwrap();
        let o = weft_in(home.path(), work.path(), &["validate", f.to_str().unwrap()]);
        assert!(o.status.code().is_some(), "validate died: {:?}", o.status);
        let o = weft_in(
            home.path(),
            work.path(),
            &["run", f.to_str().unwrap(), "--input", "{}"],
        );
        assert!(
            matches!(o.status.code(), Some(1) | Some(2)),
            "run: {:?} {}",
            o.status,
            err(&o)
        );
    }
    for (expr, input) in [
        ("$pad(\"x\", $states.input.n)", json!({"n": 1e12})),
        ("$pad(\"x\", -$states.input.n)", json!({"n": 1e12})),
        ("[1..$states.input.n]", json!({"n": 1e9})),
        (
            "$join([1..$states.input.n].$string(), \",\")",
            json!({"n": 1e8}),
        ),
        ("$sum([1..$states.input.n])", json!({"n": 1e9})),
    ] {
        let f = work.path().join("budget.asl.json");
        std::fs::write(
            &f,
            json!({"QueryLanguage": "JSONata", "StartAt": "P",
                   "States": {"P": {"Type": "Pass", "Output": format!("{{% {expr} %}}"), "End": true}}})
            .to_string(),
        )
        .unwrap();
        let o = weft_in(
            home.path(),
            work.path(),
            &["run", f.to_str().unwrap(), "--input", &input.to_string()],
        );
        let fl = failure(&o);
        assert!(
            fl["Error"].as_str().unwrap().starts_with("States."),
            "{expr}: {fl}"
        );
    }
    // intrinsics too
    let f = work.path().join("intr.asl.json");
    std::fs::write(
        &f,
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true,
            "Parameters": {"a.$": "States.ArrayRange(1, 1000000000, 1)"}}}})
        .to_string(),
    )
    .unwrap();
    let fl = failure(&weft_in(
        home.path(),
        work.path(),
        &["run", f.to_str().unwrap(), "--input", "{}"],
    ));
    assert!(fl["Error"].as_str().unwrap().starts_with("States."), "{fl}");
    // AWS's payload limit
    let f = work.path().join("big.asl.json");
    // 40 copies of a 10 KB string: 400 KB from a 10 KB input
    let copies = format!("States.Array({})", vec!["$.s"; 40].join(", "));
    std::fs::write(
        &f,
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true,
            "Parameters": {"a.$": copies}}}})
        .to_string(),
    )
    .unwrap();
    let fl = failure(&weft_in(
        home.path(),
        work.path(),
        &[
            "run",
            f.to_str().unwrap(),
            "--input",
            &json!({"s": "x".repeat(10_000)}).to_string(),
        ],
    ));
    assert_eq!(fl["Error"], "States.DataLimitExceeded", "{fl}");
}

// ---- 3-6 and 12. The server ------------------------------------------------------------------

fn start_server(backend: &Backend, home: &Path, work: &Path, no_auth: bool) -> Server {
    let dags = work.join("dags");
    start_weft_server_on(backend, home, work, no_auth, &[("WEFT_DAGS", &dags)])
}

/// A SigV4-signed Step Functions call with `key`; `tamper` may change the request after signing.
fn signed(
    port: u16,
    key: (&str, &str),
    action: &str,
    body: &Value,
    tamper: impl FnOnce(&mut Vec<(String, String)>, &mut String),
) -> (u16, Value) {
    let mut b = body.to_string();
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/us-east-1/states/aws4_request", now.format("%Y%m%d"));
    let host = format!("127.0.0.1:{port}");
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(b.as_bytes())
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        ),
        ("host".to_string(), host),
        ("x-amz-content-sha256".to_string(), hash.clone()),
        ("x-amz-date".to_string(), amz_date.clone()),
        (
            "x-amz-target".to_string(),
            format!("AWSStepFunctions.{action}"),
        ),
    ];
    let names = [
        "content-type",
        "host",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-target",
    ];
    let sig = weft_server::sigv4::sign(
        key.1, "POST", "/", "", &headers, &names, &hash, &amz_date, &scope,
    );
    headers.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            key.0,
            names.join(";")
        ),
    ));
    tamper(&mut headers, &mut b);
    let mut req = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{b}",
        b.len()
    ));
    let (st, body) = raw(port, &req);
    (st, serde_json::from_str(&body).unwrap_or(Value::Null))
}

const ADMIN: (&str, &str) = ("WEFTADMINKEY", "admin-secret-0123456789");
const DEV: (&str, &str) = ("WEFTDEVKEY", "dev-secret-0123456789");

fn server_home(home: &Path, work: &Path) {
    let dev_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["states:*"],
         "Resource": ["arn:aws:states:*:*:stateMachine:dev-*", "arn:aws:states:*:*:execution:dev-*:*"]},
        {"Effect": "Allow", "Action": ["states:List*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "weft:role:dev-*"}]});
    std::fs::write(home.join("dev-policy.json"), dev_policy.to_string()).unwrap();
    std::fs::write(
        home.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[dev]\naws_access_key_id = {}\naws_secret_access_key = {}\nweft_policy = dev-policy.json\n",
            ADMIN.0, ADMIN.1, DEV.0, DEV.1
        ),
    )
    .unwrap();
    std::fs::create_dir_all(home.join("roles")).unwrap();
    for role in ["dev-runner", "payments-admin"] {
        std::fs::write(
            home.join(format!("roles/{role}.json")),
            json!({"Statement": [{"Effect": "Allow", "Action": "secrets:Get",
                                  "Resource": format!("secret:{role}")}]})
            .to_string(),
        )
        .unwrap();
    }
    install(home, &["echo.wasm"]);
    std::fs::create_dir_all(work.join("dags")).unwrap();
    std::fs::write(
        work.join("dags/ops.dag.yaml"),
        "ops:\n  schedule: null\n  start_date: 2024-01-01\n  tasks:\n    t:\n      operator: echo\n",
    )
    .unwrap();
}

fn pass_machine(name: &str, extra: Value) -> Value {
    let mut req = json!({
        "name": name,
        "roleArn": "weft:role:dev-runner",
        "definition": json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string(),
    });
    if let (Some(o), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    req
}

fn the_api_authorises_every_resource_and_binds_signatures(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    server_home(home.path(), work.path());
    let s = start_server(backend, home.path(), work.path(), false);
    let p = s.port;
    let none = |_: &mut Vec<(String, String)>, _: &mut String| {};
    // the admin makes a prod machine; dev makes its own
    let (st, prod) = signed(
        p,
        ADMIN,
        "CreateStateMachine",
        &pass_machine("prod-pay", json!({})),
        none,
    );
    assert_eq!(st, 200, "{prod}");
    let prod_arn = prod["stateMachineArn"].as_str().unwrap().to_string();
    let (st, dev) = signed(
        p,
        DEV,
        "CreateStateMachine",
        &pass_machine("dev-etl", json!({})),
        none,
    );
    assert_eq!(st, 200, "{dev}");
    let dev_arn = dev["stateMachineArn"].as_str().unwrap().to_string();
    let (st, ex) = signed(
        p,
        DEV,
        "StartExecution",
        &json!({"stateMachineArn": dev_arn}),
        none,
    );
    assert_eq!(st, 200, "{ex}");
    let dev_exec = ex["executionArn"].as_str().unwrap().to_string();

    // 3: a decoy ARN field never decides
    for (action, body) in [
        (
            "StartExecution",
            json!({"executionArn": dev_exec, "stateMachineArn": prod_arn}),
        ),
        (
            "StartExecution",
            json!({"stateMachineArn": prod_arn, "executionArn": dev_exec}),
        ),
        (
            "DeleteStateMachine",
            json!({"executionArn": dev_exec, "stateMachineArn": prod_arn}),
        ),
        (
            "DescribeStateMachine",
            json!({"activityArn": dev_arn, "stateMachineArn": prod_arn}),
        ),
        (
            "StartSyncExecution",
            json!({"executionArn": dev_exec, "stateMachineArn": prod_arn}),
        ),
        (
            "UpdateStateMachine",
            json!({"executionArn": dev_exec, "stateMachineArn": prod_arn,
                                      "definition": "{}"}),
        ),
    ] {
        let (st, v) = signed(p, DEV, action, &body, none);
        assert_eq!(
            (st, v["__type"].as_str().unwrap_or("")),
            (400, "AccessDeniedException"),
            "{action} {body}: {v}"
        );
    }
    let (st, v) = signed(
        p,
        ADMIN,
        "DescribeStateMachine",
        &json!({"stateMachineArn": prod_arn}),
        none,
    );
    assert_eq!(st, 200, "the prod machine was deleted through a decoy: {v}");
    let (_, v) = signed(
        p,
        ADMIN,
        "ListExecutions",
        &json!({"stateMachineArn": prod_arn}),
        none,
    );
    assert_eq!(v["executions"], json!([]), "prod ran for dev: {v}");
    // lists show only what the caller may see
    let (st, v) = signed(p, DEV, "ListStateMachines", &json!({}), none);
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev-etl"], "{v}");

    // 5: PassRole on every role a definition names
    let sneaky = json!({"StartAt": "T", "States": {"T": {"Type": "Parallel", "End": true,
        "Branches": [{"StartAt": "S", "States": {"S": {"Type": "Task", "End": true,
            "Resource": "weft:plugin:echo",
            "Credentials": {"RoleArn": "weft:role:payments-admin"}}}}]}}});
    let (st, v) = signed(
        p,
        DEV,
        "CreateStateMachine",
        &pass_machine("dev-sneaky", json!({"definition": sneaky.to_string()})),
        none,
    );
    assert_eq!(
        (st, v["__type"].as_str().unwrap_or("")),
        (400, "AccessDeniedException"),
        "{v}"
    );
    let (st, v) = signed(
        p,
        DEV,
        "CreateStateMachine",
        &pass_machine(
            "dev-sneaky2",
            json!({"roleArn": "arn:aws:iam::000000000000:role/payments-admin"}),
        ),
        none,
    );
    assert_eq!(
        (st, v["__type"].as_str().unwrap_or("")),
        (400, "AccessDeniedException"),
        "{v}"
    );
    // a child execution of prod from a dev machine is the dev machine's role's decision
    let child = json!({"StartAt": "C", "States": {"C": {"Type": "Task", "End": true,
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": prod_arn, "Input": {}}}}});
    let (st, v) = signed(
        p,
        DEV,
        "CreateStateMachine",
        &pass_machine(
            "dev-child",
            json!({"definition": child.to_string(), "type": "EXPRESS"}),
        ),
        none,
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = signed(
        p,
        DEV,
        "StartSyncExecution",
        &json!({"stateMachineArn": v["stateMachineArn"]}),
        none,
    );
    assert!(st == 200 && v["status"] == "FAILED", "{st} {v}");
    let (_, v) = signed(
        p,
        ADMIN,
        "ListExecutions",
        &json!({"stateMachineArn": prod_arn}),
        none,
    );
    assert_eq!(
        v["executions"],
        json!([]),
        "prod ran as a child of dev: {v}"
    );

    // 6: a signature binds the body, the route and the method
    let body = json!({"stateMachineArn": dev_arn});
    let (st, _) = signed(p, DEV, "DescribeStateMachine", &body, none);
    assert_eq!(st, 200);
    let other = json!({"stateMachineArn": prod_arn}).to_string();
    let (st, v) = signed(p, DEV, "DescribeStateMachine", &body, move |_, b| {
        *b = other
    });
    assert_eq!(st, 403, "a new body under the old hash was accepted: {v}");
    let (st, v) = signed(p, DEV, "DescribeStateMachine", &body, |h, _| {
        h.retain(|(k, _)| k != "x-amz-content-sha256");
        h.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    });
    assert_eq!(st, 403, "{v}");
    let (st, v) = signed(p, DEV, "DescribeStateMachine", &body, |h, _| {
        for (k, v) in h.iter_mut() {
            if k == "x-amz-target" {
                *v = "AWSStepFunctions.DeleteStateMachine".into();
            }
        }
    });
    assert_eq!(st, 403, "the signed action was swapped: {v}");

    // 4: /v1 routes authorise too (a Bearer key of the dev principal)
    let bearer = |method: &str, path: &str, body: &str| {
        raw(
            p,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nAuthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                DEV.1,
                body.len()
            ),
        )
    };
    let (st, v) = bearer("POST", "/v1/dags/ops/runs", "{}");
    assert_eq!(st, 403, "dev triggered a DAG: {v}");
    let (st, v) = bearer("GET", "/v1/executions", "");
    assert_eq!(st, 200, "{v}");
    assert!(!v.contains("prod-pay"), "{v}");
    let (st, _) = bearer("GET", &format!("/v1/executions?token={}", ADMIN.1), "");
    assert_eq!(st, 200);
    let (st, v) = raw(
        p,
        &format!(
            "GET /v1/executions?token={} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nconnection: close\r\n\r\n",
            ADMIN.1
        ),
    );
    assert_ne!(st, 200, "a secret in the URL was accepted: {v}");

    // 7: a definition that would overflow the parser is refused and the server goes on
    let deep = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Pass",
        "Output": format!("{{% {}1 %}}", "-".repeat(20_000)), "End": true}}});
    let (st, v) = signed(
        p,
        ADMIN,
        "CreateStateMachine",
        &pass_machine("deep", json!({"definition": deep.to_string()})),
        none,
    );
    assert_eq!(st, 400, "{v}");
    let (st, _) = signed(p, ADMIN, "ListStateMachines", &json!({}), none);
    assert_eq!(st, 200, "the server died");
}
on_both_backends!(the_api_authorises_every_resource_and_binds_signatures);

fn no_auth_stays_local(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    server_home(home.path(), work.path());
    let s = start_server(backend, home.path(), work.path(), true);
    let p = s.port;
    let post = |host: &str, extra: &str, body: &str| {
        raw(
            p,
            &format!(
                "POST /v1/dags/ops/runs HTTP/1.1\r\nHost: {host}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let local = format!("127.0.0.1:{p}");
    for (host, extra) in [
        (
            local.as_str(),
            "Origin: http://evil.example\r\ncontent-type: application/json\r\n",
        ),
        (
            local.as_str(),
            "Origin: null\r\ncontent-type: application/json\r\n",
        ),
        (local.as_str(), "content-type: text/plain\r\n"),
        (
            local.as_str(),
            "content-type: application/x-www-form-urlencoded\r\n",
        ),
        (local.as_str(), ""),
        ("evil.example", "content-type: application/json\r\n"),
        (
            "127.0.0.1.evil.example",
            "content-type: application/json\r\n",
        ),
        (
            "localhost.evil.example:80",
            "content-type: application/json\r\n",
        ),
    ] {
        let (st, v) = post(host, extra, "{}");
        assert!(
            st == 403 || st == 415 || st == 400 || st == 421,
            "{host} {extra}: {st} {v}"
        );
    }
    // the user's side: the UI's own request
    let (st, v) = post(
        &local,
        &format!("Origin: http://{local}\r\ncontent-type: application/json\r\n"),
        "{}",
    );
    assert!(st == 200 || st == 201, "{st} {v}");
}
on_both_backends!(no_auth_stays_local);
