//! Generates the `export_operator!` / `export_sensor!` macros with the WIT package embedded.
//!
//! Each world's bindings must be generated in the *operator's* crate: wit-bindgen emits a
//! `component-type` custom section per generated world and wit-component unions all of them, so
//! an SDK that generated both `task` and `sensor` would make every plugin claim both exports.
//! The SDK itself only generates the imports (host, http); the macros generate the one export.

use std::{env, fs, path::PathBuf};

fn main() {
    let wit_path = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("wit/operator.wit");
    println!("cargo:rerun-if-changed={}", wit_path.display());
    println!("cargo:rerun-if-changed=src/export_macros.in.rs");
    let wit = fs::read_to_string(&wit_path).expect("read wit/operator.wit");

    // A raw string literal whose delimiter cannot occur in the WIT text.
    let mut hashes = String::from("#");
    while wit.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    let literal = format!("r{hashes}\"{wit}\"{hashes}");

    let template = fs::read_to_string("src/export_macros.in.rs").expect("read template");
    let out = template.replace("__WEFT_WIT_SOURCE__", &literal);
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("export_macros.rs");
    fs::write(dest, out).expect("write export_macros.rs");
}
