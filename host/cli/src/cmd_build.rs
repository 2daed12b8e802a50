//! `weft plugin build DIR [--out DIR]` and `weft plugin new --lang rust|python|js NAME [--dir DIR]`:
//! thin CLI edges over `weft_plugins::build` (language detection, componentizers installed on
//! first use under `$WEFT_HOME/tools`, scaffolding).

use crate::progress::Progress;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use weft_plugins::build::{build, detect, scaffold, BuildError, BuildOptions, Lang};

/// Builds the operator in `dir` into `out` (default `DIR/target/weft`): prints
/// `{"name","version","lang","world","wasm","sidecar","rebuilt","bytes"}` on stdout. Exit 0 on
/// success, 2 for a project the builder cannot understand, 1 when a toolchain step failed.
pub fn run_build(dir: &Path, out: Option<&Path>) -> Result<ExitCode> {
    let home = weft_engine::weft_home();
    let out_dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("target/weft"));
    let opts = BuildOptions::under_home(&home, &out_dir);
    let bar = Progress::steps(format!("plugin build {}", dir.display()));
    bar.step(&match detect(dir) {
        Ok(lang) => format!(
            "building the {} operator (the first build of a language installs its tools under {})",
            lang.as_str(),
            opts.tools_dir.display()
        ),
        Err(_) => "building".to_string(),
    });
    let result = build(dir, &opts);
    bar.finish(if result.is_ok() { "done" } else { "failed" });
    match result {
        Ok(b) => {
            eprintln!("{b}");
            eprintln!("install it with: weft plugin install {}", b.wasm.display());
            println!("{}", serde_json::to_string(&b)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (BuildError::UnknownLanguage { .. } | BuildError::Project { .. })) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Scaffolds a working operator `NAME` in `lang` under `dir/NAME` (with a unit test).
pub fn run_new(lang: &str, name: &str, dir: &Path) -> Result<ExitCode> {
    let Some(l) = Lang::parse(lang) else {
        eprintln!("error: --lang `{lang}`: expected rust, python or js");
        return Ok(ExitCode::from(2));
    };
    match scaffold(l, name, dir) {
        Ok(files) => {
            for f in &files {
                println!("{}", f.display());
            }
            let d = dir.join(name);
            let test = match l {
                Lang::Python => format!(
                    "cd {} && PYTHONPATH=<weft>/guest-sdk/python python3 -m unittest",
                    d.display()
                ),
                Lang::Js => format!(
                    "cd {} && npm install <weft>/guest-sdk/js && node --test",
                    d.display()
                ),
                Lang::Rust => format!("cd {} && cargo test", d.display()),
            };
            eprintln!(
                "created {} ({}); test: {test}; build: weft plugin build {}",
                d.display(),
                l.as_str(),
                d.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
