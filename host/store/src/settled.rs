//! When a file's modification time may vouch for a cached read of it.
//!
//! A change made within the same tick of the file system's clock as a cached read keeps the
//! same modification time, so a cache keyed by that time may trust only a time older than any
//! such tick: a [`settled`] one. The plugin registry's `latest` answers and the engine's parsed
//! roles both rely on it.

use std::time::{Duration, SystemTime};

/// How old a modification time must be before it vouches for a cached answer.
pub const SETTLED: Duration = Duration::from_secs(1);

/// Whether `modified` is at least [`SETTLED`] in the past.
pub fn settled(modified: SystemTime) -> bool {
    modified.elapsed().is_ok_and(|age| age >= SETTLED)
}
