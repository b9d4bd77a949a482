//! The string form of a quota, for configuration files and command lines.
//!
//! ```text
//! quota  = count "/" period [ ";" "burst" "=" count ]
//! period = [ count ] unit
//! unit   = "ns" | "us" | "ms" | "s" | "sec" | "second" | "seconds"
//!        | "m" | "min" | "minute" | "minutes" | "h" | "hr" | "hour" | "hours"
//!        | "d" | "day" | "days"
//! count  = a positive decimal integer
//! ```
//!
//! Spaces may stand around every part. `"100/min"`, `"10/s"`, `"5000/h"`, `"3/10s"` and
//! `"100/min; burst=20"` are all quotas; `"m"` is a minute, `"ms"` a millisecond.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::{Quota, QuotaError};

impl FromStr for Quota {
    type Err = QuotaError;

    /// Reads a quota such as `"100/min"`; see the [grammar](crate::Quota#string-form).
    fn from_str(input: &str) -> Result<Quota, QuotaError> {
        let syntax = |reason| QuotaError::Syntax {
            input: input.to_owned(),
            reason,
        };

        // Split off the optional burst clause, then the count from the period.
        let (rate, burst) = match input.split_once(';') {
            Some((rate, clause)) => (rate, Some(parse_burst(clause).map_err(syntax)?)),
            None => (input, None),
        };
        let (count, period) = rate
            .split_once('/')
            .ok_or_else(|| syntax("no '/' between count and period"))?;
        let count = parse_count(count.trim()).map_err(syntax)?;

        // The period is an optional number followed by a unit.
        let period = period.trim();
        let digits = period.bytes().take_while(u8::is_ascii_digit).count();
        let (span, unit) = period.split_at(digits);
        let span = if span.is_empty() {
            1
        } else {
            parse_count(span).map_err(syntax)?
        };
        let unit_ns = unit_nanos(unit.trim()).ok_or_else(|| QuotaError::UnknownUnit {
            input: input.to_owned(),
            unit: unit.trim().to_owned(),
        })?;
        let period = nanos_to_duration(span as u128 * unit_ns as u128);

        // Build and validate the quota itself.
        let quota = Quota::new(count, period)?;
        match burst {
            Some(burst) => quota.with_burst(burst),
            None => Ok(quota),
        }
    }
}

fn nanos_to_duration(ns: u128) -> Duration {
    let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (ns % 1_000_000_000) as u32)
}

fn parse_burst(clause: &str) -> Result<u64, &'static str> {
    let (name, value) = clause
        .split_once('=')
        .ok_or("the burst clause needs the form burst=N")?;
    if name.trim() != "burst" {
        return Err("only a burst clause may follow ';'");
    }
    parse_count(value.trim())
}

fn parse_count(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() {
        return Err("a number is missing");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a count must be a whole decimal number");
    }
    text.parse().map_err(|_| "a number is too large")
}

fn unit_nanos(unit: &str) -> Option<u64> {
    const SECOND: u64 = 1_000_000_000;
    let ns = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * SECOND,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600 * SECOND,
        "d" | "day" | "days" => 86_400 * SECOND,
        _ => return None,
    };
    Some(ns)
}

/// Writes `quota` with the largest unit that divides its period, so that parsing gives it back.
pub(crate) fn write(quota: &Quota, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    const UNITS: [(u64, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    let ns = quota.period().as_nanos() as u64;
    let (size, name) = UNITS
        .into_iter()
        .find(|(size, _)| ns.is_multiple_of(*size))
        .unwrap_or((1, "ns"));

    write!(f, "{}/", quota.count())?;
    if ns != size {
        write!(f, "{}", ns / size)?;
    }
    f.write_str(name)?;
    if quota.burst() != quota.count() {
        write!(f, "; burst={}", quota.burst())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<Quota, QuotaError> {
        s.parse()
    }

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(q("100/min"), Quota::per_minute(100));
        assert_eq!(q("10/s"), Quota::per_second(10));
        assert_eq!(q("5000/h"), Quota::per_hour(5000));
        assert_eq!(q("3/10s"), Quota::new(3, Duration::from_secs(10)));
        assert_eq!(q(" 7 / 2 ms "), Quota::new(7, Duration::from_millis(2)));
        assert_eq!(
            q("100/min; burst=20"),
            Quota::per_minute(100).unwrap().with_burst(20)
        );
        assert_eq!(q("1/d"), Quota::new(1, Duration::from_secs(86_400)));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "100/min",
            "10/s",
            "5000/h",
            "3/10s",
            "7/2ms",
            "100/min; burst=20",
            "1/d",
        ] {
            let quota = q(s).unwrap();
            assert_eq!(q(&quota.to_string()), Ok(quota), "{s} -> {quota}");
        }
        assert_eq!(q("3/10s").unwrap().to_string(), "3/10s");
    }

    #[test]
    fn malformed_strings_name_the_problem() {
        for (s, reason) in [
            ("", "no '/'"),
            ("100", "no '/'"),
            ("/s", "missing"),
            ("-1/s", "whole decimal"),
            ("1.5/s", "whole decimal"),
            ("99999999999999999999/s", "too large"),
            ("1/s; burts=3", "only a burst"),
            ("1/s; burst", "burst=N"),
        ] {
            let err = q(s).unwrap_err();
            assert!(matches!(err, QuotaError::Syntax { .. }), "{s}: {err:?}");
            assert!(err.to_string().contains(reason), "{s}: {err}");
        }
        assert!(matches!(
            q("1/fortnight"),
            Err(QuotaError::UnknownUnit { .. })
        ));
        assert!(matches!(q("1/"), Err(QuotaError::UnknownUnit { .. })));
        assert_eq!(q("0/s"), Err(QuotaError::ZeroCount));
        assert_eq!(q("1/0s"), Err(QuotaError::ZeroPeriod));
        assert_eq!(q("1/s; burst=0"), Err(QuotaError::ZeroBurst));
        assert!(matches!(
            q("1/99999999999d"),
            Err(QuotaError::PeriodTooLong { .. })
        ));
        assert!(matches!(q("5/1ns"), Err(QuotaError::RateTooHigh { .. })));
    }
}
