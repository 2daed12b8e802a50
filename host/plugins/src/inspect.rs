//! Reads a component's WIT world (imports and exports) without running it, and decides whether
//! it is a weft operator: it must export `weft:operator/operator` (task) or
//! `weft:operator/sensor` (sensor) at version 0.1.x and import nothing outside weft's host
//! interfaces and WASI's filesystem, clocks, random, io and cli.

use serde::Serialize;
use wit_parser::decoding::{decode, DecodedWasm};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentInfo {
    /// `task` or `sensor`.
    pub world: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

const ALLOWED_IMPORT_PREFIXES: &[&str] = &[
    "weft:operator/host@0.1.",
    "weft:operator/http@0.1.",
    "weft:operator/types@0.1.",
    "wasi:filesystem/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
    "wasi:cli/",
];

/// Inspects `bytes`; the error is a one-line reason.
pub fn inspect_component(bytes: &[u8]) -> Result<ComponentInfo, String> {
    if bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
        return Err("this is a core wasm module, not a component; build it with `make guests` / `weft plugin build` (componentize with the WASI preview1 adapter)".into());
    }
    let decoded = decode(bytes).map_err(|e| format!("not a valid wasm component: {e:#}"))?;
    let (resolve, world) = match decoded {
        DecodedWasm::Component(r, w) => (r, w),
        DecodedWasm::WitPackage(..) => return Err("this is a WIT package, not a component".into()),
    };
    let w = &resolve.worlds[world];
    let imports: Vec<String> = w
        .imports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    let exports: Vec<String> = w
        .exports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    let kind = if exports
        .iter()
        .any(|e| e.starts_with("weft:operator/operator@0.1."))
    {
        "task"
    } else if exports
        .iter()
        .any(|e| e.starts_with("weft:operator/sensor@0.1."))
    {
        "sensor"
    } else {
        return Err(format!(
            "its world is not weft's: it exports [{}] but a weft operator exports weft:operator/operator@0.1.0 (task) or weft:operator/sensor@0.1.0 (sensor)",
            exports.join(", ")
        ));
    };
    if let Some(bad) = imports
        .iter()
        .find(|i| !ALLOWED_IMPORT_PREFIXES.iter().any(|p| i.starts_with(p)))
    {
        return Err(format!(
            "it imports `{bad}`, which weft does not provide (sockets and wasi:http are unavailable; outgoing HTTP goes through weft:operator/http)"
        ));
    }
    Ok(ComponentInfo {
        world: kind.to_string(),
        imports,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let core = wat::parse_str("(module)").unwrap();
        assert!(inspect_component(&core)
            .unwrap_err()
            .contains("core wasm module"));
        assert!(inspect_component(b"garbage")
            .unwrap_err()
            .contains("not a valid wasm component"));
        let other = wat::parse_str("(component)").unwrap();
        assert!(inspect_component(&other)
            .unwrap_err()
            .contains("not weft's"));
    }
}
