//! `weft-polyglot [--force] [--json] --out DIR [--tools DIR] [--work DIR] OPERATOR_DIR...` — build
//! Python / JavaScript (or Rust) operator directories into weft components (`DIR/NAME.wasm` +
//! `NAME.plugin.json`) with `weft_plugins::build`, the same code `weft plugin build` runs.
//! Used by `scripts/polyglot.sh`. `weft-polyglot new rust|python|js NAME [PARENT]` scaffolds one. Exit 0 when every build succeeded (or was up to date).

use std::path::PathBuf;
use std::time::Instant;
use weft_plugins::build::{build, BuildOptions};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("new") {
        // weft-polyglot new LANG NAME [PARENT_DIR]
        let (Some(lang), Some(name)) = (argv.get(1), argv.get(2)) else {
            eprintln!("usage: weft-polyglot new rust|python|js NAME [PARENT_DIR]");
            std::process::exit(2);
        };
        let Some(l) = weft_plugins::build::Lang::parse(lang) else {
            eprintln!("weft-polyglot: unknown language `{lang}` (rust, python, js)");
            std::process::exit(2);
        };
        let parent = PathBuf::from(argv.get(3).map(String::as_str).unwrap_or("."));
        match weft_plugins::build::scaffold(l, name, &parent) {
            Ok(files) => files.iter().for_each(|f| println!("{}", f.display())),
            Err(e) => {
                eprintln!("weft-polyglot: error: {e}");
                std::process::exit(2);
            }
        }
        return;
    }
    let mut args = argv.into_iter();
    let (mut out, mut tools, mut work, mut force, mut json) = (None, None, None, false, false);
    let mut dirs: Vec<PathBuf> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--tools" => tools = args.next().map(PathBuf::from),
            "--work" => work = args.next().map(PathBuf::from),
            "--force" => force = true,
            "--json" => json = true,
            "-h" | "--help" => {
                eprintln!("usage: weft-polyglot [--force] [--json] --out DIR [--tools DIR] [--work DIR] OPERATOR_DIR...");
                return;
            }
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    let Some(out) = out else {
        eprintln!("weft-polyglot: --out DIR is required");
        std::process::exit(2);
    };
    let home = std::env::var_os("WEFT_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".weft"));
    let mut opts = BuildOptions::under_home(&home, &out);
    if let Some(t) = tools {
        opts.tools_dir = t;
    }
    if let Some(w) = work {
        opts.work_dir = w;
    }
    opts.force = force;
    let mut failed = 0;
    // A componentizer that could not be installed is not retried for every operator.
    let mut unavailable: Vec<String> = Vec::new();
    for d in &dirs {
        let t = Instant::now();
        let tool = match weft_plugins::build::detect(d) {
            Ok(weft_plugins::build::Lang::Python) => "componentize-py",
            Ok(weft_plugins::build::Lang::Js) => "componentize-js",
            _ => "",
        };
        if unavailable.iter().any(|u| u == tool) {
            failed += 1;
            eprintln!(
                "polyglot: skipped {}: {tool} is unavailable (see above)",
                d.display()
            );
            continue;
        }
        match build(d, &opts) {
            Ok(b) => {
                if json {
                    println!("{}", serde_json::to_string(&b).unwrap_or_default());
                } else {
                    eprintln!(
                        "polyglot: {b}{}",
                        if b.rebuilt {
                            format!(" in {:.1} s", t.elapsed().as_secs_f64())
                        } else {
                            String::new()
                        }
                    );
                }
            }
            Err(e) => {
                failed += 1;
                if let weft_plugins::build::BuildError::ToolInstall { tool, .. } = &e {
                    unavailable.push(tool.clone());
                }
                eprintln!("polyglot: error: {e}");
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
