//! A DAG folder's `requirements.txt`, resolved offline against the checked-in wheelhouse
//! (`tests/py_packages/`, built by its `make_wheels.py`): the user's path (pinning, the lock,
//! the unpacked folder) and the attacker's (native code, zip slip, symbolic links, zip bombs,
//! hash mismatches), each refused with the package's name and the reason, nothing written.

use std::path::{Path, PathBuf};

use weft_engine::py_packages::{
    self, install, resolve, write_lock, PackagesError, LOCK_FILE, REQUIREMENTS_FILE,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py_packages")
}

fn wheelhouse() -> PathBuf {
    fixtures().join("wheelhouse")
}

/// A DAG folder holding `requirements` (and nothing else).
fn folder(requirements: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(REQUIREMENTS_FILE), requirements).unwrap();
    d
}

fn resolve_in(d: &Path, dirs: &[PathBuf]) -> Result<py_packages::Resolution, PackagesError> {
    resolve(&d.join(REQUIREMENTS_FILE), dirs)
}

#[test]
fn resolves_the_highest_allowed_version_and_pins_it() {
    let d = folder("# the DAGs' packages\ntinypkg>=0.9\ntinydep==2.1\n");
    let r = resolve_in(d.path(), &[wheelhouse()]).unwrap();
    let tiny = r
        .lock
        .packages
        .iter()
        .find(|p| p.name == "tinypkg")
        .unwrap();
    assert_eq!(tiny.version, "1.0.0");
    assert_eq!(tiny.wheel, "tinypkg-1.0.0-py3-none-any.whl");
    assert_eq!(tiny.sha256.len(), 64);
    assert_eq!(tiny.blake3.len(), 64);

    let home = tempfile::tempdir().unwrap();
    let p = install(&r, home.path()).unwrap();
    let init = std::fs::read_to_string(p.dir.join("tinypkg/__init__.py")).unwrap();
    assert!(init.contains("1.0.0"), "{init}");
    assert!(p.dir.join("tinydep.py").is_file());
    assert!(p.dir.join("tinypkg-1.0.0.dist-info/METADATA").is_file());
    assert_eq!(p.digest.to_hex().as_str(), r.lock.packages_blake3);
    // installing again reuses the folder
    assert_eq!(install(&r, home.path()).unwrap(), p);

    // the lock pins the older version once written, even when a specifier allows more
    let older = folder("tinypkg<1\n");
    let r = resolve_in(older.path(), &[wheelhouse()]).unwrap();
    assert_eq!(r.lock.packages[0].version, "0.9.0");
    write_lock(&r).unwrap();
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(older.path().join(LOCK_FILE)).unwrap()).unwrap();
    assert_eq!(
        lock["packages"][0]["wheel"],
        "tinypkg-0.9.0-py3-none-any.whl"
    );
    let again = resolve_in(older.path(), &[wheelhouse()]).unwrap();
    assert_eq!(again.lock, r.lock);
}

#[test]
fn prepare_finds_requirements_beside_the_dag_folder_and_the_default_wheelhouse() {
    // MWAA's layout: dags/ and requirements.txt side by side
    let top = tempfile::tempdir().unwrap();
    std::fs::create_dir(top.path().join("dags")).unwrap();
    std::fs::write(top.path().join(REQUIREMENTS_FILE), "tinypkg==1.0.0\n").unwrap();
    let wh = top.path().join("wheelhouse");
    std::fs::create_dir(&wh).unwrap();
    std::fs::copy(
        wheelhouse().join("tinypkg-1.0.0-py3-none-any.whl"),
        wh.join("tinypkg-1.0.0-py3-none-any.whl"),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let p = py_packages::prepare(&top.path().join("dags"), home.path())
        .unwrap()
        .expect("packages");
    assert!(p.dir.join("tinypkg/__init__.py").is_file());
    assert!(p.dir.starts_with(home.path().canonicalize().unwrap()));
    // no requirements.txt: nothing to prepare
    let bare = tempfile::tempdir().unwrap();
    std::fs::create_dir(bare.path().join("dags")).unwrap();
    assert_eq!(
        py_packages::prepare(&bare.path().join("dags"), home.path()).unwrap(),
        None
    );
}

#[test]
fn a_missing_package_is_named_with_where_it_was_looked_for() {
    let d = folder("tinypkg\nnot-there>=1\n");
    let e = resolve_in(d.path(), &[wheelhouse()]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PackagesError::NotFound { .. }), "{msg}");
    assert!(msg.contains("not-there>=1"), "{msg}");
    assert!(msg.contains("wheelhouse"), "{msg}");
    assert!(msg.contains("weft dag deps"), "{msg}");
    // no version fits
    let e = resolve_in(folder("tinypkg>=5\n").path(), &[wheelhouse()]).unwrap_err();
    assert!(matches!(e, PackagesError::NotFound { .. }), "{e}");
}

#[test]
fn an_unlisted_dependency_is_named() {
    let d = folder("tinydep\n");
    let e = resolve_in(d.path(), &[wheelhouse()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tinydep 2.1 requires `tinypkg`"), "{e}");
}

#[test]
fn a_hash_mismatch_is_refused() {
    let wrong = "0".repeat(64);
    let d = folder(&format!("tinypkg==1.0.0 --hash=sha256:{wrong}\n"));
    let e = resolve_in(d.path(), &[wheelhouse()]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PackagesError::HashMismatch { .. }), "{msg}");
    assert!(msg.starts_with("tinypkg: refused: hash mismatch"), "{msg}");
    assert!(msg.contains(&wrong), "{msg}");

    // the right hash passes
    let ok = resolve_in(folder("tinypkg==1.0.0\n").path(), &[wheelhouse()]).unwrap();
    let sha = &ok.lock.packages[0].sha256;
    let d = folder(&format!("tinypkg==1.0.0 \\\n  --hash=sha256:{sha}\n"));
    resolve_in(d.path(), &[wheelhouse()]).unwrap();

    // a lock whose digest no longer matches the wheel (the wheelhouse changed under it)
    let d = folder("tinypkg==1.0.0\n");
    let mut r = resolve_in(d.path(), &[wheelhouse()]).unwrap();
    r.lock.packages[0].sha256 = wrong.clone();
    write_lock(&r).unwrap();
    let e = resolve_in(d.path(), &[wheelhouse()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("hash mismatch") && e.contains(LOCK_FILE), "{e}");
}

/// Each hostile wheel, alone in a wheelhouse, is refused with its name and the reason.
#[test]
fn hostile_wheels_are_refused_with_the_package_and_the_reason() {
    for (package, why) in [
        ("nativepkg", "contains native code"),
        ("platpkg", "native code"),
        ("slippkg", "climbs out of the folder"),
        ("linkpkg", "symbolic link"),
        ("bombpkg", "unpacks to more than"),
        ("nowheel", "no `*.dist-info/WHEEL`"),
        ("badmarker", "environment marker `python_version ~ \"3\"`"),
    ] {
        let d = folder(&format!("{package}==1.0\n"));
        let home = tempfile::tempdir().unwrap();
        let e = resolve_in(d.path(), &[fixtures().join("hostile")])
            .and_then(|r| install(&r, home.path()))
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, PackagesError::Refused { .. }), "{msg}");
        assert!(msg.starts_with(&format!("{package}: refused: ")), "{msg}");
        assert!(msg.contains(why), "{package}: {msg}");
        // nothing unpacked, nothing escaped
        assert!(!home.path().join("cache/py-packages").exists(), "{package}");
        assert!(!d.path().join("escaped.py").exists());
    }
}

#[test]
fn requirement_files_that_reach_elsewhere_are_refused_at_their_line() {
    let d = folder("tinypkg\n-r ../../etc/other.txt\n");
    let e = resolve_in(d.path(), &[wheelhouse()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("requirements.txt:2:"), "{e}");
    assert!(e.contains("includes another file"), "{e}");
}

#[test]
fn a_requirement_whose_marker_is_false_in_the_sandbox_is_left_out() {
    // the sandbox is CPython 3.14 on WASI: the first line holds, the second does not
    let d = folder(
        "tinypkg==1.0.0 ; python_version >= \"3.8\" and os_name == \"posix\"\ntinydep ; sys_platform == \"win32\"\n",
    );
    let r = resolve_in(d.path(), &[wheelhouse()]).unwrap();
    let names: Vec<_> = r.lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tinypkg"]);
    let home = tempfile::tempdir().unwrap();
    let p = install(&r, home.path()).unwrap();
    assert!(p.dir.join("tinypkg/__init__.py").is_file());
    assert!(!p.dir.join("tinydep.py").exists());
    // a malformed marker is an error at its line, saying why
    let d = folder("tinypkg\ntinydep ; python_version >> \"3\"\n");
    let e = resolve_in(d.path(), &[wheelhouse()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("requirements.txt:2:") && e.contains("marker"),
        "{e}"
    );
}

#[test]
fn a_dependency_counts_only_where_its_marker_holds() {
    // markerdep needs tinypkg where python_version >= 3.8 (the sandbox), colorama on Windows
    let e = resolve_in(folder("markerdep\n").path(), &[wheelhouse()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("markerdep 1.0 requires `tinypkg`"), "{e}");
    let r = resolve_in(folder("markerdep\ntinypkg\n").path(), &[wheelhouse()]).unwrap();
    assert_eq!(r.lock.packages.len(), 2);
}
