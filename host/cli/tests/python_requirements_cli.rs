//! A DAG folder's `requirements.txt` through the `weft` binary: `weft dag deps` installs
//! pure-Python wheels from a wheelhouse (or a package index on 127.0.0.1 standing in for
//! PyPI) and pins them; a Python DAG file imports the package at its top level and inside a
//! `@task`; a missing package is an import error naming it; native code, tampered downloads
//! and hash mismatches are refused with the package's name and the reason.
//!
//! Wheels: `host/engine/tests/py_packages` (built by its `make_wheels.py`). Needs
//! weft-airflow-py.wasm (`scripts/polyglot.sh`), from `WEFT_PLUGINS_DIR` or `target/plugins`.

mod common;

use common::{plugin, repo, stderr, stdout, weft};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn fixtures() -> PathBuf {
    repo().join("host/engine/tests/py_packages")
}

/// A home with the parser installed (once per run).
fn home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = repo().join("target/test-home-pyreqs-cli");
        let o = weft(
            &home,
            &[
                "plugin",
                "install",
                "--force",
                plugin("weft-airflow-py.wasm").to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "install the parser: {}", stderr(&o));
        home
    })
}

const DAG: &str = r#"
import pendulum
import tinypkg
from airflow.decorators import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
     tags=["tinypkg-" + tinypkg.VERSION])
def uses_tinypkg():
    @task
    def shout():
        from tinypkg import shout as s
        return s("hello")
    shout()

uses_tinypkg()
"#;

/// A DAG folder with the DAG, `requirements`, and a wheelhouse holding `wheels` (from the
/// fixtures' `wheelhouse/`).
fn folder(requirements: &str, wheels: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("uses_tinypkg.py"), DAG).unwrap();
    std::fs::write(d.path().join("requirements.txt"), requirements).unwrap();
    if !wheels.is_empty() {
        std::fs::create_dir(d.path().join("wheelhouse")).unwrap();
    }
    for w in wheels {
        std::fs::copy(
            fixtures().join("wheelhouse").join(w),
            d.path().join("wheelhouse").join(w),
        )
        .unwrap();
    }
    d
}

fn dags(d: &Path) -> &str {
    d.to_str().unwrap()
}

#[test]
fn deps_pins_the_wheelhouse_packages_and_python_dags_import_them() {
    let d = folder(
        "tinypkg>=0.9\n",
        &[
            "tinypkg-1.0.0-py3-none-any.whl",
            "tinypkg-0.9.0-py3-none-any.whl",
        ],
    );
    let o = weft(
        home(),
        &[
            "dag",
            "deps",
            "--dags",
            dags(d.path()),
            "--offline",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["packages"][0]["name"], "tinypkg");
    assert_eq!(v["packages"][0]["version"], "1.0.0");
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("requirements.lock.json")).unwrap())
            .unwrap();
    assert_eq!(lock["packages"], v["packages"]);
    assert_eq!(lock["packages_blake3"], v["packages_blake3"]);

    // the top level imports it (the tag), and so does the task
    let o = weft(home(), &["dag", "list", "--dags", dags(d.path()), "--json"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let o = weft(
        home(),
        &[
            "dag",
            "test",
            "uses_tinypkg",
            "2024-03-05",
            "--dags",
            dags(d.path()),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tasks"]["shout"]["xcom"], "HELLO!", "{v}");

    // a changed requirement parses the file again: 0.9.0's shout does not shout
    std::fs::write(d.path().join("requirements.txt"), "tinypkg==0.9.0\n").unwrap();
    let o = weft(
        home(),
        &[
            "dag",
            "test",
            "uses_tinypkg",
            "2024-03-05",
            "--dags",
            dags(d.path()),
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tasks"]["shout"]["xcom"], "hello", "{v}");
}

#[test]
fn a_package_missing_offline_is_an_import_error_naming_it() {
    let d = folder("tinypkg==1.0.0\n", &[]);
    let o = weft(home(), &["dag", "list", "--dags", dags(d.path()), "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let e = v["import_errors"][0]["error"].as_str().unwrap_or_default();
    assert!(e.contains("No module named 'tinypkg'"), "{v}");
    assert!(
        e.contains("tinypkg==1.0.0") && e.contains("weft dag deps"),
        "{e}"
    );

    let o = weft(
        home(),
        &["dag", "deps", "--dags", dags(d.path()), "--offline"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tinypkg: no pure-Python wheel"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn deps_refuses_native_code_with_the_package_and_the_reason() {
    let d = folder("nativepkg==1.0\n", &[]);
    let hostile = fixtures().join("hostile");
    let o = weft(
        home(),
        &[
            "dag",
            "deps",
            "--dags",
            dags(d.path()),
            "--offline",
            "--wheelhouse",
            hostile.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("nativepkg: refused: ") && err.contains("contains native code"),
        "{err}"
    );
    assert!(!d.path().join("requirements.lock.json").exists());
}

/// A package index on 127.0.0.1: `/pypi/NAME/json` answers from `projects(base URL)`,
/// `/files/F` serves the fixtures' wheel F. Serves `n` requests, then stops.
fn index(
    projects: impl FnOnce(&str) -> Vec<(&'static str, serde_json::Value)>,
    n: usize,
) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let projects = projects(&base);
    std::thread::spawn(move || {
        for stream in l.incoming().take(n) {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).map_or(true, |n| n == 0) || h.trim().is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let body: Option<Vec<u8>> = if let Some(f) = path.strip_prefix("/files/") {
                std::fs::read(fixtures().join("wheelhouse").join(f)).ok()
            } else {
                projects
                    .iter()
                    .find(|(name, _)| path == format!("/pypi/{name}/json"))
                    .map(|(_, v)| v.to_string().into_bytes())
            };
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    base
}

fn sha256_of(wheel: &str) -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(fixtures().join("wheelhouse").join(wheel))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

/// `weft dag deps --dags DIR` with a fresh-enough `home` and the index at `base`.
fn deps_with_index(home: &Path, base: &str, dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["dag", "deps", "--json", "--dags", dags(dir)])
        .env("WEFT_HOME", home)
        .env("WEFT_PYPI_URL", format!("{base}/pypi"))
        .env_remove("WEFT_WHEELHOUSE")
        .output()
        .unwrap()
}

#[test]
fn deps_downloads_pure_wheels_from_the_index_and_refuses_tampered_or_native_ones() {
    let wheel = "tinydep-2.1-py3-none-any.whl";
    let good = sha256_of(wheel);
    let project = move |sha: String| {
        move |base: &str| {
            vec![(
                "tinydep",
                serde_json::json!({"releases": {
                    "2.1": [{"filename": wheel, "url": format!("{base}/files/{wheel}"),
                             "digests": {"sha256": sha}}],
                    "2.0": [{"filename": "tinydep-2.0.tar.gz", "url": format!("{base}/files/x"),
                             "digests": {"sha256": "00"}}],
                }}),
            )]
        }
    };
    // tinypkg from the wheelhouse, tinydep (not there) from the index: its JSON, then the wheel
    let d = folder(
        "tinypkg==1.0.0\ntinydep>=2\n",
        &["tinypkg-1.0.0-py3-none-any.whl"],
    );
    let fresh = tempfile::tempdir().unwrap();
    let base = index(project(good.clone()), 2);
    let o = deps_with_index(fresh.path(), &base, d.path());
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["downloaded"], serde_json::json!(["tinydep"]), "{v}");
    let dep = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tinydep")
        .unwrap();
    assert_eq!(dep["sha256"], good.as_str());

    // the index lists another digest than the file it serves: refused, nothing kept
    let tampered = "1".repeat(64);
    let d = folder(
        "tinypkg==1.0.0\ntinydep==2.1\n",
        &["tinypkg-1.0.0-py3-none-any.whl"],
    );
    let fresh = tempfile::tempdir().unwrap();
    let base = index(project(tampered.clone()), 2);
    let o = deps_with_index(fresh.path(), &base, d.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("tinydep: refused: hash mismatch") && err.contains(&tampered),
        "{err}"
    );
    assert!(!fresh.path().join("cache/wheels").join(wheel).exists());

    // the requirement's --hash disagrees with the index: refused before downloading
    let d = folder(
        &format!("tinypkg==1.0.0\ntinydep==2.1 --hash=sha256:{tampered}\n"),
        &["tinypkg-1.0.0-py3-none-any.whl"],
    );
    let base = index(project(good.clone()), 1);
    let o = deps_with_index(fresh.path(), &base, d.path());
    let err = stderr(&o);
    assert!(err.contains("tinydep: refused: hash mismatch"), "{err}");

    // a project that publishes platform wheels only
    let d = folder("numpy\n", &[]);
    let base = index(
        |base: &str| {
            vec![(
                "numpy",
                serde_json::json!({"releases": {"2.0.0": [{
                    "filename": "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                    "url": format!("{base}/files/numpy.whl"), "digests": {"sha256": "00"}}]}}),
            )]
        },
        1,
    );
    let o = deps_with_index(fresh.path(), &base, d.path());
    let err = stderr(&o);
    assert!(
        err.contains("numpy: refused: 2.0.0 has no pure-Python wheel")
            && err.contains("native code"),
        "{err}"
    );
}
