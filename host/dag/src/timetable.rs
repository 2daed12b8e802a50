//! Timetables: when DAG runs happen and which data interval each one covers.
//!
//! A [`Schedule`] is what a DAG file's `schedule` says (cron string with the DAG's timezone,
//! preset, timedelta, `@once`, `null`, a timetable). This module computes data intervals the way
//! Airflow's `CronDataIntervalTimetable`, `DeltaDataIntervalTimetable`, `OnceTimetable` and
//! `NullTimetable` do: the run covering `[start, end)` has `logical_date = start` and becomes due
//! at `end`; `catchup: false` jumps to the latest complete interval; manual runs infer the last
//! complete interval before the requested time. `CronTriggerTimetable` and
//! `DeltaTriggerTimetable` run at each tick instead, the tick being the logical date and the end
//! of a data interval of the timetable's `interval` (empty by default). Which of the two a bare
//! cron string, preset or timedelta becomes is Airflow's `[scheduler] create_cron_data_intervals`
//! ([`Schedule::parse_with`]).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde_json::Value;

use crate::scheduler_settings::SchedulerSettings;

/// A DAG's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `null` / `None`: only manual runs.
    Never,
    /// `@once`: one run at `start_date`.
    Once,
    /// A cron expression with data intervals (Airflow's `CronDataIntervalTimetable`; presets
    /// are stored as their cron equivalent).
    Cron {
        /// The schedule as written (`@daily`, `0 3 * * 1-5`).
        source: String,
        /// The parsed expression.
        cron: Box<Cron>,
        /// The timetable's own timezone (else the DAG's).
        timezone: Option<Tz>,
    },
    /// A fixed period with data intervals (`timedelta`, Airflow's `DeltaDataIntervalTimetable`).
    Delta(Duration),
    /// Airflow's `DeltaTriggerTimetable`: a run every `delta` from the start date, covering the
    /// `interval` before it (zero by default).
    DeltaTrigger {
        /// Time between runs.
        delta: Duration,
        /// Length of each run's data interval.
        interval: Duration,
    },
    /// Airflow's `CronTriggerTimetable`: a run at each cron time, covering the `interval`
    /// before it (zero by default), with its own timezone when it names one.
    CronTrigger {
        /// The cron expression as written.
        source: String,
        /// The parsed expression.
        cron: Box<Cron>,
        /// The timetable's own timezone (else the DAG's).
        timezone: Option<Tz>,
        /// Length of each run's data interval.
        interval: Duration,
    },
    /// Dataset (asset) triggered, optionally also on a timetable (`DatasetOrTimeSchedule`).
    /// The scheduler creates a run when the condition ([`crate::assets::Condition`]) holds over
    /// the DAG's queued asset events, and on the timetable when there is one.
    Assets {
        /// The asset condition as written (URIs, `__and__` / `__or__` trees, asset objects).
        condition: Value,
        /// The time-based part.
        timetable: Option<Box<Schedule>>,
    },
    /// A schedule weft reads but does not run yet (a custom timetable class, a relativedelta
    /// with calendar fields): only manual runs, as with `Never`.
    NotRun {
        /// What it is, for messages (`timetable mypkg.MyTimetable`).
        what: String,
    },
}

/// A half-open data interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInterval {
    /// Inclusive start (the run's logical date).
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

/// One run a timetable asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DagRunInfo {
    /// The data interval.
    pub data_interval: DataInterval,
    /// The run's logical date (`data_interval.start`).
    pub logical_date: DateTime<Utc>,
    /// Earliest time the run may be created.
    pub run_after: DateTime<Utc>,
}

/// Bounds on automated runs.
#[derive(Debug, Clone, Copy)]
pub struct Restriction {
    /// The DAG's `start_date`.
    pub earliest: Option<DateTime<Utc>>,
    /// The DAG's `end_date`.
    pub latest: Option<DateTime<Utc>>,
    /// Whether missed intervals are run.
    pub catchup: bool,
}

const PRESETS: [(&str, &str); 7] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@quarterly", "0 0 1 */3 *"),
    ("@yearly", "0 0 1 1 *"),
];

/// Parse a timedelta: seconds as a number, a mapping like `{minutes: 5}` (with an optional
/// dag-factory `__type__` key) or `HH:MM:SS`.
pub fn parse_duration(v: &Value) -> Result<Duration, String> {
    let secs = match v {
        Value::Number(n) => n.as_f64().ok_or("not a number")?,
        Value::String(s) => parse_hms(s)?,
        Value::Object(m) => {
            let mut total = 0.0;
            for (k, v) in m {
                if k == "__type__" {
                    continue;
                }
                let n = v
                    .as_f64()
                    .ok_or_else(|| format!("timedelta field `{k}` must be a number"))?;
                total += n * match k.as_str() {
                    "weeks" => 604_800.0,
                    "days" => 86_400.0,
                    "hours" => 3_600.0,
                    "minutes" => 60.0,
                    "seconds" => 1.0,
                    "milliseconds" => 0.001,
                    "microseconds" => 0.000_001,
                    _ => return Err(format!(
                        "unknown timedelta field `{k}` (expected weeks, days, hours, minutes, seconds, milliseconds, microseconds)"
                    )),
                };
            }
            total
        }
        other => {
            return Err(format!(
                "expected seconds or a timedelta mapping, got {other}"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(format!("duration {v} out of range (0 to 10^12 seconds)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_hms(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n);
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() == 3 {
        let h: f64 = parts[0]
            .parse()
            .map_err(|_| format!("bad duration `{s}`"))?;
        let m: f64 = parts[1]
            .parse()
            .map_err(|_| format!("bad duration `{s}`"))?;
        let sec: f64 = parts[2]
            .parse()
            .map_err(|_| format!("bad duration `{s}`"))?;
        return Ok(h * 3600.0 + m * 60.0 + sec);
    }
    Err(format!(
        "bad duration `{s}` (use seconds, HH:MM:SS or a mapping like {{minutes: 5}})"
    ))
}

/// Parse a date or datetime (`2024-01-01`, `2024-01-01T06:00:00`, RFC 3339) in `tz`.
pub fn parse_datetime(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z") {
        return Ok(dt.with_timezone(&Utc));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| format!("bad date `{s}` (expected YYYY-MM-DD or an ISO 8601 datetime)"))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| format!("`{s}` does not exist in timezone {tz}"))
}

/// Parse a `weft dag test DAG_ID [DATE]` date (UTC unless it carries an offset).
pub fn parse_logical_date(s: &str) -> Result<DateTime<Utc>, String> {
    parse_datetime(s, Tz::UTC)
}

impl Schedule {
    /// Parse a `schedule` / `schedule_interval` value.
    pub fn parse(v: &Value) -> Result<Schedule, String> {
        match v {
            Value::Null => Ok(Schedule::Never),
            Value::String(s) => {
                let s = s.trim();
                if s.eq_ignore_ascii_case("none") || s == "null" || s.is_empty() {
                    // dag-factory reads `none` in any case as no schedule
                    return Ok(Schedule::Never);
                }
                match s {
                    "@once" => return Ok(Schedule::Once),
                    "@annually" => return Self::cron(s, "0 0 1 1 *"),
                    "@continuous" => {
                        return Ok(Schedule::NotRun {
                            what: "the `@continuous` schedule".into(),
                        });
                    }
                    _ => {}
                }
                if let Some((_, expr)) = PRESETS.iter().find(|(p, _)| *p == s) {
                    return Self::cron(s, expr);
                }
                if s.starts_with('@') {
                    return Err(format!(
                        "unknown schedule preset `{s}` (expected @once, @hourly, @daily, @weekly, @monthly, @quarterly or @yearly)"
                    ));
                }
                Self::cron(s, s)
            }
            Value::Object(m) if crate::schedule_forms::is_special(m) => {
                crate::schedule_forms::parse_object(m)
            }
            Value::Array(items) => crate::schedule_forms::parse_assets(items),
            Value::Object(_) | Value::Number(_) => parse_duration(v)
                .and_then(|d| {
                    if d.is_zero() {
                        Err("a timedelta schedule must be longer than zero".into())
                    } else {
                        Ok(d)
                    }
                })
                .map(Schedule::Delta),
            other => Err(format!(
                "schedule must be a cron string, a preset, a timedelta or null, got {other}"
            )),
        }
    }

    pub(crate) fn cron(source: &str, expr: &str) -> Result<Schedule, String> {
        let fields = expr.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "bad cron expression `{expr}`: expected 5 fields (minute hour day month weekday), got {fields}"
            ));
        }
        let cron = Cron::new(expr)
            .parse()
            .map_err(|e| format!("bad cron expression `{expr}`: {e}"))?;
        Ok(Schedule::Cron {
            source: source.to_string(),
            cron: Box::new(cron),
            timezone: None,
        })
    }

    /// Parse a DAG's `schedule` value as Airflow's `DAG` does with `settings`: a bare cron string,
    /// preset, timedelta or relativedelta becomes a data-interval timetable when
    /// `create_cron_data_intervals` is on, else a trigger timetable (`CronTriggerTimetable`,
    /// `DeltaTriggerTimetable`) with an empty interval. Timetable objects (`__type__` forms)
    /// keep their own kind either way.
    pub fn parse_with(v: &Value, settings: &SchedulerSettings) -> Result<Schedule, String> {
        let parsed = Schedule::parse(v)?;
        if settings.create_cron_data_intervals || !is_bare_schedule(v) {
            return Ok(parsed);
        }
        Ok(match parsed {
            Schedule::Cron {
                source,
                cron,
                timezone,
            } => Schedule::CronTrigger {
                source,
                cron,
                timezone,
                interval: Duration::ZERO,
            },
            Schedule::Delta(delta) => Schedule::DeltaTrigger {
                delta,
                interval: Duration::ZERO,
            },
            other => other,
        })
    }

    /// The next data interval an automated run should cover (Airflow's `next_dagrun_info`).
    pub fn next_dagrun_info(
        &self,
        tz: Tz,
        last: Option<&DataInterval>,
        r: &Restriction,
        now: DateTime<Utc>,
    ) -> Option<DagRunInfo> {
        match self {
            Schedule::Never => None,
            Schedule::Once => {
                if last.is_some() {
                    return None;
                }
                let start = r.earliest?;
                if r.latest.is_some_and(|l| start > l) {
                    return None;
                }
                Some(info(start, start, start))
            }
            Schedule::Delta(d) => {
                let delta = chrono::Duration::from_std(*d).ok()?;
                let mut earliest = r.earliest;
                if !r.catchup {
                    let skip = now.checked_sub_signed(delta)?;
                    earliest = Some(earliest.map_or(skip, |e| e.max(skip)));
                }
                let start = match last {
                    None => earliest?,
                    Some(l) => earliest.map_or(l.end, |e| e.max(l.end)),
                };
                if r.latest.is_some_and(|l| start > l) {
                    return None;
                }
                let end = start.checked_add_signed(delta)?;
                Some(info(start, end, end))
            }
            Schedule::NotRun { .. } => None,
            Schedule::Assets { timetable, .. } => timetable
                .as_ref()
                .and_then(|t| t.next_dagrun_info(tz, last, r, now)),
            Schedule::CronTrigger {
                cron,
                timezone,
                interval,
                ..
            } => {
                let c = CronCalc {
                    cron,
                    tz: timezone.unwrap_or(tz),
                };
                trigger_run(&c, *interval, last, r, now)
            }
            Schedule::DeltaTrigger { delta, interval } => {
                let d = DeltaCalc(chrono::Duration::from_std(*delta).ok()?);
                trigger_run(&d, *interval, last, r, now)
            }
            Schedule::Cron { cron, timezone, .. } => {
                let c = CronCalc {
                    cron,
                    tz: timezone.unwrap_or(tz),
                };
                let earliest = if !r.catchup {
                    let last_start = c.prev(now)?;
                    let new_start = c.prev(last_start)?;
                    let new_start = if c.next(now)? == now {
                        last_start
                    } else {
                        new_start
                    };
                    Some(match r.earliest {
                        None => new_start,
                        Some(e) => new_start.max(c.align_next(e)?),
                    })
                } else {
                    match r.earliest {
                        Some(e) => Some(c.align_next(e)?),
                        None => None,
                    }
                };
                let start = match last {
                    None => earliest?,
                    Some(l) => {
                        let aligned = c.align_prev(l.end)?;
                        earliest.map_or(aligned, |e| e.max(aligned))
                    }
                };
                if r.latest.is_some_and(|l| start > l) {
                    return None;
                }
                let end = c.next(start)?;
                Some(info(start, end, end))
            }
        }
    }

    /// The data interval of a manual run at `run_after` (Airflow's `infer_manual_data_interval`).
    pub fn infer_manual_data_interval(&self, tz: Tz, run_after: DateTime<Utc>) -> DataInterval {
        match self {
            Schedule::Never | Schedule::Once | Schedule::NotRun { .. } => DataInterval {
                start: run_after,
                end: run_after,
            },
            Schedule::Assets { timetable, .. } => match timetable {
                Some(t) => t.infer_manual_data_interval(tz, run_after),
                None => DataInterval {
                    start: run_after,
                    end: run_after,
                },
            },
            Schedule::CronTrigger { interval, .. } | Schedule::DeltaTrigger { interval, .. } => {
                DataInterval {
                    start: chrono::Duration::from_std(*interval)
                        .ok()
                        .and_then(|d| run_after.checked_sub_signed(d))
                        .unwrap_or(run_after),
                    end: run_after,
                }
            }
            Schedule::Delta(d) => DataInterval {
                start: chrono::Duration::from_std(*d)
                    .ok()
                    .and_then(|d| run_after.checked_sub_signed(d))
                    .unwrap_or(run_after),
                end: run_after,
            },
            Schedule::Cron { cron, timezone, .. } => {
                let c = CronCalc {
                    cron,
                    tz: timezone.unwrap_or(tz),
                };
                let end = c.align_prev(run_after).unwrap_or(run_after);
                let start = c.prev(end).unwrap_or(end);
                DataInterval { start, end }
            }
        }
    }

    /// Every automated run due by `now` after `last` (catchup/backfill listing), at most `limit`.
    pub fn runs_until(
        &self,
        tz: Tz,
        last: Option<DataInterval>,
        r: &Restriction,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DagRunInfo> {
        let mut out = Vec::new();
        let mut last = last;
        while out.len() < limit {
            let Some(next) = self.next_dagrun_info(tz, last.as_ref(), r, now) else {
                break;
            };
            if next.run_after > now || last.is_some_and(|l| l == next.data_interval) {
                break;
            }
            last = Some(next.data_interval);
            out.push(next);
            if matches!(self, Schedule::Once) {
                break;
            }
        }
        out
    }

    /// Runs whose logical date falls in `[from, to]` (for `weft dag backfill`), at most `limit`.
    pub fn runs_between(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DagRunInfo> {
        let r = Restriction {
            earliest: Some(from),
            latest: Some(to),
            catchup: true,
        };
        let far = to
            .checked_add_signed(chrono::Duration::days(3660))
            .unwrap_or(to);
        self.runs_until(tz, None, &r, far, limit)
            .into_iter()
            .filter(|i| i.logical_date <= to)
            .collect()
    }
}

/// Whether a `schedule` value is a bare cron string, preset, timedelta or relativedelta (what
/// Airflow's `create_cron_data_intervals` maps), not a timetable object or an asset schedule.
fn is_bare_schedule(v: &Value) -> bool {
    match v {
        Value::String(_) | Value::Number(_) => true,
        Value::Object(m) => match m.get("__type__").and_then(Value::as_str) {
            Some(t) => matches!(
                t.rsplit('.').next(),
                Some("timedelta" | "Duration" | "duration" | "relativedelta")
            ),
            None => !crate::schedule_forms::is_special(m),
        },
        _ => false,
    }
}

fn info(start: DateTime<Utc>, end: DateTime<Utc>, run_after: DateTime<Utc>) -> DagRunInfo {
    DagRunInfo {
        data_interval: DataInterval { start, end },
        logical_date: start,
        run_after,
    }
}

/// The tick arithmetic a trigger timetable needs (Airflow's `CronMixin` / `DeltaMixin`).
trait Ticks {
    /// First tick strictly after `t`.
    fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>>;
    /// `t` if it is a tick, else the next one.
    fn align_next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>>;
    /// `t` if it is a tick, else the previous one.
    fn align_prev(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>>;
    /// The first run of a timetable with no start date and no run yet (`_calc_first_run`).
    fn first_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>>;
}

/// Airflow's `_TriggerTimetable.next_dagrun_info`: the next tick after the last run (catchup)
/// or the latest of the newest past tick, the tick after the last run and the start date (no
/// catchup); the run's data interval is the `interval` before the tick.
fn trigger_run(
    c: &dyn Ticks,
    interval: Duration,
    last: Option<&DataInterval>,
    r: &Restriction,
    now: DateTime<Utc>,
) -> Option<DagRunInfo> {
    let interval = chrono::Duration::from_std(interval).ok()?;
    let next_start = if r.catchup {
        match (last, r.earliest) {
            (Some(l), _) => c.next(l.end)?,
            (None, None) => c.first_run(now)?,
            (None, Some(e)) => c.align_next(e)?,
        }
    } else {
        let mut candidates = vec![c.align_prev(now)?];
        match last {
            Some(l) => candidates.push(c.next(l.end)?),
            None if r.earliest.is_none() => candidates.push(c.first_run(now)?),
            None => {}
        }
        if let Some(e) = r.earliest {
            candidates.push(c.align_next(e)?);
        }
        candidates.into_iter().max()?
    };
    if r.latest.is_some_and(|l| next_start > l) {
        return None;
    }
    let start = next_start.checked_sub_signed(interval)?;
    Some(info(start, next_start, next_start))
}

/// A fixed period's ticks: every time is one (`DeltaMixin`).
struct DeltaCalc(chrono::Duration);

impl Ticks for DeltaCalc {
    fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        t.checked_add_signed(self.0)
    }
    fn align_next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(t)
    }
    fn align_prev(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(t)
    }
    fn first_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(now)
    }
}

impl Ticks for CronCalc<'_> {
    fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        CronCalc::next(self, t)
    }
    fn align_next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        CronCalc::align_next(self, t)
    }
    fn align_prev(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        CronCalc::align_prev(self, t)
    }
    /// The newest past tick when it is at most a tenth of the gap between ticks (and at least
    /// five minutes) ago, else the next tick (`CronTriggerTimetable`'s default
    /// `run_immediately=False`).
    fn first_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let past = CronCalc::align_prev(self, now)?;
        let next = CronCalc::align_next(self, now)?;
        let buffer = ((next - past) / 10).max(chrono::Duration::minutes(5));
        Some(if now - past <= buffer { past } else { next })
    }
}

struct CronCalc<'a> {
    cron: &'a Cron,
    tz: Tz,
}

impl CronCalc<'_> {
    /// First fire time strictly after `t`.
    fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Last fire time strictly before `t`.
    fn prev(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        for days in [1i64, 8, 32, 370, 366 * 8] {
            let from = t.checked_sub_signed(chrono::Duration::days(days))?;
            let first = self
                .cron
                .find_next_occurrence(&from.with_timezone(&self.tz), true)
                .ok()?
                .with_timezone(&Utc);
            if first >= t {
                continue;
            }
            let mut cur = first;
            loop {
                match self.next(cur) {
                    Some(n) if n < t => cur = n,
                    _ => return Some(cur),
                }
            }
        }
        None
    }

    /// `t` if it is a fire time, else the next one.
    fn align_next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// `t` if it is a fire time, else the previous one.
    fn align_prev(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.align_next(t) == Some(t) {
            Some(t)
        } else {
            self.prev(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_datetime(s, Tz::UTC).unwrap()
    }

    #[test]
    fn presets_and_errors() {
        assert!(matches!(
            Schedule::parse(&json!("@daily")),
            Ok(Schedule::Cron { .. })
        ));
        assert!(matches!(Schedule::parse(&json!(null)), Ok(Schedule::Never)));
        assert!(matches!(
            Schedule::parse(&json!("@once")),
            Ok(Schedule::Once)
        ));
        assert!(matches!(
            Schedule::parse(&json!({"minutes": 5})),
            Ok(Schedule::Delta(d)) if d == Duration::from_secs(300)
        ));
        assert!(Schedule::parse(&json!("61 * * * *")).is_err());
        assert!(Schedule::parse(&json!("* * *")).is_err());
        assert!(Schedule::parse(&json!("@sometimes")).is_err());
    }

    #[test]
    fn daily_catchup_intervals() {
        let s = Schedule::parse(&json!("@daily")).unwrap();
        let r = Restriction {
            earliest: Some(utc("2024-01-01")),
            latest: None,
            catchup: true,
        };
        let runs = s.runs_until(Tz::UTC, None, &r, utc("2024-01-04T12:00:00"), 100);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].logical_date, utc("2024-01-01"));
        assert_eq!(runs[0].data_interval.end, utc("2024-01-02"));
        assert_eq!(runs[0].run_after, utc("2024-01-02"));
        assert_eq!(runs[2].logical_date, utc("2024-01-03"));
    }

    #[test]
    fn no_catchup_runs_latest_complete_interval() {
        let s = Schedule::parse(&json!("@daily")).unwrap();
        let r = Restriction {
            earliest: Some(utc("2024-01-01")),
            latest: None,
            catchup: false,
        };
        let next = s
            .next_dagrun_info(Tz::UTC, None, &r, utc("2024-03-05T10:00:00"))
            .unwrap();
        assert_eq!(next.logical_date, utc("2024-03-04"));
        assert_eq!(next.run_after, utc("2024-03-05"));
    }

    #[test]
    fn cron_in_timezone() {
        let s = Schedule::parse(&json!("0 6 * * *")).unwrap();
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let r = Restriction {
            earliest: Some(parse_datetime("2024-07-01", tz).unwrap()),
            latest: None,
            catchup: true,
        };
        let first = s.next_dagrun_info(tz, None, &r, utc("2025-01-01")).unwrap();
        assert_eq!(first.logical_date, utc("2024-07-01T04:00:00"));
    }

    #[test]
    fn delta_once_null_and_manual() {
        let d = Schedule::parse(&json!({"hours": 6})).unwrap();
        let r = Restriction {
            earliest: Some(utc("2024-01-01")),
            latest: Some(utc("2024-01-01T12:00:00")),
            catchup: true,
        };
        let runs = d.runs_until(Tz::UTC, None, &r, utc("2024-02-01"), 100);
        assert_eq!(runs.len(), 3);
        let once = Schedule::Once;
        assert_eq!(
            once.runs_until(Tz::UTC, None, &r, utc("2024-02-01"), 100)
                .len(),
            1
        );
        assert!(Schedule::Never
            .next_dagrun_info(Tz::UTC, None, &r, utc("2024-02-01"))
            .is_none());
        let daily = Schedule::parse(&json!("@daily")).unwrap();
        let m = daily.infer_manual_data_interval(Tz::UTC, utc("2024-03-05"));
        assert_eq!(m.start, utc("2024-03-04"));
        assert_eq!(m.end, utc("2024-03-05"));
        let bf = daily.runs_between(Tz::UTC, utc("2024-01-01"), utc("2024-01-10"), 1000);
        assert_eq!(bf.len(), 10);
    }

    fn off() -> SchedulerSettings {
        SchedulerSettings {
            create_cron_data_intervals: false,
        }
    }

    fn catchup_from(day: &str) -> Restriction {
        Restriction {
            earliest: Some(utc(day)),
            latest: None,
            catchup: true,
        }
    }

    #[test]
    fn a_cron_string_follows_create_cron_data_intervals() {
        let on = Schedule::parse_with(&json!("30 2 * * *"), &SchedulerSettings::default()).unwrap();
        let trig = Schedule::parse_with(&json!("30 2 * * *"), &off()).unwrap();
        assert!(matches!(on, Schedule::Cron { .. }), "{on:?}");
        assert!(
            matches!(trig, Schedule::CronTrigger { interval, timezone: None, .. } if interval.is_zero()),
            "{trig:?}"
        );
        // a manual run (`weft dag test DAG 2024-03-05`): Airflow 2 covers the previous cron
        // period, Airflow 3 the empty interval at the logical date
        let m = on.infer_manual_data_interval(Tz::UTC, utc("2024-03-05"));
        assert_eq!(
            (m.start, m.end),
            (utc("2024-03-03T02:30:00"), utc("2024-03-04T02:30:00"))
        );
        let m = trig.infer_manual_data_interval(Tz::UTC, utc("2024-03-05"));
        assert_eq!((m.start, m.end), (utc("2024-03-05"), utc("2024-03-05")));
        // catchup lists: a run at each tick, its logical date the tick, vs one per period
        let now = utc("2024-01-04T12:00:00");
        let r = catchup_from("2024-01-01");
        let dates = |s: &Schedule| -> Vec<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
            s.runs_until(Tz::UTC, None, &r, now, 100)
                .iter()
                .map(|i| (i.logical_date, i.data_interval.end, i.run_after))
                .collect()
        };
        let t = |d| utc(&format!("2024-01-0{d}T02:30:00"));
        assert_eq!(
            dates(&trig),
            vec![
                (t(1), t(1), t(1)),
                (t(2), t(2), t(2)),
                (t(3), t(3), t(3)),
                (t(4), t(4), t(4))
            ]
        );
        assert_eq!(
            dates(&on),
            vec![(t(1), t(2), t(2)), (t(2), t(3), t(3)), (t(3), t(4), t(4))]
        );
        // the next run without catchup: the newest tick at once, vs the newest complete period
        let r = Restriction {
            catchup: false,
            ..catchup_from("2024-01-01")
        };
        let now = utc("2024-03-05T10:00:00");
        let n = trig.next_dagrun_info(Tz::UTC, None, &r, now).unwrap();
        assert_eq!(
            (n.logical_date, n.run_after),
            (utc("2024-03-05T02:30:00"), utc("2024-03-05T02:30:00"))
        );
        let after = trig
            .next_dagrun_info(Tz::UTC, Some(&n.data_interval), &r, now)
            .unwrap();
        assert_eq!(after.run_after, utc("2024-03-06T02:30:00"));
        let n = on.next_dagrun_info(Tz::UTC, None, &r, now).unwrap();
        assert_eq!(
            (n.logical_date, n.run_after),
            (utc("2024-03-04T02:30:00"), utc("2024-03-05T02:30:00"))
        );
        // backfill: the ticks in range are the logical dates either way
        let bf = trig.runs_between(Tz::UTC, utc("2024-01-01"), utc("2024-01-03"), 100);
        assert_eq!(
            bf.iter().map(|i| i.logical_date).collect::<Vec<_>>(),
            vec![t(1), t(2)]
        );
    }

    #[test]
    fn presets_and_timedeltas_follow_the_switch_as_in_airflow_3() {
        let daily = Schedule::parse_with(&json!("@daily"), &off()).unwrap();
        assert!(matches!(daily, Schedule::CronTrigger { ref source, .. } if source == "@daily"));
        for v in [
            json!({"hours": 6}),
            json!(21600),
            json!({"__type__": "datetime.timedelta", "hours": 6}),
            json!({"__type__": "dateutil.relativedelta.relativedelta", "hours": 6}),
        ] {
            let s = Schedule::parse_with(&v, &off()).unwrap();
            assert!(
                matches!(s, Schedule::DeltaTrigger { delta, interval } if delta.as_secs() == 21600 && interval.is_zero()),
                "{v}: {s:?}"
            );
            assert!(
                matches!(
                    Schedule::parse_with(&v, &SchedulerSettings::default()).unwrap(),
                    Schedule::Delta(_)
                ),
                "{v}"
            );
        }
        let d = Schedule::parse_with(&json!({"hours": 6}), &off()).unwrap();
        let r = Restriction {
            latest: Some(utc("2024-01-01T12:00:00")),
            ..catchup_from("2024-01-01")
        };
        let runs = d.runs_until(Tz::UTC, None, &r, utc("2024-02-01"), 100);
        let got: Vec<_> = runs
            .iter()
            .map(|i| (i.logical_date, i.data_interval.end, i.run_after))
            .collect();
        let h = |x: u32| utc(&format!("2024-01-01T{x:02}:00:00"));
        assert_eq!(
            got,
            vec![
                (h(0), h(0), h(0)),
                (h(6), h(6), h(6)),
                (h(12), h(12), h(12))
            ]
        );
        let m = d.infer_manual_data_interval(Tz::UTC, utc("2024-03-05"));
        assert_eq!((m.start, m.end), (utc("2024-03-05"), utc("2024-03-05")));
        // no catchup, no run yet: at once
        let r = Restriction {
            catchup: false,
            ..catchup_from("2024-01-01")
        };
        let n = d
            .next_dagrun_info(Tz::UTC, None, &r, utc("2024-03-05T10:00:00"))
            .unwrap();
        assert_eq!(n.run_after, utc("2024-03-05T10:00:00"));
        // what is not a cron string or a timedelta is untouched
        assert!(matches!(
            Schedule::parse_with(&json!("@once"), &off()).unwrap(),
            Schedule::Once
        ));
        assert!(matches!(
            Schedule::parse_with(&json!(null), &off()).unwrap(),
            Schedule::Never
        ));
        assert!(matches!(
            Schedule::parse_with(&json!(["s3://a"]), &off()).unwrap(),
            Schedule::Assets { .. }
        ));
        assert!(Schedule::parse_with(&json!("61 * * * *"), &off()).is_err());
    }

    #[test]
    fn timetable_objects_keep_their_kind_whatever_the_setting() {
        for settings in [SchedulerSettings::default(), off()] {
            let k = |v: Value| Schedule::parse_with(&v, &settings).unwrap();
            let s = k(
                json!({"__type__": "airflow.timetables.interval.CronDataIntervalTimetable", "cron": "@daily", "timezone": "Europe/Paris"}),
            );
            assert!(
                matches!(
                    s,
                    Schedule::Cron {
                        timezone: Some(_),
                        ..
                    }
                ),
                "{s:?}"
            );
            // its intervals are computed in its own timezone
            let m = s.infer_manual_data_interval(Tz::UTC, utc("2024-07-05T12:00:00"));
            assert_eq!(
                (m.start, m.end),
                (utc("2024-07-03T22:00:00"), utc("2024-07-04T22:00:00"))
            );
            let s = k(
                json!({"__type__": "airflow.sdk.CronDataIntervalTimetable", "__args__": ["0 1 * * *"]}),
            );
            assert!(matches!(s, Schedule::Cron { timezone: None, .. }), "{s:?}");
            let s = k(
                json!({"__type__": "airflow.timetables.trigger.CronTriggerTimetable", "cron": "0 1 * * *", "timezone": "UTC"}),
            );
            assert!(matches!(s, Schedule::CronTrigger { .. }), "{s:?}");
            let s = k(
                json!({"__type__": "airflow.timetables.interval.DeltaDataIntervalTimetable", "delta": {"seconds": 60}}),
            );
            assert!(matches!(s, Schedule::Delta(_)), "{s:?}");
            let s = k(
                json!({"__type__": "airflow.timetables.trigger.DeltaTriggerTimetable", "__args__": [{"seconds": 60}], "interval": {"seconds": 30}}),
            );
            assert!(
                matches!(s, Schedule::DeltaTrigger { delta, interval } if delta.as_secs() == 60 && interval.as_secs() == 30),
                "{s:?}"
            );
            let m = s.infer_manual_data_interval(Tz::UTC, utc("2024-03-05"));
            assert_eq!(
                (m.start, m.end),
                (utc("2024-03-04T23:59:30"), utc("2024-03-05"))
            );
        }
    }

    #[test]
    fn a_trigger_timetable_without_start_date_runs_from_the_next_tick() {
        let s = Schedule::parse_with(&json!("0 * * * *"), &off()).unwrap();
        let r = Restriction {
            earliest: None,
            latest: None,
            catchup: false,
        };
        // 3 minutes past the hour is within a tenth of the gap: that tick runs; 30 minutes is not
        let n = s
            .next_dagrun_info(Tz::UTC, None, &r, utc("2024-03-05T10:03:00"))
            .unwrap();
        assert_eq!(n.run_after, utc("2024-03-05T10:00:00"));
        let n = s
            .next_dagrun_info(Tz::UTC, None, &r, utc("2024-03-05T10:30:00"))
            .unwrap();
        assert_eq!(n.run_after, utc("2024-03-05T11:00:00"));
    }
}
