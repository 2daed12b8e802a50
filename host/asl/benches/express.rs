//! Express driver throughput: a 1,000-state Pass/Choice chain (state transitions per second)
//! a Map over 100,000 items with a no-op Pass iterator, a 10-branch Parallel (the cost of
//! running every branch at once on its own thread), and how long a failed branch takes to stop
//! a sibling waiting an hour. Run with
//! `cargo bench -p weft-asl --bench express`.

use serde_json::{json, Map, Value};
use std::time::Instant;
use weft_asl::{parse, run_express, Hooks, NoTasks, RunOptions, SystemClock};

fn chain(n: usize) -> String {
    let mut states = Map::new();
    for i in 0..n {
        let name = format!("S{i}");
        let next = if i + 1 < n {
            Some(format!("S{}", i + 1))
        } else {
            None
        };
        let st = if i % 2 == 0 {
            match next {
                Some(nx) => json!({"Type": "Pass", "Next": nx}),
                None => json!({"Type": "Pass", "End": true}),
            }
        } else {
            match next {
                Some(nx) => json!({"Type": "Choice", "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 100, "Next": nx.clone()},
                    {"Variable": "$.kind", "StringEquals": "x", "Next": nx.clone()}
                ], "Default": nx}),
                None => json!({"Type": "Succeed"}),
            }
        };
        states.insert(name, st);
    }
    json!({"StartAt": "S0", "States": states}).to_string()
}

fn main() {
    let opts = RunOptions::default();
    let clock = SystemClock;

    // 1,000-state Pass/Choice chain
    let sm = parse(&chain(1000)).expect("chain parses");
    let input = json!({"n": 1, "kind": "x", "payload": {"a": [1, 2, 3]}});
    for _ in 0..50 {
        let _ = run_express(
            &sm,
            input.clone(),
            &opts,
            &NoTasks,
            &clock,
            Hooks::default(),
        );
    }
    let runs = 2000;
    let t = Instant::now();
    for _ in 0..runs {
        let out = run_express(
            &sm,
            input.clone(),
            &opts,
            &NoTasks,
            &clock,
            Hooks::default(),
        );
        assert!(out.is_ok());
    }
    let el = t.elapsed().as_secs_f64();
    let transitions = (runs * 1000) as f64;
    println!(
        "pass/choice chain: {runs} runs x 1000 states in {el:.3}s = {:.0} transitions/s (single thread)",
        transitions / el
    );

    // Map over 100,000 items with a no-op Pass iterator
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 0,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        // the 100,000-item result is over Step Functions' 256 KiB state limit: keep its size
        "ResultSelector": {"n.$": "States.ArrayLength($)"}, "End": true}}})
    .to_string();
    let sm = parse(&def).expect("map parses");
    let items: Vec<Value> = (0..100_000).map(|i| json!({"i": i})).collect();
    for (label, threads) in [("1 thread", 1usize), ("all cores", opts.max_threads)] {
        let o = RunOptions {
            max_threads: threads,
            // 100,000 items are ~1.3 MB: past AWS's 256 KiB, allowed for the benchmark
            max_payload_bytes: 8 << 20,
            ..opts.clone()
        };
        let t = Instant::now();
        let out = run_express(
            &sm,
            Value::Array(items.clone()),
            &o,
            &NoTasks,
            &clock,
            Hooks::default(),
        )
        .expect("map runs");
        let el = t.elapsed().as_secs_f64();
        assert_eq!(out["n"], 100_000);
        println!(
            "map 100,000 items ({label}): {el:.3}s = {:.0} items/s",
            100_000.0 / el
        );
    }

    // a 10-branch Parallel of Pass states: every branch on its own thread
    let branches: Vec<Value> = (0..10)
        .map(|i| json!({"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": i, "End": true}}}))
        .collect();
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": branches, "End": true}}});
    let sm = parse(&def.to_string()).expect("parallel parses");
    let runs = 2000;
    let t = Instant::now();
    for _ in 0..runs {
        assert!(run_express(&sm, json!({}), &opts, &NoTasks, &clock, Hooks::default()).is_ok());
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "parallel, 10 branches: {runs} runs in {el:.3}s = {:.1} us per Parallel state",
        el * 1e6 / runs as f64
    );

    // a failed branch stops a sibling in a one-hour Wait: time from start to the failure
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}},
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}]}}});
    let sm = parse(&def.to_string()).expect("parallel parses");
    let runs = 200;
    let t = Instant::now();
    for _ in 0..runs {
        assert!(run_express(&sm, json!({}), &opts, &NoTasks, &clock, Hooks::default()).is_err());
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "parallel, failed branch stops a 1 h Wait: {:.2} ms per execution (polling every {} ms)",
        el * 1e3 / runs as f64,
        weft_asl::express::CANCEL_POLL.as_millis()
    );
}
