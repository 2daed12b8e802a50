//! `weft server [--listen ADDR:PORT] [--no-auth]`: the Step Functions-compatible HTTP API
//! (AWS JSON 1.0 on `POST /`) on 127.0.0.1:8470 by default. See the `weft-server` crate.
//! `--mock-config FILE` (or `$SFN_MOCK_CONFIG`) loads a Step Functions Local mock
//! configuration: `StartExecution` on `STATE_MACHINE_ARN#TestCase` runs with its mocks.
//! `--no-local-tasks` leaves every plugin task of a Standard execution to `weft worker`s.
//! `--db postgres://USER@HOST:PORT/DB` (or `$WEFT_DB`) keeps executions, their history and
//! journal, the catalog and the DAG scheduler's state in PostgreSQL instead of sled.

use crate::context::{home, usage};
use anyhow::Result;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(
    listen: String,
    no_auth: bool,
    mock_config: Option<PathBuf>,
    no_local_tasks: bool,
    db: Option<String>,
) -> Result<ExitCode> {
    if listen
        .to_socket_addrs()
        .map(|mut a| a.next().is_none())
        .unwrap_or(true)
    {
        return Err(usage(format!(
            "--listen {listen}: expected ADDRESS:PORT (e.g. 127.0.0.1:8470)"
        )));
    }
    let path = mock_config.or_else(|| {
        std::env::var_os("SFN_MOCK_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let mocks = match path {
        Some(p) => Some(crate::mocks::load(&p)?),
        None => None,
    };
    let db = db.or_else(|| std::env::var("WEFT_DB").ok().filter(|u| !u.is_empty()));
    weft_server::run_node(
        &listen,
        no_auth,
        &home(),
        mocks,
        !no_local_tasks,
        db.as_deref(),
    )
}
