//! `weft variables|connections set|get|list|delete`: Airflow Variables and Connections in
//! `$WEFT_HOME/secrets.json` (mode 0600) as `var/NAME` and `conn/NAME`. `list` prints names
//! only; only `get` prints a value.

use crate::args::SecretCmd;
use crate::context::{home, usage};
use anyhow::Result;
use std::process::ExitCode;
use weft_engine::variables::{check_name, Kind, SecretsFile};

pub fn run(kind: Kind, cmd: SecretCmd) -> Result<ExitCode> {
    let f = SecretsFile::new(&home());
    let what = match kind {
        Kind::Variable => "variable",
        Kind::Connection => "connection",
    };
    match cmd {
        SecretCmd::Set { name, value } => {
            check_name(&name).map_err(usage)?;
            f.set(kind, &name, &value)
                .map_err(|e| usage(e.to_string()))?;
            eprintln!("{what} {name} set");
        }
        SecretCmd::Get { name } => match f.get(kind, &name)? {
            Some(v) => println!("{v}"),
            None => return Err(usage(format!("no {what} `{name}`"))),
        },
        SecretCmd::List { json } => {
            let names = f.list(kind)?;
            if json {
                println!("{}", serde_json::to_string(&names)?);
            } else {
                for n in names {
                    println!("{n}");
                }
            }
        }
        SecretCmd::Delete { name } => {
            if !f.delete(kind, &name)? {
                return Err(usage(format!("no {what} `{name}`")));
            }
            eprintln!("{what} {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
