//! `weft-componentize IN.wasm OUT.wasm [IN2.wasm OUT2.wasm ...]` — turn `wasm32-wasip1` core
//! modules into weft operator components (preview1 reactor adapter), check that each one's world
//! is weft's (exports `weft:operator/operator` or `weft:operator/sensor`, imports only weft's host
//! interfaces and WASI filesystem/clocks/random/io/cli) and write it atomically.
//!
//! `weft-componentize --inspect FILE.wasm...` prints the world of existing components as JSON.
//! `--no-check` skips the weft-world check (e.g. for fixtures that are meant to be refused).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use weft_plugins::componentize::componentize;
use weft_plugins::inspect_component;

fn usage() -> ! {
    eprintln!(
        "usage: weft-componentize [--no-check] IN.wasm OUT.wasm [IN.wasm OUT.wasm ...]\n       weft-componentize --inspect COMPONENT.wasm..."
    );
    std::process::exit(2);
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("weft-componentize: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        usage();
    }
    if args[0] == "--inspect" {
        for file in &args[1..] {
            let bytes = std::fs::read(file).with_context(|| format!("{file}: read"))?;
            let info = inspect_component(&bytes).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            let line = serde_json::json!({ "file": file, "bytes": bytes.len(), "world": info.world,
                "exports": info.exports, "imports": info.imports });
            println!("{line}");
        }
        return Ok(());
    }
    let check = if args[0] == "--no-check" {
        args.remove(0);
        false
    } else {
        true
    };
    let pairs = args.chunks_exact(2);
    if args.is_empty() || !pairs.remainder().is_empty() {
        usage();
    }
    for pair in pairs {
        one(Path::new(&pair[0]), Path::new(&pair[1]), check)?;
    }
    Ok(())
}

fn one(input: &Path, output: &Path, check: bool) -> Result<()> {
    let started = Instant::now();
    let core = std::fs::read(input).with_context(|| format!("{}: read", input.display()))?;
    let component = componentize(&core).with_context(|| input.display().to_string())?;
    let world = if check {
        let info = inspect_component(&component).map_err(|e| {
            anyhow::anyhow!(
                "{}: the component is not a weft operator: {e}",
                input.display()
            )
        })?;
        info.world
    } else {
        "unchecked".to_string()
    };
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: create directory", dir.display()))?;
    }
    let mut tmp = PathBuf::from(output);
    tmp.as_mut_os_string().push(".tmp");
    std::fs::write(&tmp, &component).with_context(|| format!("{}: write", tmp.display()))?;
    std::fs::rename(&tmp, output)
        .with_context(|| format!("{}: rename into place", output.display()))?;
    if component.len() > 64 << 20 {
        bail!(
            "{}: component is {} bytes, suspiciously large",
            output.display(),
            component.len()
        );
    }
    eprintln!(
        "componentized {} -> {} ({} -> {} bytes, world {world}, {} ms)",
        input.display(),
        output.display(),
        core.len(),
        component.len(),
        started.elapsed().as_millis()
    );
    Ok(())
}
