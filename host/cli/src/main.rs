//! The `weft` command line: the binary's edge, where errors become messages and exit codes.
//!
//! Exit codes: 0 success, 1 a failed execution/task/run (its `{"Error","Cause"}` on stdout),
//! 2 invalid input (definition, policy, arguments), 3 any other error.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod args;
mod cmd_bench;
mod cmd_bench_dag;
mod cmd_bench_http;
mod cmd_bench_python;
mod cmd_bench_traces;
mod cmd_build;
mod cmd_dag;
mod cmd_dag_deps;
mod cmd_dag_ops;
mod cmd_dag_validate;
mod cmd_invoke;
mod cmd_plugin;
mod cmd_run;
mod cmd_sched;
mod cmd_secrets;
mod cmd_server;
mod cmd_sm;
mod cmd_worker;
mod context;
mod help;
mod local_callbacks;
mod mocks;
mod progress;
mod telemetry;

use clap::FromArgMatches;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match args::Cli::from_arg_matches(&help::command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // the HTTP client writes request bytes (credentials included) and URLs at trace level:
    // when WEFT_LOG asks for traces, the client's stop at debug (where it redacts them)
    let filter = if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE)
    {
        ["ureq=debug", "ureq_proto=debug"]
            .into_iter()
            .filter_map(|d| d.parse().ok())
            .fold(filter, |f, d| f.add_directive(d))
    } else {
        filter
    };
    match cli.log_format {
        args::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        // one object per line; `span` and `spans` carry the execution / DAG run and trace ids
        args::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    weft_server::console::set_json(cli.log_format == args::LogFormat::Json);
    let exporter = match telemetry::init(cli.otlp_endpoint.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            weft_server::console::error(format!("error: {e:#}"));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        args::Command::Run(a) => cmd_run::run(a),
        args::Command::Validate(a) => cmd_run::validate(a),
        args::Command::Plugin(cmd) => cmd_plugin::run(cmd),
        args::Command::Invoke(a) => cmd_invoke::run(a),
        args::Command::Bench(a) => cmd_bench::run(a),
        args::Command::Server(a) => {
            if let Some(p) = a.dags_paused_at_creation {
                // read by the server's DAG scheduler and API
                std::env::set_var(
                    weft_engine::scheduler::PAUSED_AT_CREATION_ENV,
                    p.to_string(),
                );
            }
            match weft_engine::scheduler::paused_at_creation_from_env() {
                Err(e) => Err(context::usage(e.to_string())),
                Ok(_) => {
                    cmd_server::run(a.listen, a.no_auth, a.mock_config, a.no_local_tasks, a.db)
                }
            }
        }
        args::Command::Worker(a) => cmd_worker::run(a),
        args::Command::Dag(c) => cmd_dag::run(c),
        args::Command::Sm(a) => cmd_sm::run(a),
        args::Command::Audit(a) => cmd_sm::audit(a),
        args::Command::Variables(c) => cmd_secrets::run(weft_engine::variables::Kind::Variable, c),
        args::Command::Connections(c) => {
            cmd_secrets::run(weft_engine::variables::Kind::Connection, c)
        }
        args::Command::Completions { shell } => help::completions(shell),
    };
    // short runs must not lose their spans
    if let Some(e) = exporter {
        e.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            weft_server::console::error(format!("error: {e:#}"));
            ExitCode::from(match e.downcast_ref::<context::Usage>() {
                Some(_) => 2,
                None => 3,
            })
        }
    }
}
