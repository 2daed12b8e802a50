//! `weft server [--listen ADDR:PORT] [--no-auth]`: the Step Functions-compatible HTTP API
//! (AWS JSON 1.0 on `POST /`) on 127.0.0.1:8470 by default. See the `weft-server` crate.

use anyhow::Result;
use std::process::ExitCode;

pub fn run(listen: String, no_auth: bool) -> Result<ExitCode> {
    weft_server::run(&listen, no_auth, &crate::context::home())
}
