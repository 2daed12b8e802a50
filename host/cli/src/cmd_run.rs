//! `weft run FILE --input JSON|@file`: one Express-style execution in-process, tasks in the
//! sandbox. Prints the output JSON (exit 0), or `{"Error","Cause"}` (exit 1); an invalid
//! definition prints every problem with its JSON pointer on stderr and exits 2.
//! `--mock-config MOCKS.json --test-case NAME` answers the test case's Task states from their
//! mocked responses (Step Functions Local's format, see [`weft_asl::mock`]); `--fast-forward`
//! runs on a clock that advances only when Wait states and retry back-offs sleep on it.
//! `weft validate FILE` checks an ASL definition or a DAG file without running it.

use crate::args::{RunArgs, ValidateArgs};
use crate::context::{home, json_arg, plugin_host, usage};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use weft_asl::mock::{MockConfig, MockTaskRunner, TestCase};
use weft_asl::{
    run_express, Clock, FakeClock, HistoryEvent, Hooks, RunOptions, SystemClock, TaskRunner,
};
use weft_engine::asl_tasks::SandboxTaskRunner;
use weft_engine::buckets::BucketAccess;
use weft_engine::Roles;

fn read_definition(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| usage(format!("{}: cannot read: {e}", path.display())))
}

/// Parses and validates a JSON or YAML definition; on failure every error is printed as
/// `FILE: POINTER: reason`.
fn parse(path: &Path) -> Result<weft_asl::StateMachine> {
    parse_with_warnings(path).map(|(sm, _, _)| sm)
}

/// [`parse`], also returning the decoded definition and what weft accepts but does not
/// honour (`POINTER: warning: ...`).
fn parse_with_warnings(
    path: &Path,
) -> Result<(
    weft_asl::StateMachine,
    serde_json::Value,
    Vec<weft_asl::Warning>,
)> {
    let text = read_definition(path)?;
    let located = |errs: weft_asl::ValidationErrors| {
        let lines: Vec<String> = errs
            .to_string()
            .lines()
            .map(|l| format!("{}: {l}", path.display()))
            .collect();
        usage(lines.join("\n"))
    };
    let def = weft_asl::yaml::any_to_value(&text).map_err(located)?;
    let (sm, warnings) = weft_asl::validate_value_with_warnings(&def).map_err(located)?;
    Ok((sm, def, warnings))
}

/// True for a YAML file that holds an ASL definition (top-level `StartAt` and `States`), as
/// SAM and Workflow Studio write them (`*.asl.yaml`), rather than a DAG file.
fn is_asl_yaml(path: &Path) -> bool {
    let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    if name.ends_with(".asl.yaml") || name.ends_with(".asl.yml") {
        return true;
    }
    std::fs::read_to_string(path).is_ok_and(|t| weft_asl::looks_like_asl_yaml(&t))
}

/// The file's stem as a state machine name: `foo.asl.json` -> `foo`.
fn stem(path: &Path) -> Option<String> {
    path.file_name().and_then(|f| f.to_str()).map(|f| {
        let f = [".json", ".yaml", ".yml"]
            .iter()
            .find_map(|e| f.strip_suffix(e))
            .unwrap_or(f);
        f.strip_suffix(".asl").unwrap_or(f).to_string()
    })
}

/// The test case to run with: the entry is `--state-machine-name`, else the definition's
/// stem, else the file's only entry.
fn test_case(
    a: &RunArgs,
    sm: &weft_asl::StateMachine,
    mocks: &MockConfig,
    case: &str,
) -> Result<TestCase> {
    let file = a
        .mock_config
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let entries = mocks.state_machines();
    let entry = match &a.state_machine_name {
        Some(n) => n.clone(),
        None => match stem(&a.file).filter(|s| entries.contains(s)) {
            Some(s) => s,
            None if entries.len() == 1 => entries[0].clone(),
            None => {
                return Err(usage(format!(
                    "{file}: cannot tell which state machine entry to use (none is named '{}'); pass --state-machine-name (entries: {})",
                    stem(&a.file).unwrap_or_default(),
                    if entries.is_empty() { "none".to_string() } else { entries.join(", ") }
                )))
            }
        },
    };
    let tc = mocks
        .test_case(&entry, case)
        .map_err(|e| usage(crate::mocks::describe(&file, &e)))?;
    // every test case of the entry must fit the definition, not only the one run
    let mut problems = Vec::new();
    for name in mocks.test_cases(&entry).unwrap_or_default() {
        if let Err(e) = mocks.test_case(&entry, &name).and_then(|c| c.check(sm)) {
            problems.push(crate::mocks::describe(&file, &e));
        }
    }
    if !problems.is_empty() {
        return Err(usage(problems.join("\n")));
    }
    Ok(tc)
}

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let sm = parse(&a.file)?;
    let input = json_arg("input", &a.input)?;
    let case = match (&a.mock_config, &a.test_case) {
        (Some(path), Some(name)) => {
            let mocks = crate::mocks::load(path)?;
            Some(test_case(&a, &sm, &mocks, name)?)
        }
        (None, None) => None,
        _ => return Err(usage("--mock-config and --test-case go together")),
    };
    let def_dir = a
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let roles = Roles::new(vec![home().join("roles"), def_dir.join("roles")]);
    let execution_role = match &a.role {
        Some(r) => Some(roles.get(r).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let host = plugin_host()?;
    let base = std::env::current_dir()?;
    let buckets = weft_engine::buckets::Buckets::load(&home()).map_err(|e| usage(e.to_string()))?;
    let reader = BucketAccess::new(
        std::sync::Arc::new(buckets),
        execution_role.clone(),
        base.clone(),
    );
    let mut runner = SandboxTaskRunner::new(&host, &roles, execution_role, base);
    runner.resource_maps = resource_maps(&a.file)?;
    // each run is a trace of its own (a state machine is often run again under the same
    // execution name); its tasks get a traceparent when traces are exported
    let trace = {
        let u = weft_asl::entropy::uuid_v4().simple().to_string();
        weft_engine::asl_tasks::trace_id(&u, None)
    };
    let exported = weft_engine::telemetry::enabled();
    let ids = weft_engine::telemetry::TraceIds::new(trace.clone());
    if exported {
        runner.trace = Some(ids.clone());
    }
    let spans = exported.then(|| weft_engine::telemetry::StateSpans { ids: ids.clone() });
    let mut opts = RunOptions::default();
    if let Some(n) = &a.name {
        opts.execution_name = n.clone();
    }
    opts.state_machine_name = match &a.state_machine_name {
        Some(n) => n.clone(),
        None => stem(&a.file).unwrap_or_else(|| "StateMachine".into()),
    };
    if a.machine_type.eq_ignore_ascii_case("EXPRESS") {
        opts.execution_arn = Some(format!(
            "arn:aws:states:{}:{}:express:{}:{}:{}",
            opts.region,
            opts.account,
            opts.state_machine_name,
            opts.execution_name,
            weft_asl::entropy::uuid_v4()
        ));
    }
    let mut history: Vec<HistoryEvent> = Vec::new();
    let hooks = Hooks {
        history: if a.history { Some(&mut history) } else { None },
        item_reader: Some(&reader),
        result_writer: Some(&reader),
        control: None,
        observer: spans.as_ref().map(|s| s as &dyn weft_asl::StateObserver),
    };
    let fake = FakeClock::default();
    let clock: &dyn Clock = if a.fast_forward { &fake } else { &SystemClock };
    let callbacks = crate::local_callbacks::LocalCallbacks {
        inner: &runner,
        clock,
    };
    let mocked = case.map(|tc| MockTaskRunner::new(&callbacks, tc));
    let tasks: &dyn TaskRunner = match &mocked {
        Some(m) => m,
        None => &callbacks,
    };
    let arn = opts.execution_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:states:{}:{}:execution:{}:{}",
            opts.region, opts.account, opts.state_machine_name, opts.execution_name
        )
    });
    let span = tracing::info_span!("execution", execution = %arn, trace_id = %trace).entered();
    let started = std::time::SystemTime::now();
    let result = run_express(&sm, input, &opts, tasks, clock, hooks);
    drop(span);
    if exported {
        weft_engine::telemetry::execution(&weft_engine::telemetry::ExecutionSpan {
            ids: &ids,
            trace_header: None,
            execution_arn: &arn,
            state_machine: &opts.state_machine_name,
            start: started,
            end: std::time::SystemTime::now(),
            status: if result.is_ok() {
                "SUCCEEDED"
            } else {
                "FAILED"
            },
            error: result.as_ref().err().map(|e| e.error.as_str()),
        });
    }
    if a.history {
        let events: Vec<_> = history.iter().map(|e| e.to_json()).collect();
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "events": events }))?
        );
    }
    if a.logs {
        for t in runner.logs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            eprintln!("{}", serde_json::to_string(t)?);
        }
        for a in reader.audit() {
            eprintln!("{}", serde_json::json!({ "itemReader": a }));
        }
    }
    match result {
        Ok(out) => {
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}", e.to_error_output());
            Ok(ExitCode::from(1))
        }
    }
}

pub fn validate(a: ValidateArgs) -> Result<ExitCode> {
    if a.file.is_dir() {
        return crate::cmd_dag_validate::folder(&a.file, a.json);
    }
    let ext = a.file.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "py" || (ext == "yaml" || ext == "yml") && !is_asl_yaml(&a.file) {
        return crate::cmd_dag_validate::file(&a.file, a.json);
    }
    let (_, def, warnings) = parse_with_warnings(&a.file)?;
    for w in &warnings {
        eprintln!("{}: {w}", a.file.display());
    }
    // AWS service integrations no resource map serves
    let maps = resource_maps(&a.file)?;
    let mut unmapped_errors = Vec::new();
    for u in weft_engine::resource_map::unmapped(&def, &maps) {
        let line = format!("{}: {}: {}", a.file.display(), u.pointer, u.message());
        if u.is_error() && !a.allow_unmapped {
            unmapped_errors.push(line.replacen(": the integration", ": error: the integration", 1));
        } else {
            eprintln!(
                "{}",
                line.replacen(": the integration", ": warning: the integration", 1)
            );
        }
    }
    if !unmapped_errors.is_empty() {
        return Err(usage(unmapped_errors.join("\n")));
    }
    // which operators a run needs and are not installed (when the store can be read: a
    // server holding it does not make validation fail)
    if let Ok(store) = weft_store::PluginStore::open(home()) {
        for w in weft_engine::needed_plugins::missing(&store, &def) {
            eprintln!("{}: {w}", a.file.display());
        }
        for w in weft_engine::needed_plugins::missing_mapped(&store, &def, &maps) {
            eprintln!("{}: {w}", a.file.display());
        }
    }
    println!("{}: valid state machine", a.file.display());
    Ok(ExitCode::SUCCESS)
}

/// The resource maps of a local run: beside the definition, then `$WEFT_HOME`'s.
fn resource_maps(file: &Path) -> Result<weft_engine::resource_map::ResourceMaps> {
    weft_engine::resource_map::local_maps(file, &home()).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        usage(lines.join("\n"))
    })
}
