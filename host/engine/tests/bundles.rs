//! Plugin bundles: pack, install, and every way an install must be refused while leaving the
//! store unchanged (zip-slip, digest mismatch, a component that is not a weft operator,
//! duplicates with another digest, oversized entries, missing manifest).

mod common;

use common::component;
use std::io::Write;
use std::path::Path;
use weft_plugins::{bundle, install_path, InstallOptions, PluginError};
use weft_store::Store;

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    for (name, bytes) in entries {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

fn manifest(name: &str, file: &str, bytes: &[u8]) -> Vec<u8> {
    let d = blake3::hash(bytes).to_hex().to_string();
    serde_json::to_vec(&serde_json::json!({
        "format": "weft-bundle/1",
        "plugins": [{"name": name, "version": "1.0.0", "world": "task", "file": file, "blake3": d}],
        "files": {file: d}
    }))
    .unwrap()
}

fn assert_store_empty(store: &Store) {
    assert!(
        store.registry().list().unwrap().is_empty(),
        "a refused install must not register anything"
    );
}

#[test]
fn pack_then_install_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(component("echo.wasm"), src.join("echo.wasm")).unwrap();
    std::fs::copy(component("fail.wasm"), src.join("fail.wasm")).unwrap();
    std::fs::write(
        src.join("fail.plugin.json"),
        r#"{"version":"2.1.0","description":"raises"}"#,
    )
    .unwrap();
    let out = dir.path().join("plugins.zip");
    let m = bundle::pack(&src, &out).unwrap();
    assert_eq!(m.plugins.len(), 2);
    let store = Store::open(dir.path().join("home")).unwrap();
    let done = install_path(&store, &out, &InstallOptions::default()).unwrap();
    assert_eq!(
        done.iter().map(|i| i.status).collect::<Vec<_>>(),
        ["installed", "installed"]
    );
    let fail = store.registry().get("fail", "2.1.0").unwrap().unwrap();
    assert_eq!(fail.manifest["description"], "raises");
    // Installing the same bundle again changes nothing.
    let again = install_path(&store, &out, &InstallOptions::default()).unwrap();
    assert!(again.iter().all(|i| i.status == "unchanged"));
}

#[test]
fn zip_slip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let echo = std::fs::read(component("echo.wasm")).unwrap();
    for evil in ["../echo.wasm", "/tmp/echo.wasm", "a/../../echo.wasm"] {
        let z = dir.path().join("evil.zip");
        write_zip(
            &z,
            &[
                ("weft-bundle.json", &manifest("echo", evil, &echo)),
                (evil, &echo),
            ],
        );
        let store = Store::open(dir.path().join(format!("home-{}", evil.len()))).unwrap();
        let e = install_path(&store, &z, &InstallOptions::default()).unwrap_err();
        assert!(matches!(e, PluginError::UnsafeEntry { .. }), "{evil}: {e}");
        assert!(e.to_string().contains(evil), "{e}");
        assert_store_empty(&store);
    }
}

#[test]
fn digest_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let echo = std::fs::read(component("echo.wasm")).unwrap();
    let mut tampered = echo.clone();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    let z = dir.path().join("b.zip");
    write_zip(
        &z,
        &[
            ("weft-bundle.json", &manifest("echo", "echo.wasm", &echo)),
            ("echo.wasm", &tampered),
        ],
    );
    let store = Store::open(dir.path().join("home")).unwrap();
    let e = install_path(&store, &z, &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("echo.wasm") && e.contains("manifest says blake3:"),
        "{e}"
    );
    assert_store_empty(&store);
}

#[test]
fn components_outside_the_weft_world_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = wat::parse_str("(component)").unwrap();
    let z = dir.path().join("b.zip");
    write_zip(
        &z,
        &[
            (
                "weft-bundle.json",
                &manifest("other", "other.wasm", &foreign),
            ),
            ("other.wasm", &foreign),
        ],
    );
    let store = Store::open(dir.path().join("home")).unwrap();
    let e = install_path(&store, &z, &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not weft's"), "{e}");
    // A bare core module is refused with a hint.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    let e = install_path(&store, &core, &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("core wasm module, not a component"), "{e}");
    assert_store_empty(&store);
}

#[test]
fn duplicate_name_with_another_digest_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    let a = dir.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::copy(component("echo.wasm"), a.join("echo.wasm")).unwrap();
    install_path(&store, &a.join("echo.wasm"), &InstallOptions::default()).unwrap();
    // Another component under the same name and version.
    let b = dir.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(component("fail.wasm"), b.join("echo.wasm")).unwrap();
    let e = install_path(&store, &b.join("echo.wasm"), &InstallOptions::default()).unwrap_err();
    assert!(matches!(e, PluginError::Duplicate { .. }), "{e}");
    let before = store.registry().get("echo", "0.1.0").unwrap().unwrap();
    assert_eq!(
        before.digest,
        weft_store::Digest::of(&std::fs::read(component("echo.wasm")).unwrap())
    );
    let done = install_path(
        &store,
        &b.join("echo.wasm"),
        &InstallOptions { force: true },
    )
    .unwrap();
    assert_eq!(done[0].status, "replaced");
}

#[test]
fn oversized_entries_and_missing_manifests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();
    // Declared size over the limit: a zip of zeros compresses well, so this stays small on disk
    // (written in chunks, so the test itself stays small in memory).
    let chunk = vec![0u8; 1 << 20];
    let z = dir.path().join("big.zip");
    {
        let f = std::fs::File::create(&z).unwrap();
        let mut w = zip::ZipWriter::new(f);
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        w.start_file("weft-bundle.json", o).unwrap();
        w.write_all(&manifest("echo", "echo.wasm", b"x")).unwrap();
        w.start_file("echo.wasm", o).unwrap();
        for _ in 0..(bundle::MAX_ENTRY_BYTES >> 20) {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"!").unwrap();
        w.finish().unwrap();
    }
    let e = install_path(&store, &z, &InstallOptions::default()).unwrap_err();
    assert!(matches!(e, PluginError::TooLarge { .. }), "{e}");
    let z2 = dir.path().join("nomanifest.zip");
    let echo = std::fs::read(component("echo.wasm")).unwrap();
    write_zip(&z2, &[("echo.wasm", &echo)]);
    let e = install_path(&store, &z2, &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no weft-bundle.json"), "{e}");
    assert_store_empty(&store);
}
