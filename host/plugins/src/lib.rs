//! Plugin packaging: inspecting a component's WIT world, the bundle format (a zip with a
//! `weft-bundle.json` manifest and the blake3 digest of every file, like MWAA's plugins.zip but
//! sealed), and installing bundles or single `.wasm` files into the store.
//!
//! It owns the rules for what may enter the store (no zip-slip, digests match, only weft worlds,
//! size caps ([`limits`]), no silent replacement). It never runs a plugin: that is the sandbox's job.

pub mod build;
pub mod bundle;
pub mod componentize;
mod error;
pub mod inspect;
pub mod install;
pub mod limits;
pub mod manifest;
mod strict_json;
mod zip_index;

pub use error::PluginError;
pub use inspect::{inspect_component, ComponentInfo};
pub use install::{install_path, InstallOptions, Installed};
pub use manifest::{BundleManifest, PluginEntry};
