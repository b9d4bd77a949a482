//! What a check answers: a snapshot of the bucket on admission, the reason on refusal.
//!
//! Everything a caller may want to show (tokens left, when to retry, when the bucket is full
//! again) is derived here, from the bucket's word as the check saw it, only when asked. The
//! check itself does no division.

use core::fmt;
use core::time::Duration;

use crate::gcra;
use crate::Quota;

/// The bucket as an admitted request left it.
///
/// # Examples
///
/// ```
/// use hotlimit::{ManualClock, Quota, RateLimiter};
/// use std::time::Duration;
///
/// let limiter = RateLimiter::with_clock(Quota::per_minute(5)?, ManualClock::new());
/// let snapshot = limiter.check_n(4).unwrap();
/// assert_eq!(snapshot.remaining(), 1);
/// assert_eq!(snapshot.reset_after(), Duration::from_secs(48));
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The bucket's word after the request.
    reading: Reading,
}

/// A bucket's word and the time a check read it at: what both answers derive their figures
/// from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reading {
    quota: Quota,
    tat: u64,
    now_ns: u64,
    now: u64,
}

impl Reading {
    fn remaining(&self) -> u64 {
        gcra::tokens(self.tat, self.now, self.quota.tau(), self.quota.unit())
    }

    fn reset_after(&self) -> Duration {
        self.quota.wait_until(self.now_ns, self.tat)
    }
}

/// Whole seconds, rounded up: 0.3 s is 1, 1.0 s is 1, 1.2 s is 2.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// What a `Retry-After` header says for `wait`: whole seconds, rounded up, and at least one,
/// since a client told 0 would retry at once.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

impl Snapshot {
    pub(crate) fn new(quota: Quota, tat: u64, now_ns: u64, now: u64) -> Self {
        let reading = Reading {
            quota,
            tat,
            now_ns,
            now,
        };
        Self { reading }
    }

    /// The bucket's word after the request.
    pub(crate) fn word(&self) -> u64 {
        self.reading.tat
    }

    /// Whole tokens left in the bucket after this request.
    pub fn remaining(&self) -> u64 {
        self.reading.remaining()
    }

    /// The time until the bucket is full again (zero if it is full).
    pub fn reset_after(&self) -> Duration {
        self.reading.reset_after()
    }

    /// The quota this bucket follows.
    pub fn quota(&self) -> Quota {
        self.reading.quota
    }
}

/// A request that the bucket could not pay for now; it changed nothing.
///
/// [`retry_after`](Denied::retry_after) is the exact time until the bucket holds the tokens this
/// request asked for, counting the part of a token already accrued.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// The bucket's word as the check saw it.
    reading: Reading,
    /// What the request cost, in time units.
    cost: u64,
}

impl Denied {
    pub(crate) fn new(quota: Quota, tat: u64, cost: u64, now_ns: u64, now: u64) -> Self {
        let reading = Reading {
            quota,
            tat,
            now_ns,
            now,
        };
        Self { reading, cost }
    }

    /// How long until the same request would pass, if nothing else takes tokens meanwhile.
    pub fn retry_after(&self) -> Duration {
        // The request fits at `t` once `max(tat, t) + cost <= t + tau`; it was refused, so
        // `tat > now` and the first such `t` is `tat + cost - tau`.
        let Reading { quota, tat, .. } = self.reading;
        let ready = tat + self.cost - quota.tau();
        quota.wait_until(self.reading.now_ns, ready)
    }

    /// [`retry_after`](Denied::retry_after) in whole seconds, rounded up and at least 1, as an
    /// HTTP `Retry-After` header wants it: a wait of 0.3 s is 1, never 0.
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(self.retry_after())
    }

    /// Whole tokens in the bucket when the request was refused.
    pub fn remaining(&self) -> u64 {
        self.reading.remaining()
    }

    /// The time until the bucket is full again.
    pub fn reset_after(&self) -> Duration {
        self.reading.reset_after()
    }

    /// The quota that refused the request.
    pub fn quota(&self) -> Quota {
        self.reading.quota
    }
}

impl fmt::Debug for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Denied")
            .field("quota", &self.reading.quota)
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limit of {} exceeded, retry after {:?}",
            self.reading.quota,
            self.retry_after()
        )
    }
}

impl std::error::Error for Denied {}

/// A request that costs more than the bucket can ever hold: waiting will not help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a cost of {cost} can never pass a bucket that holds at most {capacity}")]
pub struct InsufficientCapacity {
    /// The cost asked for.
    pub cost: u64,
    /// The bucket's capacity (the quota's burst).
    pub capacity: u64,
}

/// A new key that a [`KeyedRateLimiter`](crate::KeyedRateLimiter) at its key limit refused.
///
/// Only limiters built with [`Overflow::Refuse`](crate::Overflow::Refuse) answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the limiter already tracks its maximum of {max_keys} keys and refuses new ones")]
pub struct TooManyKeys {
    /// The limiter's key limit.
    pub max_keys: usize,
}

/// Why a check refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// Not enough tokens now; see [`Denied::retry_after`].
    #[error(transparent)]
    Denied(#[from] Denied),
    /// More than the capacity: never possible.
    #[error(transparent)]
    InsufficientCapacity(#[from] InsufficientCapacity),
    /// A new key while a keyed limiter is full of keys.
    #[error(transparent)]
    TooManyKeys(#[from] TooManyKeys),
}

impl CheckError {
    /// The denial, when the request may pass later.
    pub fn as_denied(&self) -> Option<&Denied> {
        match self {
            CheckError::Denied(denied) => Some(denied),
            CheckError::InsufficientCapacity(_) | CheckError::TooManyKeys(_) => None,
        }
    }
}
