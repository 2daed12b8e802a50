//! Progress of long CLI work (`weft dag backfill`, `weft plugin build`, `weft bench`), always on
//! stderr so that stdout (a command's JSON) stays clean. On a terminal it is an `indicatif` bar
//! (or a spinner when the amount of work is unknown) with the elapsed time and an estimate of
//! what is left; when stderr is piped or redirected (CI logs, a test) it is plain lines, one
//! when something changes, and for large counts one per tenth of the work, never a flood of
//! redraws. The two modes report the same events.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One piece of long work being reported.
pub struct Progress {
    label: String,
    unit: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    /// Plain mode: the last position and message printed (not to repeat a line).
    printed: Mutex<(Option<u64>, String)>,
}

/// Whether progress is drawn as a bar (stderr is a terminal) or written as plain lines.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

impl Progress {
    /// Work of `total` items counted in `unit` (`runs`, `invocations`).
    pub fn counted(label: impl Into<String>, total: u64, unit: &'static str) -> Self {
        let label = label.into();
        let bar = on_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({elapsed}, ~{eta} left)",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(label.clone());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            label,
            unit,
            total,
            bar,
            started: Instant::now(),
            printed: Mutex::new((None, String::new())),
        }
    }

    /// Work whose amount is not known in advance: a spinner with the current step.
    pub fn steps(label: impl Into<String>) -> Self {
        let label = label.into();
        let bar = on_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(label.clone());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            label,
            unit: "",
            total: 0,
            bar,
            started: Instant::now(),
            printed: Mutex::new((None, String::new())),
        }
    }

    /// `pos` items of the total are done; `detail` says more (`1 failed`), may be empty.
    pub fn set(&self, pos: u64, detail: &str) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            b.set_message(if detail.is_empty() {
                self.unit.to_string()
            } else {
                format!("{}, {detail}", self.unit)
            });
            return;
        }
        let mut printed = lock(&self.printed);
        let tenth = |p: u64| (p * 10).checked_div(self.total).unwrap_or(p);
        let due = match printed.0 {
            None => true,
            Some(last) if pos == last => detail != printed.1,
            // large counts: one line per tenth of the work (and the last item)
            Some(last) if self.total > 20 => tenth(pos) != tenth(last) || pos == self.total,
            Some(_) => true,
        };
        if due {
            let detail_part = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            };
            eprintln!(
                "{}: {pos}/{} {}{detail_part}",
                self.label, self.total, self.unit
            );
            *printed = (Some(pos), detail.to_string());
        }
    }

    /// The current step of the work (`compiling`, `warm invocations`).
    pub fn step(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None => {
                let mut printed = lock(&self.printed);
                if printed.1 != msg {
                    eprintln!("{}: {msg}", self.label);
                    printed.1 = msg.to_string();
                }
            }
        }
    }

    /// The work is over: the bar is cleared and one line says how it ended and how long it took.
    pub fn finish(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        eprintln!(
            "{}: {msg} in {:.1} s",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // an error path that never called finish must not leave a half-drawn bar behind
        if let Some(b) = &self.bar {
            if !b.is_finished() {
                b.finish_and_clear();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
