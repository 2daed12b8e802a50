//! Turns a core wasm module built for `wasm32-wasip1` (e.g. a `weft-guest` operator compiled by
//! `make guests`) into a WebAssembly component, using the WASI preview1 *reactor* adapter that
//! ships inside the `wasi-preview1-component-adapter-provider` crate (no download, no
//! `wasm-tools`). The module's `component-type` custom sections (emitted by wit-bindgen) decide
//! the component's world; the adapter maps its `wasi_snapshot_preview1` imports onto WASI 0.2.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::ComponentEncoder;

/// Why a core module could not be made into a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    /// The input is already a component (nothing to do) or not wasm at all.
    #[error("input is not a core wasm module: {0}")]
    NotACoreModule(&'static str),
    /// wit-component refused the module (missing exports, bad metadata, unknown imports, ...).
    #[error("componentize failed: {0:#}")]
    Encode(anyhow::Error),
}

const WASM_MAGIC: [u8; 4] = *b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Whether `bytes` start like a core wasm module (not a component).
pub fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == WASM_MAGIC && bytes[4..8] == CORE_VERSION
}

/// Whether `bytes` start like a wasm component.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == WASM_MAGIC && bytes[4..8] != CORE_VERSION
}

/// Componentize a `wasm32-wasip1` core module with the preview1 reactor adapter.
/// The output is validated (wasmparser) before it is returned.
pub fn componentize(core_wasm: &[u8]) -> Result<Vec<u8>, ComponentizeError> {
    if is_component(core_wasm) {
        return Err(ComponentizeError::NotACoreModule(
            "it is already a component",
        ));
    }
    if !is_core_module(core_wasm) {
        return Err(ComponentizeError::NotACoreModule(
            "missing the `\\0asm` version-1 header",
        ));
    }
    ComponentEncoder::default()
        .module(core_wasm)
        .and_then(|enc| {
            enc.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|enc| enc.validate(true).encode())
        .map_err(ComponentizeError::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_modules() {
        assert!(matches!(
            componentize(b"nope"),
            Err(ComponentizeError::NotACoreModule(_))
        ));
        let component = wat::parse_str("(component)").unwrap();
        assert!(matches!(
            componentize(&component),
            Err(ComponentizeError::NotACoreModule(_))
        ));
    }

    #[test]
    fn module_without_wit_metadata_becomes_an_empty_component() {
        let core = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
        let out = componentize(&core).unwrap();
        assert!(is_component(&out));
    }
}
