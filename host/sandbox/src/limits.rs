//! Per-invocation limits (fuel, deadline, memory, tables, instances, output and log sizes) and
//! the resource limiter that enforces memory/table caps and remembers that a cap was hit, so a
//! failed `memory.grow` can be reported as `Sandbox.MemoryLimit` rather than a generic trap.

use std::time::Duration;

/// What one invocation may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel units (roughly wasm instructions).
    pub fuel: u64,
    /// Wall-clock deadline, enforced with epoch interruption.
    pub timeout: Duration,
    /// Linear memory cap per store, in bytes.
    pub memory_bytes: usize,
    /// Table elements cap.
    pub table_elements: usize,
    /// Core instances per store.
    pub instances: usize,
    /// Largest accepted output JSON, in bytes (Step Functions' payload limit is 256 KiB).
    pub max_output_bytes: usize,
    /// Captured stdout/stderr bytes per stream.
    pub max_stdio_bytes: usize,
    /// Largest HTTP response body a guest may receive.
    pub max_http_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000_000,
            timeout: Duration::from_secs(60),
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            instances: 32,
            max_output_bytes: 256 * 1024,
            max_stdio_bytes: 64 * 1024,
            max_http_body_bytes: 16 << 20,
        }
    }
}

pub(crate) struct Limiter {
    pub memory_bytes: usize,
    pub table_elements: usize,
    pub instances: usize,
    /// Set when a grow was refused because of a cap.
    pub memory_hit: Option<(usize, usize)>,
    pub table_hit: bool,
    /// The largest linear memory size granted so far, in bytes.
    pub peak_memory: usize,
}

impl Limiter {
    pub fn new(l: &Limits) -> Self {
        Self {
            memory_bytes: l.memory_bytes,
            table_elements: l.table_elements,
            instances: l.instances,
            memory_hit: None,
            table_hit: false,
            peak_memory: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_hit = Some((current, desired));
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.table_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
    fn memories(&self) -> usize {
        self.instances
    }
    fn tables(&self) -> usize {
        self.instances * 4
    }
}
