//! `weft invoke NAME --input JSON`: run one operator in the sandbox and print its output, or
//! `{"Error","Cause"}` with exit code 1.

use crate::args::InvokeArgs;
use crate::context::{json_arg, parse_duration, parse_size, plugin_host, print_failure, usage};
use anyhow::Result;
use std::process::ExitCode;
use std::sync::Arc;
use weft_engine::PluginRef;
use weft_sandbox::{Grant, Limits, Policy};

pub fn run(a: InvokeArgs) -> Result<ExitCode> {
    let input = json_arg("input", &a.input)?;
    let ctx = match &a.ctx {
        Some(c) => json_arg("ctx", c)?,
        None => serde_json::json!({"task": a.plugin, "attempt": 1, "params": {}}),
    };
    let mut limits = Limits::default();
    if let Some(f) = a.fuel {
        limits.fuel = f;
    }
    if let Some(t) = &a.timeout {
        limits.timeout = parse_duration(t)?;
    }
    if let Some(m) = &a.memory {
        limits.memory_bytes = parse_size(m)?;
    }
    let grant = match &a.policy {
        None => Grant::none(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("{}: cannot read policy: {e}", path.display())))?;
            let policy = Policy::parse(&text).map_err(|errs| {
                usage(
                    errs.iter()
                        .map(|e| format!("{}: {e}", path.display()))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
            let base = std::env::current_dir()?;
            Grant::compile(vec![Arc::new(policy)], &base)
        }
    };
    let host = plugin_host()?;
    let r = PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
    let rec = host.resolve(&r).map_err(|e| usage(e.to_string()))?;
    let component = host.load(&rec)?;
    let outcome = host.invoke(
        &component,
        &input.to_string(),
        &ctx.to_string(),
        Arc::new(grant),
        limits,
    )?;
    if a.logs {
        for l in &outcome.logs {
            eprintln!("[{} +{}ms] {}", l.level, l.at_ms, l.message);
        }
        if !outcome.stdout.is_empty() {
            eprintln!("--- stdout ---\n{}", outcome.stdout);
        }
        if !outcome.stderr.is_empty() {
            eprintln!("--- stderr ---\n{}", outcome.stderr);
        }
        for r in &outcome.audit {
            eprintln!("audit: {}", serde_json::to_string(r)?);
        }
        eprintln!(
            "fuel used: {}, duration: {:?}",
            outcome.fuel_used, outcome.duration
        );
    }
    match outcome.result {
        Ok(out) => {
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            print_failure(&e.error, &e.cause);
            Ok(ExitCode::from(1))
        }
    }
}
