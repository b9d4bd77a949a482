//! A limiter's view of time: the clock's reading, never older than what the limiter has seen.
//!
//! Clock readings may come back older than one already used: TSC values differ a little between
//! cores, a cached clock lags, a test steps a manual clock back. A bucket alone stays safe on
//! such a reading (it sees fewer tokens, never more), but it would refuse a client whose tokens
//! are there. So each limiter keeps a watermark, the latest reading it has seen to within
//! [`STEP`], and decides on whichever of the two is later.
//!
//! The watermark is written at most once per step per thread, so it costs a load of a cache line
//! that is almost never invalidated. Readings within one step of each other still reach the
//! buckets unordered; the bucket arithmetic handles those conservatively.

use crate::clock::Clock;
use crate::sync::{AtomicU64, Ordering};

/// How far a reading must pass the watermark before it is written back: 1 ms.
pub(crate) const STEP: u64 = 1_000_000;

pub(crate) struct Timeline<C> {
    clock: C,
    /// The latest reading written back, in nanoseconds of `clock`.
    latest: AtomicU64,
}

impl<C: Clock> Timeline<C> {
    pub(crate) fn new(clock: C) -> Self {
        Self {
            clock,
            latest: AtomicU64::new(0),
        }
    }

    pub(crate) fn clock(&self) -> &C {
        &self.clock
    }

    /// Nanoseconds since the clock's start, at least the watermark.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        let now = self.clock.now_nanos();

        // Relaxed: the watermark is a lower bound on time and publishes no other memory. A stale
        // value is only an older bound, and the buckets are safe on older times.
        let latest = self.latest.load(Ordering::Relaxed);
        if now <= latest {
            return latest;
        }

        // Write back rarely; `fetch_max` so that racing writers never lower it. Relaxed, as
        // for the load: only the value matters, and RMWs on it are totally ordered.
        if now - latest > STEP {
            self.latest.fetch_max(now, Ordering::Relaxed);
        }
        now
    }
}

#[cfg(all(test, not(hotlimit_loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;
    use std::time::Duration;

    #[test]
    fn a_reading_behind_the_watermark_is_lifted_to_it() {
        let clock = ManualClock::new();
        let timeline = Timeline::new(clock.clone());

        clock.set(Duration::from_secs(10));
        assert_eq!(timeline.now(), 10_000_000_000);
        clock.set(Duration::from_millis(8_400));
        assert_eq!(timeline.now(), 10_000_000_000);
        clock.set(Duration::from_secs(11));
        assert_eq!(timeline.now(), 11_000_000_000);
    }

    #[test]
    fn small_steps_are_passed_through_unwritten() {
        let clock = ManualClock::new();
        let timeline = Timeline::new(clock.clone());

        clock.set(Duration::from_micros(500));
        assert_eq!(timeline.now(), 500_000);
        clock.set(Duration::from_micros(200));
        assert_eq!(timeline.now(), 200_000);
    }
}
