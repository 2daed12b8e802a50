//! dag-factory's relative dates: `start_date: 2 days` is the start of today in the DAG's
//! timezone minus two days.
//!
//! dag-factory reads what follows a date it cannot parse with the regular expression
//! `(N hour)?(N minute)?(N second)?(N day)?` matched at the start of the text (so `2 days`,
//! `3 hours ago` and `1 day` all work, and `3 hours 4 minutes` is three hours, as there). The
//! result is bounded: more than [`MAX_DAYS`] days back is an error, not an overflow.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;

/// Furthest back a relative date may reach (about 27 000 years, Python's `timedelta` allows
/// 999 999 999 days but no date that far back exists).
pub const MAX_DAYS: i64 = 10_000_000;

/// The relative date `text` means at `now`, or `None` if `text` is not one.
pub fn parse_relative(
    text: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<Result<DateTime<Utc>, String>> {
    let mut rest = text;
    let mut total = Duration::zero();
    let mut matched = false;
    for (unit, secs) in [
        ("hour", 3600i64),
        ("minute", 60),
        ("second", 1),
        ("day", 86_400),
    ] {
        let Some((n, after)) = take_unit(rest, unit) else {
            continue;
        };
        matched = true;
        rest = after;
        let Some(d) = n
            .parse::<i64>()
            .ok()
            .filter(|n| *n <= MAX_DAYS * 86_400 / secs)
            .map(|n| Duration::seconds(n * secs))
        else {
            return Some(Err(format!(
                "relative date `{text}` reaches too far back (at most {MAX_DAYS} days)"
            )));
        };
        total += d;
    }
    if !matched {
        return None;
    }
    if total > Duration::days(MAX_DAYS) {
        return Some(Err(format!(
            "relative date `{text}` reaches too far back (at most {MAX_DAYS} days)"
        )));
    }
    let today = now.with_timezone(&tz).date_naive().and_hms_opt(0, 0, 0)?;
    let start = tz
        .from_local_datetime(&today)
        .earliest()?
        .with_timezone(&Utc);
    Some(
        start
            .checked_sub_signed(total)
            .ok_or_else(|| format!("relative date `{text}` is out of range")),
    )
}

/// `N<blanks>unit` at the start of `s`: the digits and what follows the unit word.
fn take_unit<'a>(s: &'a str, unit: &str) -> Option<(&'a str, &'a str)> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let after_digits = &s[digits..];
    let word = after_digits.trim_start_matches([' ', '\t']);
    if word.len() == after_digits.len() {
        return None;
    }
    let prefix = word.get(..unit.len())?;
    prefix
        .eq_ignore_ascii_case(unit)
        .then(|| (&s[..digits], &word[unit.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn relative_dates() {
        let now = at("2024-03-05T15:30:00Z");
        let p = |t: &str| parse_relative(t, Tz::UTC, now);
        assert_eq!(p("2 days").unwrap().unwrap(), at("2024-03-03T00:00:00Z"));
        assert_eq!(p("1 day ago").unwrap().unwrap(), at("2024-03-04T00:00:00Z"));
        assert_eq!(p("3 hours").unwrap().unwrap(), at("2024-03-04T21:00:00Z"));
        assert_eq!(
            p("3 hours 4 minutes").unwrap().unwrap(),
            at("2024-03-04T21:00:00Z")
        );
        assert!(p("2024-01-01x").is_none());
        assert!(p("days").is_none());
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            parse_relative("1 day", berlin, now).unwrap().unwrap(),
            at("2024-03-03T23:00:00Z")
        );
    }

    #[test]
    fn huge_relative_dates_are_errors() {
        let now = at("2024-03-05T15:30:00Z");
        for t in [
            "99999999999999999999999 days",
            "999999999 days",
            "9223372036854775807 seconds",
        ] {
            let e = parse_relative(t, Tz::UTC, now).unwrap().unwrap_err();
            assert!(e.contains("too far back"), "{t}: {e}");
        }
    }
}
