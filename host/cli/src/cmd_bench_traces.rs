//! `weft bench traces`: what exporting traces costs per state. The same executions run with
//! traces off and on: a 100-state Pass chain (the interpreter alone, where a span's cost shows
//! most) and a 100-task chain of `--plugin` (each task a state span and an attempt span). With
//! `--otlp-endpoint` the spans go to that collector through the real exporter (queued, batched,
//! sent on its own thread); without one they go to a processor that drops them, which measures
//! building and handing them over. Figures only; no thresholds are asserted.

use crate::args::BenchArgs;
use crate::context::{plugin_host, usage};
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use weft_engine::telemetry::{StateSpans, TraceIds};
use weft_engine::PluginRef;

/// Drops every span (the cost of recording them without a collector).
#[derive(Debug)]
struct Discard;

impl opentelemetry_sdk::trace::SpanProcessor for Discard {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        std::hint::black_box(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

const STATES: usize = 100;

fn chain(state: impl Fn(usize) -> Value) -> Result<weft_asl::StateMachine> {
    let mut states = Map::new();
    for i in 0..STATES {
        let mut st = state(i);
        if i + 1 == STATES {
            st["End"] = json!(true);
        } else {
            st["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), st);
    }
    let def = json!({"StartAt": "S0", "States": states}).to_string();
    weft_asl::parse(&def).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Mean time per state of `runs` runs of `sm`, traced or not.
fn per_state(
    sm: &weft_asl::StateMachine,
    runner: &mut weft_engine::asl_tasks::SandboxTaskRunner<'_>,
    runs: usize,
    traced: bool,
) -> Result<Duration> {
    let input = json!({"order": 42, "items": ["a", "b"], "total": 9.5});
    let opts = weft_asl::RunOptions::default();
    let mut total = Duration::ZERO;
    for i in 0..=runs {
        // each run its own trace, as `weft run` makes it
        let ids = TraceIds::new(format!("{:032x}", i as u128 + 1));
        let spans = StateSpans { ids: ids.clone() };
        runner.trace = traced.then_some(ids);
        let hooks = weft_asl::Hooks {
            observer: traced.then_some(&spans as &dyn weft_asl::StateObserver),
            ..weft_asl::Hooks::default()
        };
        let t = Instant::now();
        weft_asl::run_express(
            sm,
            input.clone(),
            &opts,
            &*runner,
            &weft_asl::SystemClock,
            hooks,
        )
        .map_err(|e| anyhow::anyhow!("{}: {:?}", e.error, e.cause))?;
        if i > 0 {
            total += t.elapsed(); // the first run warms up
        }
    }
    Ok(total / (runs * STATES) as u32)
}

/// Measurement rounds; each runs untraced then traced, and the medians are reported (the two
/// modes see the same machine noise).
const ROUNDS: usize = 7;

fn rounds(
    sm: &weft_asl::StateMachine,
    runner: &mut weft_engine::asl_tasks::SandboxTaskRunner<'_>,
    runs: usize,
) -> Result<(Duration, Duration)> {
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        off.push(per_state(sm, runner, runs, false)?);
        on.push(per_state(sm, runner, runs, true)?);
        // the task logs the runner keeps are not what is measured
        runner
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
    off.sort();
    on.sort();
    Ok((off[ROUNDS / 2], on[ROUNDS / 2]))
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let to = if weft_engine::telemetry::enabled() {
        "the OTLP exporter"
    } else {
        weft_engine::telemetry::install(std::sync::Arc::new(Discard));
        "a processor that drops them (give --otlp-endpoint to export)"
    };
    let host = plugin_host()?;
    let r = PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
    let rec = host.resolve(&r).map_err(|e| usage(e.to_string()))?;
    let roles = weft_engine::Roles::new(Vec::new());
    let mut runner = weft_engine::asl_tasks::SandboxTaskRunner::new(
        &host,
        &roles,
        None,
        std::env::current_dir()?,
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let passes = chain(|_| json!({"Type": "Pass"}))?;
    let runs = (a.iterations as usize / STATES).max(5);
    let (off, on) = rounds(&passes, &mut runner, runs)?;
    println!(
        "traces: {ROUNDS} rounds of {runs} runs of {STATES} Pass states (medians): {:.2} us per state untraced, {:.2} us traced: {:.2} us per state span (spans to {to})",
        us(off),
        us(on),
        us(on) - us(off)
    );
    let tasks =
        chain(|_| json!({"Type": "Task", "Resource": format!("weft:plugin:{}", rec.name)}))?;
    let runs = (a.iterations as usize / STATES / 4).max(5);
    let (off, on) = rounds(&tasks, &mut runner, runs)?;
    println!(
        "traces: {ROUNDS} rounds of {runs} runs of {STATES} `{}` tasks (medians): {:.1} us per task untraced, {:.1} us traced: {:.1} us per task (a state span and an attempt span)",
        rec.name,
        us(off),
        us(on),
        us(on) - us(off)
    );
    Ok(ExitCode::SUCCESS)
}
