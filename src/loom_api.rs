//! Thin wrappers over the real internals for the loom models in `loom-tests`, with the time
//! passed in so that a model needs no clock. Compiled only under `--cfg hotlimit_loom`; not part
//! of the API.

use core::hash::BuildHasherDefault;
use std::collections::hash_map::DefaultHasher;

use crate::bucket;
use crate::outcome::{CheckError, Snapshot};
use crate::{KeyedRateLimiter, ManualClock, Overflow, Quota, RateLimiter};

/// The word of an evicted bucket.
pub const TOMBSTONE: u64 = bucket::TOMBSTONE;
/// How far behind `now` [`Keyed::retain_recent_at`] looks for idle buckets, in nanoseconds.
pub const STEP: u64 = crate::timeline::STEP;

/// What one attempt on a [`Bucket`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted; the bucket's new word.
    Admitted(u64),
    /// Refused; the word that refused it.
    Denied(u64),
    /// The bucket is a tombstone.
    Evicted,
}

impl From<bucket::Verdict> for Verdict {
    fn from(verdict: bucket::Verdict) -> Self {
        match verdict {
            bucket::Verdict::Admitted(tat) => Self::Admitted(tat),
            bucket::Verdict::Denied(tat) => Self::Denied(tat),
            bucket::Verdict::Evicted => Self::Evicted,
        }
    }
}

/// The real bucket: one word, the CAS loop and the tombstone.
#[derive(Debug)]
pub struct Bucket(bucket::Bucket);

impl Bucket {
    /// A full bucket.
    pub fn full() -> Self {
        Self(bucket::Bucket::full())
    }

    /// Takes `cost` units at `now` (units) if the bucket holds them; `tau` is the tolerance.
    pub fn acquire(&self, now: u64, cost: u64, tau: u64) -> Verdict {
        self.0.acquire(now, cost, tau).into()
    }

    /// Gives back `cost` units of an admission that left the word at `admitted`, if the word
    /// is still that; returns whether it did.
    pub fn refund(&self, admitted: u64, cost: u64) -> bool {
        self.0.refund(admitted, cost)
    }

    /// Turns the bucket into a tombstone if it has been full since `idle_since`.
    pub fn try_evict(&self, idle_since: u64) -> bool {
        self.0.try_evict(idle_since)
    }

    /// The word as it is now.
    pub fn load(&self) -> u64 {
        self.0.load()
    }
}

/// A hasher with no random seed, so that every execution of a model is the same program.
type Fixed = BuildHasherDefault<DefaultHasher>;

/// The real [`RateLimiter`], checked at a given time.
#[derive(Debug)]
pub struct Direct(RateLimiter<ManualClock>);

impl Direct {
    /// A full bucket under `quota`.
    pub fn new(quota: Quota) -> Self {
        Self(RateLimiter::with_clock(quota, ManualClock::new()))
    }

    /// [`RateLimiter::check_n`] at `now_ns`.
    pub fn check_n_at(&self, n: u64, now_ns: u64) -> Result<Snapshot, CheckError> {
        let cost = crate::direct::cost_of(self.0.quota(), n)?;
        Ok(self.0.acquire_at(cost, now_ns)?)
    }

    /// The bucket's word.
    pub fn word(&self) -> u64 {
        self.0.word()
    }
}

/// The real [`KeyedRateLimiter`] over `u64` keys (on the loom store), at a given time.
#[derive(Debug)]
pub struct Keyed(KeyedRateLimiter<u64, ManualClock, Fixed>);

impl Keyed {
    /// An empty limiter under `quota` that evicts buckets as soon as they are full and idle.
    pub fn new(quota: Quota) -> Self {
        Self::with_max_keys(quota, usize::MAX, Overflow::Refuse)
    }

    /// As [`Keyed::new`], holding at most `max_keys` keys, with `overflow` beyond them.
    pub fn with_max_keys(quota: Quota, max_keys: usize, overflow: Overflow) -> Self {
        let limiter = KeyedRateLimiter::builder(quota)
            .clock(ManualClock::new())
            .hasher(Fixed::default())
            .idle_ttl(core::time::Duration::ZERO)
            .max_keys(max_keys, overflow)
            .build();
        Self(limiter)
    }

    /// Breaks the limiter on purpose, for negative controls: new buckets start at 0 instead of
    /// the eviction horizon (`fresh_at_zero`), or a request that finds a tombstone takes no
    /// Acquire fence (`skip_fence`).
    pub fn with_faults(mut self, fresh_at_zero: bool, skip_fence: bool) -> Self {
        self.0.inject_faults(fresh_at_zero, skip_fence);
        self
    }

    /// [`KeyedRateLimiter::check_key_n`] at `now_ns`.
    pub fn check_n_at(&self, key: u64, n: u64, now_ns: u64) -> Result<Snapshot, CheckError> {
        let cost = crate::direct::cost_of(self.0.quota(), n)?;
        self.0.acquire_at(&key, cost, now_ns)
    }

    /// [`KeyedRateLimiter::retain_recent`] at `now_ns`.
    pub fn retain_recent_at(&self, now_ns: u64) -> usize {
        self.0.retain_recent_at(now_ns)
    }

    /// The number of keys in the map.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries in the map, counted one by one (`len` is the store's own count).
    pub fn entries(&self) -> usize {
        self.0.count_entries()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
