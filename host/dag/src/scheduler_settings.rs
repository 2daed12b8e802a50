//! Airflow's `[scheduler]` settings that change what a DAG file means, read where Airflow reads
//! them: `create_cron_data_intervals`, which decides whether a bare cron string, preset or
//! timedelta `schedule` becomes a data-interval timetable (Airflow 2's default, and weft's) or a
//! trigger timetable (Airflow 3's default).
//!
//! The value comes from the DAG folder's `weft.yaml` (`scheduler: {create_cron_data_intervals:
//! false}`), overridden by `$AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS` as Airflow's
//! environment overrides its `airflow.cfg`. Booleans are read as Airflow's `conf.getboolean`
//! reads them (`true`/`t`/`1`, `false`/`f`/`0`, any case, a trailing `#` comment ignored);
//! anything else is an error naming the setting.

/// Environment variable of Airflow's `[scheduler] create_cron_data_intervals`.
pub const CREATE_CRON_DATA_INTERVALS_ENV: &str = "AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS";

/// Airflow's `[scheduler]` settings weft reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// `true` (the default): a cron string or preset becomes `CronDataIntervalTimetable` and a
    /// timedelta `DeltaDataIntervalTimetable` (a run covers the period before it and runs at
    /// its end); `false`: `CronTriggerTimetable` / `DeltaTriggerTimetable` (a run at each tick,
    /// its logical date the tick, its data interval empty).
    pub create_cron_data_intervals: bool,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            create_cron_data_intervals: true,
        }
    }
}

impl SchedulerSettings {
    /// These settings with the environment's overrides applied (`Err`: a value that is not a
    /// boolean, in words naming the variable).
    pub fn with_env(self) -> Result<Self, String> {
        self.with_var(
            std::env::var(CREATE_CRON_DATA_INTERVALS_ENV)
                .ok()
                .as_deref(),
        )
    }

    /// These settings with `create_cron_data_intervals` overridden by `value` when it is set.
    pub fn with_var(mut self, value: Option<&str>) -> Result<Self, String> {
        if let Some(v) = value {
            self.create_cron_data_intervals = parse_airflow_bool(v)
                .map_err(|e| format!("${CREATE_CRON_DATA_INTERVALS_ENV}: {e}"))?;
        }
        Ok(self)
    }
}

/// Longest boolean text echoed back in an error.
const MAX_ECHO: usize = 40;

/// A boolean as Airflow's `conf.getboolean` reads it.
pub fn parse_airflow_bool(text: &str) -> Result<bool, String> {
    let lower = text.to_ascii_lowercase();
    let v = lower.split('#').next().unwrap_or("").trim();
    match v {
        "t" | "true" | "1" => Ok(true),
        "f" | "false" | "0" => Ok(false),
        _ => {
            let shown: String = text.chars().take(MAX_ECHO).collect();
            let more = if text.chars().count() > MAX_ECHO {
                "..."
            } else {
                ""
            };
            Err(format!(
                "`{}{more}` is not a boolean (expected true or false; Airflow also reads t, f, 1, 0)",
                shown.escape_debug()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airflow_spellings() {
        for t in ["true", "True", " TRUE ", "t", "1", "true # comment"] {
            assert_eq!(parse_airflow_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "False", "f", "0", " F"] {
            assert_eq!(parse_airflow_bool(f), Ok(false), "{f}");
        }
    }

    #[test]
    fn hostile_values_are_errors_naming_the_setting() {
        for bad in ["", "yes", "no", "2", "truee", "on", "\u{0}true", "tru\ne"] {
            let e = SchedulerSettings::default()
                .with_var(Some(bad))
                .unwrap_err();
            assert!(e.contains(CREATE_CRON_DATA_INTERVALS_ENV), "{e}");
            assert!(e.contains("not a boolean"), "{e}");
        }
        // a long value is not echoed whole
        let long = "x".repeat(10_000);
        let e = SchedulerSettings::default()
            .with_var(Some(&long))
            .unwrap_err();
        assert!(e.len() < 300, "{}", e.len());
    }

    #[test]
    fn default_and_override() {
        let s = SchedulerSettings::default();
        assert!(s.create_cron_data_intervals);
        assert_eq!(s.with_var(None), Ok(s));
        let off = s.with_var(Some("False")).unwrap();
        assert!(!off.create_cron_data_intervals);
        assert!(off.with_var(Some("1")).unwrap().create_cron_data_intervals);
    }
}
