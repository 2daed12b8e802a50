//! Python (componentize-py) and JavaScript (componentize-js) operators in the same sandbox as
//! Rust ones: the real operators (dq-check, reshape) and the hostile-guest parity suite.
//!
//! Components come from `target/plugins` (built by `scripts/polyglot.sh`; `WEFT_PLUGINS_DIR`
//! overrides). They are installed into a store under `target/test-home-polyglot`, so the
//! precompiled artifacts (5-10 s of compilation per Python/JS component) are cached across runs;
//! within a run each component is compiled once and shared by every test (the hostile suite is
//! one component per language, `py-hostile`/`js-hostile`, the attack chosen by the input).
//!
//! `cargo test -p weft-engine --test polyglot -- --ignored --nocapture polyglot_bench` prints
//! cold compile / warm load / per-invocation figures for each language.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use weft_engine::{PluginHost, PluginRef};
use weft_sandbox::{Grant, Limits, LoadedComponent, Policy, Sandbox, SandboxConfig, TaskError};
use weft_store::PluginStore;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugins_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/plugins"))
}

fn component_path(name: &str) -> PathBuf {
    let dir = plugins_dir();
    let p = if name.ends_with("-hostile") {
        dir.join("hostile").join(format!("{name}.wasm"))
    } else {
        dir.join(format!("{name}.wasm"))
    };
    assert!(
        p.is_file(),
        "{} is missing: run scripts/polyglot.sh (builds the Python/JS components into target/plugins)",
        p.display()
    );
    p
}

fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let home = std::env::var_os("WEFT_TEST_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/test-home-polyglot"));
        let store = Arc::new(PluginStore::open(&home).expect("open the test store"));
        let sandbox = Arc::new(Sandbox::new(&SandboxConfig::default()).expect("sandbox"));
        PluginHost::new(store, sandbox).expect("plugin host")
    })
}

/// Installs (idempotently, by digest) and loads a component, once per test run: tests that
/// share a component wait for its one compilation instead of each compiling it.
fn load(name: &str) -> Arc<LoadedComponent> {
    type Slot = Arc<OnceLock<Arc<LoadedComponent>>>;
    static LOADED: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    let slot = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone();
    slot.get_or_init(|| install_and_load(name)).clone()
}

fn install_and_load(name: &str) -> Arc<LoadedComponent> {
    let h = host();
    let path = component_path(name);
    let installed = weft_plugins::install_path(
        &h.store,
        &path,
        &weft_plugins::InstallOptions { force: true },
    )
    .unwrap_or_else(|e| panic!("install {}: {e}", path.display()));
    let r = PluginRef::Digest(
        installed[0].name.clone(),
        installed[0]
            .digest
            .trim_start_matches("blake3:")
            .to_string(),
    );
    let rec = h.resolve(&r).expect("resolve");
    h.load(&rec).expect("load")
}

fn fixtures() -> PathBuf {
    root()
        .join("plugins/python/dq-check/fixtures")
        .canonicalize()
        .expect("dq-check fixtures")
}

fn read_grant(dir: &Path) -> Arc<Grant> {
    let policy = Policy::parse(&format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"fs:Read","Resource":"file:{}/*"}}]}}"#,
        dir.display()
    ))
    .expect("policy");
    Arc::new(Grant::compile(vec![Arc::new(policy)], dir))
}

fn limits() -> Limits {
    Limits {
        fuel: 2_000_000_000,
        timeout: Duration::from_secs(10),
        memory_bytes: 192 << 20,
        ..Limits::default()
    }
}

fn invoke(
    c: &LoadedComponent,
    input: serde_json::Value,
    grant: Arc<Grant>,
    limits: Limits,
) -> Result<serde_json::Value, TaskError> {
    invoke_on(host(), c, input, grant, limits)
}

fn invoke_on(
    h: &PluginHost,
    c: &LoadedComponent,
    input: serde_json::Value,
    grant: Arc<Grant>,
    limits: Limits,
) -> Result<serde_json::Value, TaskError> {
    let ctx = serde_json::json!({"task": c.name, "attempt": 1, "params": {}}).to_string();
    let out = h
        .invoke(c, &input.to_string(), &ctx, grant, limits)
        .expect("the sandbox itself must not fail");
    out.result
        .map(|s| serde_json::from_str(&s).expect("output is JSON"))
}

#[test]
fn dq_check_passes_on_a_clean_file() {
    let c = load("dq-check");
    let fx = fixtures();
    let out = invoke(
        &c,
        serde_json::json!({
            "path": format!("{}/orders.csv", fx.display()),
            "format": "csv",
            "checks": {"min_rows": 1, "max_null_ratio": {"amount": 0.0}, "columns": ["order_id", "amount"], "unique": ["order_id"]}
        }),
        read_grant(&fx),
        limits(),
    )
    .unwrap_or_else(|e| panic!("dq-check failed: {e}"));
    assert_eq!(out["rows"], 4);
    assert_eq!(out["passed"], true);
    assert_eq!(out["schema"]["amount"], "number");
    assert_eq!(out["schema"]["order_id"], "integer");
    assert_eq!(
        out["schema"]["created_at"], "timestamp",
        "python-dateutil (requirements.txt) is bundled"
    );
    assert_eq!(out["null_ratio"]["amount"], 0.0);

    let out = invoke(
        &c,
        serde_json::json!({"path": format!("{}/events.json", fx.display())}),
        read_grant(&fx),
        limits(),
    )
    .unwrap_or_else(|e| panic!("dq-check json failed: {e}"));
    assert_eq!(out["format"], "json");
    assert_eq!(out["rows"], 3);
    assert_eq!(out["schema"]["at"], "date");
}

#[test]
fn dq_check_fails_with_a_readable_cause() {
    let c = load("dq-check");
    let fx = fixtures();
    let e = invoke(
        &c,
        serde_json::json!({
            "path": format!("{}/orders_bad.csv", fx.display()),
            "checks": {"min_rows": 1, "max_null_ratio": {"amount": 0.0}, "columns": ["order_id", "amount", "customer_id"], "unique": ["order_id"]}
        }),
        read_grant(&fx),
        limits(),
    )
    .expect_err("the bad file must fail");
    assert_eq!(e.error, "DataQuality.Failed", "{e}");
    assert!(e.cause.starts_with("orders_bad.csv: 3 of "), "{}", e.cause);
    assert!(
        e.cause.contains("null_ratio:amount 2 of 4 null"),
        "{}",
        e.cause
    );
    assert!(
        e.cause.contains("column:customer_id missing"),
        "{}",
        e.cause
    );
    assert!(
        e.cause.contains("unique:order_id 1 duplicate values"),
        "{}",
        e.cause
    );

    // Without a grant the file does not exist for the guest: a named denial, with the path.
    let e = invoke(
        &c,
        serde_json::json!({"attack": "escape", "path": format!("{}/orders.csv", fx.display())}),
        Arc::new(Grant::none()),
        limits(),
    )
    .expect_err("no grant, no file");
    assert_eq!(e.error, "Sandbox.PermissionDenied", "{e}");
    assert!(e.cause.contains("orders.csv"), "{}", e.cause);
}

#[test]
fn reshape_groups_and_sums() {
    let c = load("reshape");
    let out = invoke(
        &c,
        serde_json::json!({
            "data": [
                {"id": 1, "status": "shipped", "amount": 10, "customer": {"city": "Oslo"}},
                {"id": 2, "status": "pending", "amount": 5.5, "customer": {"city": "Lima"}},
                {"id": 3, "status": "shipped", "amount": 2, "customer": {"city": "Oslo"}},
                {"id": 4, "status": "cancelled", "amount": 1, "customer": {"city": "Oslo"}}
            ],
            "filter": [{"field": "status", "op": "!=", "value": "cancelled"}],
            "groupBy": "status",
            "sum": "amount",
            "sortBy": "-sum_amount"
        }),
        Arc::new(Grant::none()),
        limits(),
    )
    .unwrap_or_else(|e| panic!("reshape failed: {e}"));
    assert_eq!(
        out,
        serde_json::json!({"rows": [
            {"status": "shipped", "sum_amount": 12, "count": 2},
            {"status": "pending", "sum_amount": 5.5, "count": 1}
        ], "count": 2, "input_count": 4})
    );

    let out = invoke(
        &c,
        serde_json::json!({"data": [{"a": {"b": 1}}, {"a": {"b": 2}}], "select": {"x": "a.b"}, "sortBy": "-x", "limit": 1}),
        Arc::new(Grant::none()),
        limits(),
    )
    .unwrap();
    assert_eq!(out["rows"], serde_json::json!([{"x": 2}]));

    let e = invoke(
        &c,
        serde_json::json!({"nodata": true}),
        Arc::new(Grant::none()),
        limits(),
    )
    .unwrap_err();
    assert_eq!(e.error, "Input.Invalid", "{e}");
    let e = invoke(
        &c,
        serde_json::json!({"data": [{"v": "x"}], "sum": "v"}),
        Arc::new(Grant::none()),
        limits(),
    )
    .unwrap_err();
    assert_eq!(e.error, "Reshape.InvalidValue", "{e}");
}

#[test]
fn reshape_reads_a_granted_file_only() {
    let c = load("reshape");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    std::fs::write(
        d.join("rows.json"),
        r#"[{"k":"a","v":1},{"k":"a","v":2},{"k":"b","v":5}]"#,
    )
    .unwrap();
    let out = invoke(
        &c,
        serde_json::json!({"dataPath": format!("{}/rows.json", d.display()), "groupBy": "k", "aggregate": {"total": {"sum": "v"}}}),
        read_grant(&d),
        limits(),
    )
    .unwrap_or_else(|e| panic!("reshape dataPath: {e}"));
    assert_eq!(
        out["rows"],
        serde_json::json!([{"k": "a", "total": 3, "count": 2}, {"k": "b", "total": 5, "count": 1}])
    );
    let e = invoke(
        &c,
        serde_json::json!({"dataPath": format!("{}/rows.json", d.display())}),
        Arc::new(Grant::none()),
        limits(),
    )
    .unwrap_err();
    assert_eq!(e.error, "Sandbox.PermissionDenied", "{e}");
}

#[test]
fn python_sensor_pokes() {
    let c = load("file-ready");
    assert_eq!(c.world, weft_sandbox::World::Sensor);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let poke = |params: serde_json::Value, grant: Arc<Grant>| {
        let ctx = serde_json::json!({"task": "wait", "attempt": 1, "params": params}).to_string();
        host()
            .sandbox
            .poke(
                &c,
                weft_sandbox::Invocation {
                    input: "null",
                    ctx: &ctx,
                    grant,
                    limits: limits(),
                    secrets: Arc::new(weft_sandbox::NoSecrets),
                    heartbeat: None,
                    cancel: None,
                },
            )
            .expect("sandbox")
            .result
    };
    let file = format!("{}/part-0.csv", d.display());
    let params = serde_json::json!({"path": file, "marker": "_SUCCESS"});
    assert_eq!(poke(params.clone(), read_grant(&d)).unwrap(), "false");
    std::fs::write(d.join("part-0.csv"), "a,b\n1,2\n").unwrap();
    assert_eq!(
        poke(params.clone(), read_grant(&d)).unwrap(),
        "false",
        "no marker yet"
    );
    std::fs::write(d.join("_SUCCESS"), "").unwrap();
    assert_eq!(poke(params.clone(), read_grant(&d)).unwrap(), "true");
    let e = poke(params, Arc::new(Grant::none())).unwrap_err();
    assert_eq!(e.error, "Sandbox.PermissionDenied", "{e}");
    let e = poke(serde_json::json!({}), read_grant(&d)).unwrap_err();
    assert_eq!(e.error, "Input.Invalid", "{e}");
}

/// After a hostile call, the same component still serves a normal one.
fn still_works(c: &LoadedComponent) {
    let out = invoke(
        c,
        serde_json::json!({"ok": true}),
        Arc::new(Grant::none()),
        limits(),
    )
    .unwrap_or_else(|e| panic!("{}: a normal call after a hostile one failed: {e}", c.name));
    assert_eq!(out, serde_json::json!({"ok": true}));
}

fn hostile_spin(name: &str) {
    let c = load(name);
    let mut l = limits();
    l.fuel = 300_000_000;
    l.timeout = Duration::from_secs(5);
    let spin = serde_json::json!({"attack": "spin"});
    let e = invoke(&c, spin.clone(), Arc::new(Grant::none()), l).unwrap_err();
    assert!(
        e.error == "Sandbox.FuelExhausted" || e.error == "States.Timeout",
        "{name}: {e}"
    );
    // The deadline alone also stops it.
    let mut l = limits();
    l.fuel = u64::MAX / 2;
    l.timeout = Duration::from_millis(300);
    let t = Instant::now();
    let e = invoke(&c, spin, Arc::new(Grant::none()), l).unwrap_err();
    assert_eq!(e.error, "States.Timeout", "{name}: {e}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{name}: took {:?}",
        t.elapsed()
    );
    still_works(&c);
}

fn hostile_membomb(name: &str) {
    let c = load(name);
    let mut l = limits();
    l.memory_bytes = 128 << 20;
    let bomb = serde_json::json!({"attack": "membomb"});
    let e = invoke(&c, bomb, Arc::new(Grant::none()), l).unwrap_err();
    assert_eq!(e.error, "Sandbox.MemoryLimit", "{name}: {e}");
    still_works(&c);
}

fn hostile_escape(name: &str) {
    let c = load(name);
    let fx = fixtures();
    for path in [
        "/etc/passwd".to_string(),
        format!("{}/../../../../../../etc/passwd", fx.display()),
        format!("{}/../app.py", fx.display()),
    ] {
        let e = invoke(
            &c,
            serde_json::json!({ "attack": "escape", "path": path }),
            read_grant(&fx),
            limits(),
        )
        .unwrap_err();
        assert_eq!(
            e.error, "Sandbox.PermissionDenied",
            "{name} reading {path}: {e}"
        );
        assert!(
            e.cause.contains("passwd") || e.cause.contains("app.py"),
            "{name}: the cause names the path: {}",
            e.cause
        );
    }
    // Inside the grant, reading works.
    let out = invoke(
        &c,
        serde_json::json!({"attack": "escape", "path": format!("{}/orders.csv", fx.display())}),
        read_grant(&fx),
        limits(),
    )
    .unwrap_or_else(|e| panic!("{name}: granted read failed: {e}"));
    assert!(
        out["stolen"].as_str().unwrap().starts_with("order_id,"),
        "{out}"
    );
    still_works(&c);
}

fn hostile_http(name: &str) {
    let c = load(name);
    let policy = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"http:Request","Resource":"https://api.example.com/*"}]}"#).unwrap();
    let grant = Arc::new(Grant::compile(vec![Arc::new(policy)], Path::new("/")));
    let e = invoke(
        &c,
        serde_json::json!({"attack": "http", "url": "http://evil.example/exfiltrate"}),
        grant,
        limits(),
    )
    .unwrap_err();
    assert_eq!(e.error, "Sandbox.PermissionDenied", "{name}: {e}");
    assert!(e.cause.contains("evil.example"), "{}", e.cause);
    still_works(&c);
}

#[test]
fn python_hostile_infinite_loop() {
    hostile_spin("py-hostile");
}
#[test]
fn js_hostile_infinite_loop() {
    hostile_spin("js-hostile");
}
#[test]
fn python_hostile_memory_bomb() {
    hostile_membomb("py-hostile");
}
#[test]
fn js_hostile_memory_bomb() {
    hostile_membomb("js-hostile");
}
#[test]
fn python_hostile_path_escape() {
    hostile_escape("py-hostile");
}
#[test]
fn js_hostile_path_escape() {
    hostile_escape("js-hostile");
}
#[test]
fn python_hostile_undeclared_host() {
    hostile_http("py-hostile");
}
#[test]
fn js_hostile_undeclared_host() {
    hostile_http("js-hostile");
}

/// Cold compile, warm load (precompiled artifact) and per-invocation latency per language.
#[test]
#[ignore = "benchmark: cargo test -p weft-engine --test polyglot --release -- --ignored --nocapture polyglot_bench"]
fn polyglot_bench() {
    let iterations: usize = std::env::var("POLYGLOT_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    println!(
        "{:<10} {:>8} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "plugin", "size MB", "cold comp ms", "warm load ms", "p50 us", "p99 us", "inv/s"
    );
    for (name, input) in [
        (
            "dq-check",
            serde_json::json!({"path": format!("{}/orders.csv", fixtures().display()), "checks": {"min_rows": 1}}),
        ),
        (
            "reshape",
            serde_json::json!({"data": [{"s": "a", "v": 1}, {"s": "b", "v": 2}, {"s": "a", "v": 3}], "groupBy": "s", "sum": "v"}),
        ),
        ("py-hostile", serde_json::json!({"ok": true})),
        ("js-hostile", serde_json::json!({"ok": true})),
    ] {
        let bytes = std::fs::read(component_path(name)).unwrap();
        let digest = blake3::hash(&bytes);
        // Cold: a fresh engine, no artifact cache.
        let sb = Sandbox::new(&SandboxConfig::default()).unwrap();
        let t = Instant::now();
        sb.load(name, digest, || Ok(bytes.clone()), None).unwrap();
        let cold = t.elapsed();
        // Warm: a fresh engine loading the store's precompiled artifact.
        let c = load(name);
        let h = host();
        let sb2 = Arc::new(Sandbox::new(&SandboxConfig::default()).unwrap());
        let h2 = PluginHost::new(h.store.clone(), sb2).unwrap();
        let rec = h2
            .resolve(&PluginRef::Digest(
                c.name.split('@').next().unwrap().to_string(),
                digest.to_hex().to_string(),
            ))
            .unwrap();
        let t = Instant::now();
        let loaded = h2.load(&rec).unwrap();
        let warm = t.elapsed();
        assert!(!loaded.compiled, "{name}: the warm load compiled");
        let grant = read_grant(&fixtures());
        let mut times = Vec::with_capacity(iterations);
        let t_all = Instant::now();
        for _ in 0..iterations {
            let t = Instant::now();
            invoke_on(&h2, &loaded, input.clone(), grant.clone(), limits()).unwrap();
            times.push(t.elapsed());
        }
        let total = t_all.elapsed();
        times.sort();
        let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize].as_micros();
        println!(
            "{:<10} {:>8.1} {:>12.0} {:>12.1} {:>10} {:>10} {:>10.0}",
            name,
            bytes.len() as f64 / 1e6,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            p(0.5),
            p(0.99),
            iterations as f64 / total.as_secs_f64()
        );
    }
}
