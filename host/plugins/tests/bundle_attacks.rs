//! Hostile bundles and components that must be refused with a named entry and reason before
//! anything reaches the store: duplicate entries (exact, case variants, a directory and a file,
//! through a patched directory), local and central names that disagree, duplicate keys in
//! `weft-bundle.json`, too many entries, unsafe names, and `.wasm` files over the cap or not
//! regular files.

mod common;

use common::*;
use std::path::Path;
use weft_plugins::limits::{MAX_COMPONENT_BYTES, MAX_ENTRIES};
use weft_plugins::{bundle, install_path, InstallOptions, PluginError};
use weft_store::Store;

fn install(dir: &Path, zip: &Path) -> PluginError {
    let store = Store::open(dir.join("home")).unwrap();
    let e = install_path(&store, zip, &InstallOptions::default()).unwrap_err();
    assert!(
        store.registry().list().unwrap().is_empty(),
        "a refused install registers nothing"
    );
    e
}

fn digest(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

#[test]
fn duplicate_entries_are_refused_in_every_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let good = b"\0asm good".as_slice();
    let m = manifest(&[("a.wasm", &digest(good))]);
    for (first, second, file) in [
        ("a.wasm", "A.wasm", "case"),
        ("a.wasm", "A.WASM", "case2"),
        ("weft-bundle.json", "WEFT-BUNDLE.JSON", "manifest-case"),
        ("a.wasm/", "a.wasm", "dir-and-file"),
    ] {
        let z = dir.path().join(format!("{file}.zip"));
        let mut entries: Vec<(&str, &[u8])> = vec![("weft-bundle.json", &m)];
        if first != "weft-bundle.json" {
            entries.push((first, good));
        }
        entries.push((second, good));
        write_zip(&z, &entries);
        let e = install(dir.path(), &z);
        assert!(
            matches!(&e, PluginError::DuplicateEntry { first: f, second: s, .. }
                if f == first && s == second),
            "{first} / {second}: {e}"
        );
    }
}

#[test]
fn exact_duplicate_names_are_refused_whichever_comes_first() {
    // The zip crate keeps the last of two equal names and `unzip` shows the first: the
    // directory is patched so that two records carry one name.
    let dir = tempfile::tempdir().unwrap();
    let benign = manifest(&[]);
    let evil = manifest(&[("evil.wasm", &digest(b"x"))]);
    for (i, order) in [
        ["weft-bundle.json", "weft-bundle.jsoX"],
        ["weft-bundle.jsoX", "weft-bundle.json"],
    ]
    .iter()
    .enumerate()
    {
        let z = dir.path().join(format!("dup{i}.zip"));
        write_zip(
            &z,
            &[(order[0], &benign), (order[1], &evil), ("evil.wasm", b"x")],
        );
        patch_bytes(&z, b"weft-bundle.jsoX", b"weft-bundle.json", false);
        let e = install(dir.path(), &z);
        assert!(
            matches!(&e, PluginError::DuplicateEntry { first, second, .. }
                if first.contains("weft-bundle.json") && second.contains("weft-bundle.json")),
            "{e}"
        );
    }
    // Two components with one name.
    let z = dir.path().join("dupwasm.zip");
    let m = manifest(&[("a.wasm", &digest(b"one"))]);
    write_zip(
        &z,
        &[
            ("weft-bundle.json", &m),
            ("a.wasm", b"one"),
            ("b.wasm", b"two"),
        ],
    );
    patch_bytes(&z, b"b.wasm", b"a.wasm", false);
    let e = install(dir.path(), &z);
    assert!(matches!(e, PluginError::DuplicateEntry { .. }), "{e}");
}

#[test]
fn local_and_central_names_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("split.zip");
    let m = manifest(&[("a.wasm", &digest(b"one"))]);
    write_zip(&z, &[("weft-bundle.json", &m), ("a.wasm", b"one")]);
    // Only the local header (written first) says `../x.wasm`'s same-length cousin.
    patch_bytes(&z, b"a.wasm", b"z.wasm", true);
    let e = install(dir.path(), &z);
    assert!(
        matches!(&e, PluginError::UnsafeEntry { entry, reason, .. }
            if entry == "a.wasm" && reason.contains("local header")),
        "{e}"
    );
}

#[test]
fn manifest_with_duplicate_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = digest(b"one");
    for (i, text) in [
        format!(r#"{{"format":"weft-bundle/1","plugins":[],"files":{{}},"files":{{"a.wasm":"{d}"}}}}"#),
        format!(r#"{{"format":"weft-bundle/1","format":"weft-bundle/1","plugins":[],"files":{{"a.wasm":"{d}"}}}}"#),
        format!(r#"{{"format":"weft-bundle/1","plugins":[],"files":{{"a.wasm":"{d}","a.wasm":"{d}"}}}}"#),
        format!(
            r#"{{"format":"weft-bundle/1","plugins":[{{"name":"a","name":"root","version":"1.0.0","world":"task","file":"a.wasm","blake3":"{d}"}}],"files":{{"a.wasm":"{d}"}}}}"#
        ),
    ]
    .iter()
    .enumerate()
    {
        let z = dir.path().join(format!("keys{i}.zip"));
        write_zip(&z, &[("weft-bundle.json", text.as_bytes()), ("a.wasm", b"one")]);
        let e = install(dir.path(), &z);
        assert!(
            matches!(&e, PluginError::Manifest { reason, .. } if reason.contains("appears twice")),
            "{text}: {e}"
        );
    }
}

#[test]
fn unsafe_names_in_entries_and_manifests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in [
        "../a.wasm",
        "./a.wasm",
        "x/../a.wasm",
        "x//a.wasm",
        "/a.wasm",
        "C:/a.wasm",
        "x\\a.wasm",
        "caf\u{e9}.wasm",
        "a.wasm ",
        "a%2fb.wasm",
    ]
    .iter()
    .enumerate()
    {
        let z = dir.path().join(format!("name{i}.zip"));
        let m = manifest(&[(name, &digest(b"one"))]);
        write_zip(&z, &[("weft-bundle.json", &m), (name, b"one")]);
        let e = install(dir.path(), &z);
        assert!(
            matches!(&e, PluginError::UnsafeEntry { entry, .. } if entry == name),
            "{name:?}: {e}"
        );
        // The manifest alone naming it is refused too (with its pointer).
        let z = dir.path().join(format!("mname{i}.zip"));
        write_zip(&z, &[("weft-bundle.json", &m)]);
        let e = install(dir.path(), &z);
        assert!(
            matches!(&e, PluginError::Manifest { pointer, .. } if pointer.starts_with("/files/")),
            "{name:?}: {e}"
        );
    }
}

#[test]
fn too_many_entries_are_refused_from_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("many.zip");
    let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}.wasm")).collect();
    let mut entries: Vec<(&str, &[u8])> = vec![("weft-bundle.json", b"{}")];
    entries.extend(names.iter().map(|n| (n.as_str(), b"".as_slice())));
    write_zip(&z, &entries);
    let e = install(dir.path(), &z);
    assert!(
        matches!(
            e,
            PluginError::TooManyEntries {
                limit: MAX_ENTRIES,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn oversized_and_irregular_components_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    // A sparse file over the cap: refused from its size, never read.
    let big = dir.path().join("big.wasm");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_COMPONENT_BYTES + 1)
        .unwrap();
    let e = install(dir.path(), &big);
    assert!(
        matches!(&e, PluginError::FileTooLarge { size, limit, .. }
            if *size == MAX_COMPONENT_BYTES + 1 && *limit == MAX_COMPONENT_BYTES),
        "{e}"
    );
    assert!(e.to_string().contains("big.wasm"), "{e}");
    #[cfg(unix)]
    {
        let e = install(dir.path(), Path::new("/dev/zero"));
        assert!(matches!(e, PluginError::NotAFile { .. }), "{e}");
    }
    let e = install(dir.path(), dir.path());
    assert!(matches!(e, PluginError::NotAFile { .. }), "{e}");
    // Packing refuses what installing would refuse.
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::rename(&big, src.join("big.wasm")).unwrap();
    let e = bundle::pack(&src, &dir.path().join("out.zip")).unwrap_err();
    assert!(matches!(e, PluginError::FileTooLarge { .. }), "{e}");
}

#[test]
fn a_sidecar_with_duplicate_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("echo.wasm");
    std::fs::write(&w, b"not checked first").unwrap();
    std::fs::write(
        dir.path().join("echo.plugin.json"),
        r#"{"name":"echo","name":"root"}"#,
    )
    .unwrap();
    let e = bundle::read_sidecar(&w).unwrap_err();
    assert!(
        matches!(&e, PluginError::Manifest { reason, .. } if reason.contains("appears twice")),
        "{e}"
    );
}
