//! What weft tells the operator on stderr outside the log (start-up banners, progress,
//! summaries): plain lines, or with `--log-format json` one JSON object per line in the log's
//! own shape (`timestamp`, `level`, `fields.message`, `target`), so that a log shipper reading
//! stderr gets nothing but JSON lines.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Writes every later message as a JSON line (`--log-format json`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

fn write(level: &str, msg: &dyn Display) {
    if JSON.load(Ordering::Relaxed) {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "fields": {"message": msg.to_string()},
            "target": "weft",
        });
        eprintln!("{line}");
    } else {
        eprintln!("{msg}");
    }
}

/// A message for the operator.
pub fn say(msg: impl Display) {
    write("INFO", &msg);
}

/// A warning for the operator.
pub fn warn(msg: impl Display) {
    write("WARN", &msg);
}

/// An error for the operator (what made the command fail).
pub fn error(msg: impl Display) {
    write("ERROR", &msg);
}
