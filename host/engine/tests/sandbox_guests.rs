//! The foundation end to end: real operator components built by `make guests`, installed into a
//! store, loaded through the precompiled cache and run in the sandbox with grants and limits.
//! Hostile guests must end in named errors and leave the host serving the next invocation.

mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;
use weft_sandbox::{Effect, Grant, Limits};

const HOME: &str = "test-home-guests";

fn echo_still_works() {
    let h = host(HOME);
    let o = invoke(
        h,
        "echo",
        r#"{"still":"alive"}"#,
        Arc::new(Grant::none()),
        Limits::default(),
    );
    assert_eq!(o.result.unwrap(), r#"{"still":"alive"}"#);
}

use std::sync::Arc;

#[test]
fn echo_returns_its_input() {
    let h = host(HOME);
    let o = invoke(
        h,
        "echo",
        r#"{"a":[1,2,{"b":null}],"s":"ünï"}"#,
        Arc::new(Grant::none()),
        Limits::default(),
    );
    let v: serde_json::Value = serde_json::from_str(&o.result.unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({"a":[1,2,{"b":null}],"s":"ünï"}));
    assert!(o.fuel_used > 0);
}

#[test]
fn fail_raises_a_named_error() {
    let h = host(HOME);
    let o = invoke(
        h,
        "fail",
        r#"{"error":"Custom.Bad","cause":"row 3"}"#,
        Arc::new(Grant::none()),
        Limits::default(),
    );
    assert_eq!(error_of(&o), ("Custom.Bad".into(), "row 3".into()));
}

#[test]
fn infinite_loop_runs_out_of_fuel_or_time() {
    let h = host(HOME);
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let o = invoke(h, "hostile-spin", "{}", Arc::new(Grant::none()), limits);
    assert_eq!(error_of(&o).0, "Sandbox.FuelExhausted");
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let o = invoke(h, "hostile-spin", "{}", Arc::new(Grant::none()), limits);
    let (e, c) = error_of(&o);
    assert_eq!(e, "States.Timeout", "{c}");
    echo_still_works();
}

#[test]
fn a_cancelled_invocation_stops_at_once_with_a_named_error() {
    let h = host(HOME);
    let rec = h
        .resolve(&weft_engine::PluginRef::parse("hostile-spin").unwrap())
        .unwrap();
    let c = h.load(&rec).unwrap();
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let cancel: weft_engine::plugin_host::Cancel =
        Arc::new(move || started.elapsed() > Duration::from_millis(100));
    let o = h
        .invoke_cancellable(
            &c,
            "{}",
            "{}",
            Arc::new(Grant::none()),
            limits,
            Some(cancel),
        )
        .unwrap();
    let (e, cause) = error_of(&o);
    assert_eq!(e, "Sandbox.Cancelled", "{cause}");
    // a timeout still applies to a cancellable invocation
    let limits = Limits {
        timeout: Duration::from_millis(200),
        ..limits
    };
    let never: weft_engine::plugin_host::Cancel = Arc::new(|| false);
    let o = h
        .invoke_cancellable(&c, "{}", "{}", Arc::new(Grant::none()), limits, Some(never))
        .unwrap();
    assert_eq!(error_of(&o).0, "States.Timeout");
    echo_still_works();
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let h = host(HOME);
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let o = invoke(h, "hostile-membomb", "{}", Arc::new(Grant::none()), limits);
    let (e, c) = error_of(&o);
    assert_eq!(e, "Sandbox.MemoryLimit", "{c}");
    assert!(c.contains("33554432"), "{c}");
    echo_still_works();
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let h = host(HOME);
    let o = invoke(
        h,
        "hostile-recurse",
        "{}",
        Arc::new(Grant::none()),
        Limits::default(),
    );
    assert_eq!(error_of(&o).0, "Sandbox.StackOverflow");
    echo_still_works();
}

#[test]
fn oversized_output_is_refused() {
    let h = host(HOME);
    let o = invoke(
        h,
        "hostile-bigout",
        r#"{"bytes":1048576}"#,
        Arc::new(Grant::none()),
        Limits::default(),
    );
    let (e, c) = error_of(&o);
    assert_eq!(e, "Sandbox.OutputTooLarge", "{c}");
    assert!(c.contains("262144"), "{c}");
    echo_still_works();
}

#[test]
fn panic_is_a_task_failure_with_the_message() {
    let h = host(HOME);
    let o = invoke(
        h,
        "hostile-panic",
        "{}",
        Arc::new(Grant::none()),
        Limits::default(),
    );
    let (e, c) = error_of(&o);
    assert_eq!(e, "States.TaskFailed");
    assert!(c.contains("asked to panic"), "{c}");
    echo_still_works();
}

/// A granted directory holding a symlink that points outside it.
fn escape_fixture() -> (tempfile::TempDir, Arc<Grant>) {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("ok.txt"), "fine").unwrap();
    std::fs::create_dir_all(base.path().join("secret")).unwrap();
    std::fs::write(base.path().join("secret/key"), "hunter2").unwrap();
    std::os::unix::fs::symlink(base.path().join("secret"), data.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("etc")).unwrap();
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"}]}"#,
        base.path(),
    );
    (base, g)
}

#[test]
fn path_escapes_are_permission_denied() {
    let h = host(HOME);
    let (_base, g) = escape_fixture();
    for path in [
        "/data/../secret/key",
        "/data/escape/key",
        "/data/etc/passwd",
        "/etc/passwd",
        "/secret/key",
    ] {
        let o = invoke(
            h,
            "hostile-escape",
            &format!(r#"{{"path":"{path}"}}"#),
            g.clone(),
            Limits::default(),
        );
        let (e, c) = error_of(&o);
        assert_eq!(e, "Sandbox.PermissionDenied", "{path}: {c}");
        assert!(!c.contains("hunter2"));
    }
    // The granted file itself is readable, so the denials above are the grant's doing.
    let o = invoke(
        h,
        "hostile-escape",
        r#"{"path":"/data/ok.txt"}"#,
        g.clone(),
        Limits::default(),
    );
    assert!(
        o.result.as_ref().unwrap().contains("fine"),
        "{:?}",
        o.result
    );
    // The audit shows what was preopened and why.
    assert!(o.audit.iter().any(|a| a.action == "fs:Read"
        && a.resource.ends_with("/data")
        && a.decision == Effect::Allow));
    echo_still_works();
}

/// Issue 13 item 9: a Deny written without `file:` is applied to the preopens, not skipped.
#[test]
fn a_kindless_deny_withholds_the_directory() {
    let h = host(HOME);
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("data/secret")).unwrap();
    std::fs::write(base.path().join("data/secret/key.pem"), "hunter2").unwrap();
    std::fs::write(base.path().join("data/ok.txt"), "fine").unwrap();
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"},
                         {"Sid":"NoSecrets","Effect":"Deny","Action":"fs:Read","Resource":"*secret*"}]}"#,
        base.path(),
    );
    assert!(g.preopens().is_empty());
    let o = invoke(
        h,
        "hostile-escape",
        r#"{"path":"/data/secret/key.pem"}"#,
        g,
        Limits::default(),
    );
    let (e, c) = error_of(&o);
    assert_eq!(e, "Sandbox.PermissionDenied", "{c}");
    assert!(!c.contains("hunter2"));
    assert!(o.audit.iter().any(|a| a.decision == Effect::Deny
        && a.statement.as_deref() == Some("NoSecrets (/Statement/1)")));
}

/// Issue 13 item 2: a guest with fs:Write cannot plant a link that leaves the directory it is
/// created in (absolute targets, `..` in any position); a link that only descends is fine.
#[test]
fn planting_an_escaping_symlink_is_refused() {
    let h = host(HOME);
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("shared/real")).unwrap();
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:shared/*"}]}"#,
        base.path(),
    );
    for (target, link) in [
        ("../../../../etc", "/shared/reports"),
        ("/etc", "/shared/abs"),
        ("..", "/shared/real/up"),
        ("real/../..", "/shared/climb"),
        ("real/../../../etc", "/shared/deep"),
        ("./../etc", "/shared/dot"),
    ] {
        let input = serde_json::json!({"target": target, "link": link}).to_string();
        let o = invoke(h, "hostile-symlink", &input, g.clone(), Limits::default());
        let (e, c) = error_of(&o);
        assert_eq!(e, "Sandbox.PermissionDenied", "{target}: {c}");
        let on_disk = base.path().join(link.trim_start_matches('/'));
        assert!(
            on_disk.symlink_metadata().is_err(),
            "{link} -> {target} was created"
        );
        assert!(o
            .audit
            .iter()
            .any(|a| a.decision == Effect::Deny && a.resource.starts_with("symlink:")));
    }
    let o = invoke(
        h,
        "hostile-symlink",
        r#"{"target":"real","link":"/shared/alias"}"#,
        g,
        Limits::default(),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert!(base
        .path()
        .join("shared/alias")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    echo_still_works();
}

/// Issue 13 item 2, the reproduction: a link an earlier task left in a shared directory
/// (planted here by the test: it is just a file on disk) redirects no later task's preopen,
/// whichever component it sits in and wherever it points.
#[test]
fn a_planted_symlink_redirects_no_later_preopen() {
    let h = host(HOME);
    let base = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "root:x:0:0").unwrap();
    let b = base.path();
    std::fs::create_dir_all(b.join("shared/real/deep")).unwrap();
    std::fs::write(b.join("shared/file"), "x").unwrap();
    let ln = |target: &str, at: &str| std::os::unix::fs::symlink(target, b.join(at)).unwrap();
    ln("../../../../etc", "shared/reports");
    ln(&outside.path().display().to_string(), "shared/abs");
    ln("real", "shared/mid");
    ln("abs", "shared/chain");
    ln("file", "shared/tofile");
    for (dir, read) in [
        ("shared/reports", "/shared/reports/passwd"),
        ("shared/abs", "/shared/abs/passwd"),
        ("shared/mid/deep", "/shared/mid/deep/x"),
        ("shared/chain", "/shared/chain/passwd"),
        ("shared/tofile", "/shared/tofile/x"),
    ] {
        let g = grant(
            &format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:{dir}/*"}}]}}"#
            ),
            b,
        );
        assert!(g.preopens().is_empty(), "{dir} was preopened");
        let o = invoke(
            h,
            "hostile-escape",
            &format!(r#"{{"path":"{read}"}}"#),
            g.clone(),
            Limits::default(),
        );
        let (e, c) = error_of(&o);
        assert_eq!(e, "Sandbox.PermissionDenied", "{dir}: {c}");
        assert!(!c.contains("root:x"), "{c}");
        assert!(
            o.audit.iter().any(|a| a.decision == Effect::Deny
                && a.reason.as_deref().unwrap_or("").contains("symbolic link")),
            "{dir}: {:?}",
            o.audit
        );
        // and nothing is written through it
        let o = invoke(
            h,
            "csv-to-json",
            &format!(r#"{{"path":"/shared/real/none.csv","output":"/{dir}/planted.json"}}"#),
            g,
            Limits::default(),
        );
        assert!(o.result.is_err());
        assert!(!outside.path().join("planted.json").exists());
    }
    echo_still_works();
}

/// A guest whose frames live in linear memory and overflow it (the stack pointer wraps below
/// 0) ends as `Sandbox.StackOverflow`, not as an out-of-bounds task failure.
#[test]
fn shadow_stack_overflow_is_a_stack_overflow() {
    let h = host(HOME);
    let o = invoke(
        h,
        "hostile-bigframes",
        "{}",
        Arc::new(Grant::none()),
        Limits::default(),
    );
    let (e, c) = error_of(&o);
    assert_eq!(e, "Sandbox.StackOverflow", "{c}");
    let o = invoke(
        h,
        "hostile-bigframes",
        r#"{"depth":3}"#,
        Arc::new(Grant::none()),
        Limits::default(),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    echo_still_works();
}

#[test]
fn csv_to_json_reads_a_granted_file_and_writes_another() {
    let h = host(HOME);
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("in")).unwrap();
    std::fs::create_dir_all(base.path().join("out")).unwrap();
    std::fs::write(base.path().join("in/orders.csv"), "id,amount\n1,2.5\n2,\n").unwrap();
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:in/*"},
                         {"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:out/*"}]}"#,
        base.path(),
    );
    let o = invoke(
        h,
        "csv-to-json",
        r#"{"path":"/in/orders.csv","output":"/out/orders.json","infer_types":true}"#,
        g.clone(),
        Limits::default(),
    );
    let v: serde_json::Value = serde_json::from_str(o.result.as_ref().unwrap()).unwrap();
    assert_eq!(v["count"], 2);
    assert_eq!(v["rows"][0], serde_json::json!({"id":1,"amount":2.5}));
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(base.path().join("out/orders.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(written[1]["amount"], serde_json::Value::Null);
    // Writing into the read-only directory is refused.
    let o = invoke(
        h,
        "csv-to-json",
        r#"{"path":"/in/orders.csv","output":"/in/x.json"}"#,
        g,
        Limits::default(),
    );
    assert_eq!(error_of(&o).0, "Sandbox.PermissionDenied");
    assert!(!base.path().join("in/x.json").exists());
}

#[test]
fn json_transform_picks_renames_and_filters() {
    let h = host(HOME);
    let input = r#"{"data":[{"id":1,"s":"paid","x":9},{"id":2,"s":"void","x":8}],
                    "filter":{"s":"paid"},"pick":["id","s"],"rename":{"s":"status"}}"#;
    let o = invoke(
        h,
        "json-transform",
        input,
        Arc::new(Grant::none()),
        Limits::default(),
    );
    let v: serde_json::Value = serde_json::from_str(&o.result.unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([{"id":1,"status":"paid"}]));
}

/// A one-shot HTTP server on 127.0.0.1 that answers every request with a JSON body echoing the
/// request line; stops after `n` requests.
fn serve(n: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Read the head, then as many body bytes as content-length announces.
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let k = s.read(&mut buf).unwrap_or(0);
                if k == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let req = String::from_utf8_lossy(&data).to_string();
            let line = req.lines().next().unwrap_or("").to_string();
            seen.push(req);
            let body = serde_json::json!({"request": line}).to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).unwrap();
        }
        seen
    });
    (port, t)
}

#[test]
fn http_goes_only_to_allowed_hosts() {
    let h = host(HOME);
    let (port, server) = serve(1);
    let g = grant(
        &format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"http:Request","Resource":"http://127.0.0.1:{port}/*"}}]}}"#
        ),
        std::path::Path::new("/"),
    );
    let o = invoke(
        h,
        "http-request",
        &format!(
            r#"{{"url":"http://127.0.0.1:{port}/api/orders","method":"POST","json":{{"id":7}}}}"#
        ),
        g.clone(),
        Limits::default(),
    );
    let v: serde_json::Value = serde_json::from_str(o.result.as_ref().unwrap()).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["json"]["request"], "POST /api/orders HTTP/1.1");
    let seen = server.join().unwrap();
    assert!(seen[0].contains(r#"{"id":7}"#), "{seen:?}");
    assert!(o
        .audit
        .iter()
        .any(|a| a.action == "http:Request" && a.decision == Effect::Allow));

    // Another port on the same host is not in the grant.
    let o = invoke(
        h,
        "http-request",
        r#"{"url":"http://127.0.0.1:1/x"}"#,
        g,
        Limits::default(),
    );
    let (e, c) = error_of(&o);
    assert_eq!(e, "Sandbox.PermissionDenied", "{c}");
    assert!(o.audit.iter().any(|a| a.action == "http:Request"
        && a.decision == Effect::Deny
        && a.resource == "http://127.0.0.1:1/x"));
    echo_still_works();
}

#[test]
fn file_sensor_pokes_granted_paths() {
    let h = host(HOME);
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("landing")).unwrap();
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:landing/*"}]}"#,
        base.path(),
    );
    let rec = h
        .resolve(&weft_engine::PluginRef::parse("file-sensor").unwrap())
        .unwrap();
    let c = h.load(&rec).unwrap();
    let poke = |ctx: &str| {
        h.sandbox
            .poke(
                &c,
                weft_sandbox::Invocation {
                    input: "{}",
                    ctx,
                    grant: g.clone(),
                    limits: Limits::default(),
                    secrets: h.secrets.clone(),
                    heartbeat: None,
                    cancel: None,
                },
            )
            .unwrap()
            .result
    };
    let ctx = r#"{"params":{"path":"/landing/ready.csv"}}"#;
    assert_eq!(poke(ctx).unwrap(), "false");
    std::fs::write(base.path().join("landing/ready.csv"), "x").unwrap();
    assert_eq!(poke(ctx).unwrap(), "true");
    assert_eq!(
        poke(r#"{"params":{"pattern":"/landing/*.csv"}}"#).unwrap(),
        "true"
    );
    assert_eq!(
        poke(r#"{"params":{"path":"/etc/passwd"}}"#)
            .unwrap_err()
            .error,
        "Sandbox.PermissionDenied"
    );
    // A sensor is not a task.
    let e = h
        .invoke(&c, "{}", "{}", g.clone(), Limits::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is a sensor but was invoked as a task"), "{e}");
}

#[test]
fn second_load_uses_the_precompiled_cache() {
    let h = host(HOME);
    let rec = h
        .resolve(&weft_engine::PluginRef::parse("json-transform").unwrap())
        .unwrap();
    h.load(&rec).unwrap();
    h.sandbox
        .evict(&blake3::Hash::from_bytes(*rec.digest.as_bytes()));
    let again = h.load(&rec).unwrap();
    assert!(
        !again.compiled,
        "a second load must come from the precompiled artifact"
    );
}

#[test]
fn corrupt_precompiled_artifact_is_refused_and_recompiled() {
    let base = tempfile::tempdir().unwrap();
    let store = Arc::new(weft_store::PluginStore::open(base.path()).unwrap());
    weft_plugins::install_path(&store, &component("echo.wasm"), &Default::default()).unwrap();
    let sandbox = Arc::new(weft_sandbox::Sandbox::new(&Default::default()).unwrap());
    let h = weft_engine::PluginHost::new(store.clone(), sandbox.clone()).unwrap();
    let rec = h
        .resolve(&weft_engine::PluginRef::parse("echo").unwrap())
        .unwrap();
    let loaded = h.load(&rec).unwrap();
    assert!(loaded.compiled);
    // Damage the cached native code: the store must refuse it and the sandbox recompile.
    let art = store
        .precompiled(&rec.digest, sandbox.fingerprint_of(&loaded))
        .unwrap()
        .unwrap();
    let art_digest = weft_store::Digest::of(&art);
    let path = store.blobs().path(&art_digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    sandbox.evict(&blake3::Hash::from_bytes(*rec.digest.as_bytes()));
    let again = h.load(&rec).unwrap();
    assert!(again.compiled, "a corrupt artifact must not be loaded");
    let o = h
        .invoke(
            &again,
            "[1]",
            "{}",
            Arc::new(Grant::none()),
            Limits::default(),
        )
        .unwrap();
    assert_eq!(o.result.unwrap(), "[1]");
}

struct FixedSecrets;
impl weft_sandbox::SecretSource for FixedSecrets {
    fn secret(&self, name: &weft_sandbox::SecretName) -> Option<String> {
        match name.as_str() {
            "warehouse-password" => Some("correct horse".into()),
            "root-password" => Some("hunter2".into()),
            _ => None,
        }
    }
}

#[test]
fn secrets_are_visible_only_when_granted_and_never_logged() {
    let h = host(HOME);
    let rec = h
        .resolve(&weft_engine::PluginRef::parse("hostile-secrets").unwrap())
        .unwrap();
    let c = h.load(&rec).unwrap();
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:*"},
                         {"Sid":"NoRoot","Effect":"Deny","Action":"secrets:Get","Resource":"secret:root-*"}]}"#,
        std::path::Path::new("/"),
    );
    let call = |name: &str, g: Arc<Grant>| {
        h.sandbox
            .invoke(
                &c,
                weft_sandbox::Invocation {
                    input: &format!(r#"{{"name":"{name}"}}"#),
                    ctx: "{}",
                    grant: g,
                    limits: Limits::default(),
                    secrets: Arc::new(FixedSecrets),
                    heartbeat: None,
                    cancel: None,
                },
            )
            .unwrap()
    };
    let o = call("warehouse-password", g.clone());
    assert_eq!(
        o.result.as_deref().unwrap(),
        r#"{"name":"warehouse-password","length":13}"#
    );
    // Explicit Deny wins over the wildcard Allow.
    let o = call("root-password", g.clone());
    let (e, cause) = error_of(&o);
    assert_eq!(e, "Sandbox.PermissionDenied", "{cause}");
    let deny = o
        .audit
        .iter()
        .find(|a| a.resource == "secret:root-password")
        .unwrap();
    assert_eq!(
        (deny.decision, deny.statement.as_deref()),
        (Effect::Deny, Some("NoRoot (/Statement/1)"))
    );
    // Default deny without a grant.
    let o = call("warehouse-password", Arc::new(Grant::none()));
    assert_eq!(error_of(&o).0, "Sandbox.PermissionDenied");
    // Values never reach logs, stdio or audit records.
    let o = call("warehouse-password", g);
    let all = format!("{:?}{}{}{:?}", o.logs, o.stdout, o.stderr, o.audit);
    assert!(!all.contains("correct horse"), "{all}");
}

/// Issue 13, item 10: with a Deny on `secret:root*`, no other spelling of the name reads the
/// value that `WEFT_SECRET_ROOT_PASSWORD` holds; and a name the environment cannot spell
/// one-to-one never reads it.
#[test]
fn secret_name_spellings_cannot_get_around_a_deny() {
    // Only this test reads this variable's secret.
    std::env::set_var("WEFT_SECRET_ROOT_PASSWORD", "hunter2");
    let home = tempfile::tempdir().unwrap();
    let secrets: Arc<dyn weft_sandbox::SecretSource> =
        Arc::new(weft_engine::HomeSecrets::load(home.path()).unwrap());
    let h = host(HOME);
    let rec = h
        .resolve(&weft_engine::PluginRef::parse("hostile-secrets").unwrap())
        .unwrap();
    let c = h.load(&rec).unwrap();
    let call = |name: &str, g: &Arc<Grant>| {
        let input = serde_json::json!({ "name": name }).to_string();
        let o = h
            .sandbox
            .invoke(
                &c,
                weft_sandbox::Invocation {
                    input: &input,
                    ctx: "{}",
                    grant: g.clone(),
                    limits: Limits::default(),
                    secrets: secrets.clone(),
                    heartbeat: None,
                    cancel: None,
                },
            )
            .unwrap();
        let all = format!(
            "{:?}{:?}{}{}{:?}",
            o.result, o.logs, o.stdout, o.stderr, o.audit
        );
        assert!(!all.contains("hunter2"), "{name:?}: {all}");
        match &o.result {
            Ok(r) => Ok(r.clone()),
            Err(_) => Err(error_of(&o)),
        }
    };
    let variants = [
        "root_password",
        "ROOT_PASSWORD",
        "Root_Password",
        "ROOT-PASSWORD",
        "root-password",
        "ROOT.PASSWORD",
        "root.password",
        "RoOt_PaSsWoRd",
        "root_password ",
        " root_password",
        "root_password\0",
        "root_password\n",
        "root%5Fpassword",
        "ROOT%5FPASSWORD",
        "r\u{43e}ot_password",
        "root\u{ff3f}password",
        "\u{ff32}OOT_PASSWORD",
        "root\u{2010}password",
        "root//password",
        "./root_password",
        "../root_password",
        "x/../root_password",
        "/root_password",
        "root_password/",
        "var/../root_password",
    ];
    // The issue's grant: Allow every secret, Deny `root*`, in either case.
    for deny in ["secret:root*", "secret:ROOT*", "secret:Root*", "*root*"] {
        let g = grant(
            &format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:*"}},
                   {{"Sid":"NoRoot","Effect":"Deny","Action":"secrets:Get","Resource":"{deny}"}}]}}"#
            ),
            std::path::Path::new("/"),
        );
        for v in variants {
            let r = call(v, &g);
            let (e, _) = r.clone().expect_err(v);
            assert!(
                e == "Sandbox.PermissionDenied" || e == "Secrets.InvalidName",
                "{deny} / {v:?}: {r:?}"
            );
        }
    }
    // A Deny on the exact name only: other spellings are other secrets, not set anywhere.
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:*"},
                         {"Effect":"Deny","Action":"secrets:Get","Resource":"secret:root_password"}]}"#,
        std::path::Path::new("/"),
    );
    for v in variants {
        let r = call(v, &g);
        let (e, _) = r.clone().expect_err(v);
        assert!(
            matches!(
                e.as_str(),
                "Sandbox.PermissionDenied" | "Secrets.InvalidName" | "Secrets.NotFound"
            ),
            "{v:?}: {r:?}"
        );
    }
    // The user's case: granted, the environment value is read by its canonical name.
    let g = grant(
        r#"{"Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:ROOT_PASSWORD"}]}"#,
        std::path::Path::new("/"),
    );
    let input = serde_json::json!({ "name": "Root_Password" }).to_string();
    let o = h
        .sandbox
        .invoke(
            &c,
            weft_sandbox::Invocation {
                input: &input,
                ctx: "{}",
                grant: g,
                limits: Limits::default(),
                secrets: secrets.clone(),
                heartbeat: None,
                cancel: None,
            },
        )
        .unwrap();
    assert_eq!(
        o.result.as_deref().unwrap(),
        r#"{"name":"Root_Password","length":7}"#
    );
}
