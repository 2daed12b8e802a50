//! `weft plugin pack|install|list|inspect|verify`.

use crate::args::PluginCmd;
use crate::context::{open_plugin_store, usage};
use anyhow::Result;
use std::process::ExitCode;
use weft_plugins::{install_path, InstallOptions, PluginError};

fn plugin_error(e: PluginError) -> anyhow::Error {
    match e {
        PluginError::Io { .. } | PluginError::Store(_) => e.into(),
        other => usage(other.to_string()),
    }
}

pub fn run(cmd: PluginCmd) -> Result<ExitCode> {
    match cmd {
        PluginCmd::Build { dir, out } => return crate::cmd_build::run_build(&dir, out.as_deref()),
        PluginCmd::New { lang, name, dir } => return crate::cmd_build::run_new(&lang, &name, &dir),
        PluginCmd::Pack { dir, output } => {
            let m = weft_plugins::bundle::pack(&dir, &output).map_err(plugin_error)?;
            for p in &m.plugins {
                println!("{}@{}\t{}\tblake3:{}", p.name, p.version, p.world, p.blake3);
            }
            eprintln!(
                "packed {} plugin(s) into {}",
                m.plugins.len(),
                output.display()
            );
        }
        PluginCmd::Install { path, force } => {
            let store = open_plugin_store()?;
            let done =
                install_path(&store, &path, &InstallOptions { force }).map_err(plugin_error)?;
            for i in done {
                println!(
                    "{} {}@{} ({}) {}",
                    i.status, i.name, i.version, i.world, i.digest
                );
            }
        }
        PluginCmd::List { json } => {
            let store = open_plugin_store()?;
            let list = store.registry().list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("no plugins installed (weft plugin install FILE.wasm|BUNDLE.zip)");
            } else {
                println!("{:<24} {:<10} {:<7} DIGEST", "NAME", "VERSION", "WORLD");
                for p in list {
                    println!(
                        "{:<24} {:<10} {:<7} {}",
                        p.name, p.version, p.world, p.digest
                    );
                }
            }
        }
        PluginCmd::Inspect { name } => {
            let store = open_plugin_store()?;
            let r = weft_engine::PluginRef::parse(&name).map_err(|e| usage(e.to_string()))?;
            let rec =
                weft_engine::plugin_host::resolve(&store, &r).map_err(|e| usage(e.to_string()))?;
            let bytes = store
                .blobs()
                .get_capped(&rec.digest, weft_plugins::limits::MAX_COMPONENT_BYTES)?;
            let info = weft_plugins::inspect_component(&bytes)
                .map_err(|e| usage(format!("{name}: {e}")))?;
            let out = serde_json::json!({
                "name": rec.name,
                "version": rec.version,
                "digest": rec.digest,
                "size": bytes.len(),
                "world": info.world,
                "exports": info.exports,
                "imports": info.imports,
                "description": rec.manifest.get("description"),
                "requested_grant": rec.manifest.get("grant"),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        PluginCmd::Verify => {
            let store = open_plugin_store()?;
            let mut bad = 0;
            for rec in store.registry().list()? {
                let verdict = store
                    .blobs()
                    .get_capped(&rec.digest, weft_plugins::limits::MAX_COMPONENT_BYTES)
                    .map_err(|e| e.to_string())
                    .and_then(|b| weft_plugins::inspect_component(&b));
                match verdict {
                    Ok(info) if info.world == rec.world => {
                        println!("ok   {}@{} {}", rec.name, rec.version, rec.digest)
                    }
                    Ok(info) => {
                        bad += 1;
                        println!(
                            "FAIL {}@{}: recorded as {} but the component is a {}",
                            rec.name, rec.version, rec.world, info.world
                        )
                    }
                    Err(e) => {
                        bad += 1;
                        println!("FAIL {}@{}: {e}", rec.name, rec.version)
                    }
                }
            }
            if bad > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
