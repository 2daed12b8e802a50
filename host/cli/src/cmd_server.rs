//! `weft server [--listen ADDR:PORT] [--no-auth]`: the Step Functions-compatible HTTP API
//! (AWS JSON 1.0 on `POST /`) on 127.0.0.1:8470 by default. See the `weft-server` crate.

use crate::context::{home, usage};
use anyhow::Result;
use std::net::ToSocketAddrs;
use std::process::ExitCode;

pub fn run(listen: String, no_auth: bool) -> Result<ExitCode> {
    if listen
        .to_socket_addrs()
        .map(|mut a| a.next().is_none())
        .unwrap_or(true)
    {
        return Err(usage(format!(
            "--listen {listen}: expected ADDRESS:PORT (e.g. 127.0.0.1:8470)"
        )));
    }
    weft_server::run(&listen, no_auth, &home())
}
