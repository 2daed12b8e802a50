//! Reading a mock configuration file (Step Functions Local's format, see
//! [`weft_asl::mock`]) for `weft run --mock-config` and `weft server --mock-config`: a size cap
//! before anything is read, and every problem reported as `FILE: POINTER: reason`.

use crate::context::usage;
use anyhow::Result;
use std::io::Read;
use std::path::Path;
use weft_asl::mock::{MockConfig, MockError, MAX_MOCK_CONFIG_BYTES};

/// Reads and validates the mock configuration at `path` (a usage error, exit 2, when it
/// cannot be used).
pub fn load(path: &Path) -> Result<MockConfig> {
    let shown = path.display();
    let f = std::fs::File::open(path).map_err(|e| usage(format!("{shown}: cannot read: {e}")))?;
    let mut bytes = Vec::new();
    f.take(MAX_MOCK_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| usage(format!("{shown}: cannot read: {e}")))?;
    if bytes.len() > MAX_MOCK_CONFIG_BYTES {
        return Err(usage(format!(
            "{shown}: the mock configuration is larger than the limit of {MAX_MOCK_CONFIG_BYTES} bytes"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| usage(format!("{shown}: the mock configuration is not UTF-8")))?;
    MockConfig::parse(&text).map_err(|e| usage(describe(&shown.to_string(), &e)))
}

/// `FILE: ` before each line of an error.
pub fn describe(file: &str, e: &MockError) -> String {
    e.to_string()
        .lines()
        .map(|l| format!("{file}: {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
