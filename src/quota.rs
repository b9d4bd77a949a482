//! Quotas: how many tokens per period, and how many at once.

use core::fmt;
use core::time::Duration;

use crate::gcra::{MAX_NOW, MAX_TAU};

/// The longest period a quota may have: 200 years.
pub const MAX_PERIOD: Duration = Duration::from_secs(200 * 365 * 24 * 60 * 60 + 50 * 24 * 60 * 60);

/// The largest burst (capacity) a quota may have: `2^62 - 1` tokens.
pub const MAX_BURST: u64 = MAX_TAU;

/// A rate limit: `count` tokens every `period`, at most `burst` of them at once.
///
/// A bucket starts full, so a fresh key may spend its whole burst at once; after that, tokens
/// come back one every `period / count`. The burst defaults to the count.
///
/// # Examples
///
/// ```
/// use hotlimit::Quota;
/// use std::time::Duration;
///
/// let a = Quota::per_minute(100)?;
/// let b: Quota = "100/min".parse()?;
/// assert_eq!(a, b);
///
/// // 10 per second, but never more than 3 at once.
/// let q = Quota::per_second(10)?.with_burst(3)?;
/// assert_eq!(q.burst(), 3);
/// assert_eq!(q.replenish_interval(), Duration::from_millis(100));
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Tokens per period (`n`).
    count: u64,
    /// The period in nanoseconds (`P`).
    period_ns: u64,
    /// Capacity in tokens (`C`).
    burst: u64,
    /// Time units per token (`M`); one unit is `P / (n * M)` nanoseconds, in `[1, 2)` for usual
    /// quotas.
    unit: u64,
    /// `n * M * 2^64 / P`, rounded down: nanoseconds times this, shifted right by 64, are units.
    /// Zero stands for exactly `2^64`, one unit per nanosecond, where no multiply is needed.
    scale: u64,
}

/// Why a quota was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The count of tokens per period is zero.
    #[error("the quota's count is zero: at least one token per period is needed")]
    ZeroCount,
    /// The period is zero.
    #[error("the quota's period is zero")]
    ZeroPeriod,
    /// The period is longer than [`MAX_PERIOD`].
    #[error("the quota's period of {period:?} is longer than the 200 years allowed")]
    PeriodTooLong {
        /// The period asked for.
        period: Duration,
    },
    /// More than one token per nanosecond.
    #[error("{count} tokens per {period:?} is finer than one token per nanosecond")]
    RateTooHigh {
        /// The count asked for.
        count: u64,
        /// The period asked for.
        period: Duration,
    },
    /// The burst is zero.
    #[error("the quota's burst is zero: no request could ever pass")]
    ZeroBurst,
    /// The burst does not fit the bucket's word.
    #[error("a burst of {burst} is more than the {MAX_BURST} a bucket can hold")]
    BurstTooLarge {
        /// The burst asked for.
        burst: u64,
    },
    /// A quota string could not be read.
    #[error("cannot read quota {input:?}: {reason}")]
    Syntax {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A quota string names a time unit this crate does not know.
    #[error(
        "cannot read quota {input:?}: unknown time unit {unit:?} (use ns, us, ms, s, min, h or d)"
    )]
    UnknownUnit {
        /// The string given.
        input: String,
        /// The unit found.
        unit: String,
    },
}

impl Quota {
    /// `count` tokens every `period`, with a burst of `count`.
    ///
    /// # Errors
    ///
    /// A zero count or period, a period over [`MAX_PERIOD`], more than one token per nanosecond,
    /// or a count over [`MAX_BURST`] (it is also the default burst).
    pub fn new(count: u64, period: Duration) -> Result<Quota, QuotaError> {
        if count == 0 {
            return Err(QuotaError::ZeroCount);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        if period > MAX_PERIOD {
            return Err(QuotaError::PeriodTooLong { period });
        }

        // MAX_PERIOD is below 2^63 ns, so the period fits a u64 of nanoseconds.
        let period_ns = period.as_nanos() as u64;
        if count > period_ns {
            return Err(QuotaError::RateTooHigh { count, period });
        }

        Quota::build(count, period_ns, count)
    }

    /// `count` tokens per second.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_second(count: u64) -> Result<Quota, QuotaError> {
        Quota::new(count, Duration::from_secs(1))
    }

    /// `count` tokens per minute.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_minute(count: u64) -> Result<Quota, QuotaError> {
        Quota::new(count, Duration::from_secs(60))
    }

    /// `count` tokens per hour.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_hour(count: u64) -> Result<Quota, QuotaError> {
        Quota::new(count, Duration::from_secs(3600))
    }

    /// The same rate with a capacity of `burst` tokens.
    ///
    /// # Errors
    ///
    /// A zero burst, or one over [`MAX_BURST`].
    pub fn with_burst(self, burst: u64) -> Result<Quota, QuotaError> {
        Quota::build(self.count, self.period_ns, burst)
    }

    /// Derives the time unit and the clock multiplier (DESIGN: one unit per `P / (n * M)` ns).
    fn build(count: u64, period_ns: u64, burst: u64) -> Result<Quota, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        if burst > MAX_BURST {
            return Err(QuotaError::BurstTooLarge { burst });
        }

        // As many units per token as the nanoseconds per token, but never so many that the
        // whole burst overflows 62 bits.
        let unit = (period_ns / count).min(MAX_TAU / burst).max(1);

        // `count * unit <= period_ns`, so the scale is at most 2^64, and exactly 2^64 only when a
        // unit is one nanosecond; otherwise it is at least 1, as `period_ns < 2^64`.
        let scale = ((count as u128 * unit as u128) << 64) / period_ns as u128;
        let scale = u64::try_from(scale).unwrap_or(0);

        Ok(Quota {
            count,
            period_ns,
            burst,
            unit,
            scale,
        })
    }

    /// Tokens per period.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The period over which [`count`](Quota::count) tokens come back.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// The capacity: how many tokens a full bucket holds.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The time one token takes to come back (rounded down to whole nanoseconds).
    pub fn replenish_interval(&self) -> Duration {
        Duration::from_nanos(self.period_ns / self.count)
    }

    /// Units per token (`M`).
    #[inline]
    pub(crate) fn unit(&self) -> u64 {
        self.unit
    }

    /// The bucket's tolerance, `burst * unit`.
    #[inline]
    pub(crate) fn tau(&self) -> u64 {
        self.burst * self.unit
    }

    /// Nanoseconds since the clock's start to time units, rounded down (never early).
    #[inline]
    pub(crate) fn units_at(&self, ns: u64) -> u64 {
        let units = match self.scale {
            0 => ns,
            scale => ((ns as u128 * scale as u128) >> 64) as u64,
        };
        units.min(MAX_NOW)
    }

    /// The first nanosecond at which [`units_at`](Quota::units_at) reaches `units`.
    pub(crate) fn nanos_at(&self, units: u64) -> u128 {
        match self.scale {
            0 => units as u128,
            scale => ((units as u128) << 64).div_ceil(scale as u128),
        }
    }

    /// The time from `now_ns` until the clock reaches `units`, zero if it already has.
    pub(crate) fn wait_until(&self, now_ns: u64, units: u64) -> Duration {
        let wait = self.nanos_at(units).saturating_sub(now_ns as u128);
        Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("count", &self.count)
            .field("period", &self.period())
            .field("burst", &self.burst)
            .finish()
    }
}

impl fmt::Display for Quota {
    /// Writes the quota in the string form that [`FromStr`](core::str::FromStr) reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::quota_str::write(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quotas_convert_time_exactly() {
        let q = Quota::per_minute(100).unwrap();
        assert_eq!(q.unit(), 600_000_000);
        assert_eq!(q.units_at(1_234_567), 1_234_567);
        assert_eq!(q.nanos_at(1_234_567), 1_234_567);
    }

    #[test]
    fn inexact_quotas_round_time_down_and_waits_up() {
        let q = Quota::per_second(3).unwrap();
        for ns in [
            1u64,
            333_333_333,
            333_333_334,
            1_000_000_000,
            3_600_000_000_000,
        ] {
            let u = q.units_at(ns);
            let exact = ns as u128 * 3 * q.unit() as u128 / 1_000_000_000;
            assert!(u as u128 <= exact && u as u128 + 1 >= exact, "ns {ns}");
            assert!(q.nanos_at(u) <= ns as u128);
            assert!(q.units_at(q.nanos_at(u + 1) as u64) > u);
        }
    }

    #[test]
    fn huge_burst_shrinks_the_unit() {
        let q = Quota::per_second(1).unwrap().with_burst(MAX_BURST).unwrap();
        assert_eq!(q.unit(), 1);
        assert_eq!(q.tau(), MAX_BURST);
    }

    #[test]
    fn rejects_bad_quotas() {
        assert_eq!(Quota::per_second(0), Err(QuotaError::ZeroCount));
        assert_eq!(Quota::new(1, Duration::ZERO), Err(QuotaError::ZeroPeriod));
        assert!(matches!(
            Quota::new(1, Duration::from_secs(u64::MAX)),
            Err(QuotaError::PeriodTooLong { .. })
        ));
        assert!(matches!(
            Quota::new(2, Duration::from_nanos(1)),
            Err(QuotaError::RateTooHigh { .. })
        ));
        assert_eq!(
            Quota::per_second(1).unwrap().with_burst(0),
            Err(QuotaError::ZeroBurst)
        );
        assert!(matches!(
            Quota::per_second(1).unwrap().with_burst(u64::MAX),
            Err(QuotaError::BurstTooLarge { .. })
        ));
    }
}
