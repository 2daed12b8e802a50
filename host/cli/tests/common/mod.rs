//! Shared fixtures of the `weft` binary's integration tests: where the repository and the
//! guest plugins built by `make guests` are, and free loopback ports.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where `make guests` put the plugins (`WEFT_PLUGINS_DIR` overrides).
pub fn plugins_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/plugins"))
}

/// A built plugin, by path under the plugins directory.
pub fn plugin(rel: &str) -> PathBuf {
    let p = plugins_dir().join(rel);
    assert!(
        p.is_file(),
        "{} is missing: run `make guests` first",
        p.display()
    );
    p
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
