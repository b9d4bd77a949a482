//! Where the limiters read the time.
//!
//! A [`Clock`] answers nanoseconds since its own start. Three come with the crate:
//! [`QuantaClock`] (the default: the CPU's time-stamp counter), [`RecentClock`] (quanta's
//! cached time, for users who run its upkeep thread) and [`ManualClock`] (tests).
//!
//! The limiters never trust a clock to be monotonic; see [`Timeline`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of time for a limiter.
///
/// Readings are nanoseconds since an origin of the clock's choosing. They should not go
/// backwards, but the limiters stay correct when they do: a stale reading never adds tokens.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the clock's origin.
    fn now_nanos(&self) -> u64;
}

/// The default clock: quanta's raw counter (the TSC on x86), scaled to nanoseconds since the
/// clock was made.
///
/// One reading costs about a dozen nanoseconds. quanta calibrates the counter against the
/// system's monotonic clock; the two may differ by tens of parts per million, so a quota of
/// 100 per minute may let through 100.004 per minute of wall time.
#[derive(Clone, Debug)]
pub struct QuantaClock {
    clock: quanta::Clock,
    origin: u64,
}

impl QuantaClock {
    /// A clock whose time starts now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Self { clock, origin }
    }
}

impl Default for QuantaClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for QuantaClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// quanta's cached "recent" time: about 2 ns a reading, as fresh as its upkeep interval.
///
/// The cached time only moves while a [`quanta::Upkeep`] thread runs, and one such thread
/// serves the whole process. This crate never starts it: start it yourself, once, and keep its
/// handle alive as long as the limiters. Until the cache holds a time later than this clock's
/// start, the clock falls back to a fresh reading, so limiters never see time stand still.
///
/// Admissions are decided on a time up to one upkeep interval old: a client may be refused up
/// to that long after a token is due. Never earlier.
///
/// # Examples
///
/// ```
/// use hotlimit::{Quota, RateLimiter, RecentClock};
/// use std::time::Duration;
///
/// let _upkeep = quanta::Upkeep::new(Duration::from_millis(1)).start();
/// let limiter = RateLimiter::with_clock(Quota::per_second(10)?, RecentClock::new());
/// assert!(limiter.check().is_ok());
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RecentClock {
    clock: quanta::Clock,
    origin: quanta::Instant,
}

impl RecentClock {
    /// A clock whose time starts now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.now();
        Self { clock, origin }
    }
}

impl Default for RecentClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RecentClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        let mut now = self.clock.recent();

        // No upkeep thread yet (the cache reads zero) or not since this clock was made.
        if now <= self.origin {
            now = self.clock.now();
        }

        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to, for tests.
///
/// Clones share one time, so a test keeps a handle while the limiter reads another.
///
/// # Examples
///
/// ```
/// use hotlimit::{ManualClock, Quota, RateLimiter};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::with_clock(Quota::per_second(1)?, clock.clone());
///
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_err());
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check().is_ok());
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating at `u64::MAX` nanoseconds).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the value is the clock's whole state and publishes nothing else.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the time since the clock's start; an earlier time steps the clock backwards.
    pub fn set(&self, since_start: Duration) {
        let nanos = u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: as in `advance`, the value is all there is to see.
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    /// The time since the clock's start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Relaxed: a reader needs only the value; the limiters tolerate a stale one.
        self.nanos.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}
