//! One bucket for everything: [`RateLimiter`].

use core::fmt;

use crate::bucket::{Bucket, Verdict};
use crate::clock::{Clock, QuantaClock};
use crate::outcome::{CheckError, Denied, InsufficientCapacity, Snapshot};
use crate::timeline::Timeline;
use crate::Quota;

/// A single token bucket, shared by every caller.
///
/// Each check reads the clock once and does one compare-and-swap on one atomic word: no lock, no
/// allocation. Share it behind an [`Arc`](std::sync::Arc) or a `&'static`.
///
/// # Examples
///
/// ```
/// use hotlimit::{Quota, RateLimiter};
///
/// let limiter = RateLimiter::new(Quota::per_second(2)?);
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_ok());
///
/// let denied = limiter.check().unwrap_err();
/// assert!(denied.retry_after().as_millis() > 0);
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
pub struct RateLimiter<C = QuantaClock> {
    bucket: Bucket,
    quota: Quota,
    time: Timeline<C>,
}

impl RateLimiter {
    /// A full bucket on the default [`QuantaClock`].
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, QuantaClock::new())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A full bucket on `clock`.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            bucket: Bucket::full(),
            quota,
            time: Timeline::new(clock),
        }
    }

    /// Takes one token if there is one.
    ///
    /// # Errors
    ///
    /// [`Denied`] when the bucket is empty; it says when to retry.
    #[inline]
    pub fn check(&self) -> Result<Snapshot, Denied> {
        self.acquire(self.quota.unit())
    }

    /// Takes `n` tokens if there are `n`; takes none otherwise.
    ///
    /// `n == 0` takes nothing and reports the bucket as it is.
    ///
    /// # Errors
    ///
    /// [`CheckError::InsufficientCapacity`] when `n` exceeds the burst (waiting cannot help),
    /// [`CheckError::Denied`] when there are fewer than `n` tokens now.
    #[inline]
    pub fn check_n(&self, n: u64) -> Result<Snapshot, CheckError> {
        let cost = cost_of(self.quota, n)?;
        Ok(self.acquire(cost)?)
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        self.time.clock()
    }

    /// `cost` units, already checked against the capacity.
    #[inline]
    fn acquire(&self, cost: u64) -> Result<Snapshot, Denied> {
        self.acquire_at(cost, self.time.now())
    }

    /// [`acquire`](Self::acquire) at a time already read (the loom models pass it in).
    #[inline]
    pub(crate) fn acquire_at(&self, cost: u64, now_ns: u64) -> Result<Snapshot, Denied> {
        let now = self.quota.units_at(now_ns);

        match attempt(&self.bucket, self.quota, cost, now_ns, now) {
            Some(result) => result,
            // Only keyed limiters evict, and only their own buckets.
            None => unreachable!("a direct limiter's bucket is never evicted"),
        }
    }
}

/// The cost in units of `n` tokens, refused when `n` exceeds the burst (waiting cannot help).
#[inline]
pub(crate) fn cost_of(quota: Quota, n: u64) -> Result<u64, InsufficientCapacity> {
    if n > quota.burst() {
        return Err(InsufficientCapacity {
            cost: n,
            capacity: quota.burst(),
        });
    }
    Ok(n * quota.unit())
}

/// One request of `cost` units (at most the capacity) on `bucket`: `None` when the bucket has
/// been evicted. A zero cost only looks at the bucket.
#[inline]
pub(crate) fn attempt(
    bucket: &Bucket,
    quota: Quota,
    cost: u64,
    now_ns: u64,
    now: u64,
) -> Option<Result<Snapshot, Denied>> {
    match bucket.decide(now, cost, quota.tau()) {
        Verdict::Admitted(tat) => Some(Ok(Snapshot::new(quota, tat, now_ns, now))),
        Verdict::Denied(tat) => Some(Err(Denied::new(quota, tat, cost, now_ns, now))),
        Verdict::Evicted => None,
    }
}

#[cfg(hotlimit_loom)]
impl<C> RateLimiter<C> {
    /// The bucket's word, for the loom models' final-state checks.
    pub(crate) fn word(&self) -> u64 {
        self.bucket.load()
    }
}

impl<C> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}
