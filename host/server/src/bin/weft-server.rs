//! A stand-alone `weft server` (same as the CLI's subcommand), handy while developing the
//! server: `weft-server [server] [--listen ADDR:PORT] [--no-auth]`.

fn main() -> anyhow::Result<std::process::ExitCode> {
    let mut listen = "127.0.0.1:8470".to_string();
    let mut no_auth = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "server" => {}
            "--listen" => {
                listen = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--listen needs ADDR:PORT"))?
            }
            "--no-auth" => no_auth = true,
            other => {
                eprintln!("usage: weft-server [--listen ADDR:PORT] [--no-auth] (unknown argument `{other}`)");
                return Ok(std::process::ExitCode::from(2));
            }
        }
    }
    weft_server::run(&listen, no_auth, &weft_engine::weft_home())
}
