//! The atomic cell: one bucket in one `AtomicU64`.
//!
//! # The word
//!
//! | bits  | meaning                                                                  |
//! |-------|--------------------------------------------------------------------------|
//! | 0..63 | `tat`, the bucket's theoretical arrival time in the quota's time units   |
//! | 63    | tombstone: the bucket was evicted and must not be used again             |
//!
//! `0` is a full bucket. Admissions only ever raise `tat`; eviction swaps a full, idle word for
//! [`TOMBSTONE`], after which nothing changes the word again.
//!
//! # Orderings
//!
//! Every access is `Relaxed`. The word is the bucket's whole state and publishes no other
//! memory, and all read-modify-writes of one atomic are totally ordered whatever their
//! ordering, so two CASes from the same word can never both succeed. A stale load can only show
//! an older `tat` (more tokens) than the CAS then finds; the CAS fails and the loop decides
//! again on the fresh value.

use crate::gcra;
use crate::sync::{AtomicU64, Backoff, Ordering};

/// The word of an evicted bucket.
pub(crate) const TOMBSTONE: u64 = 1 << 63;

/// What one attempt on a bucket came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Admitted; the bucket's new `tat`.
    Admitted(u64),
    /// Refused; the `tat` that refused it, left unchanged.
    Denied(u64),
    /// The bucket is a tombstone: the caller must find or make the live one.
    Evicted,
}

/// One token bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    word: AtomicU64,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full() -> Self {
        Self::starting_at(0)
    }

    /// A bucket whose word is `tat`: full for every reading from `tat` on.
    pub(crate) fn starting_at(tat: u64) -> Self {
        Self {
            word: AtomicU64::new(tat),
        }
    }

    /// Takes `cost` units at `now` if the bucket holds them (`tau` is the quota's tolerance).
    #[inline]
    pub(crate) fn acquire(&self, now: u64, cost: u64, tau: u64) -> Verdict {
        // Relaxed: a stale word only shows more tokens, and the CAS below rechecks it.
        let tat = self.word.load(Ordering::Relaxed);
        let Some(next) = decide(tat, now, cost, tau) else {
            return verdict_without_write(tat);
        };

        // The common case: nobody else wrote since the load. Relaxed: CASes on one word are
        // totally ordered whatever their ordering, and the word publishes no other memory.
        match self
            .word
            .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Verdict::Admitted(next),
            Err(actual) => self.acquire_contended(actual, now, cost, tau),
        }
    }

    /// The retry loop, out of line so that the uncontended path stays small.
    #[cold]
    fn acquire_contended(&self, mut tat: u64, now: u64, cost: u64, tau: u64) -> Verdict {
        let backoff = Backoff::new();
        loop {
            let Some(next) = decide(tat, now, cost, tau) else {
                return verdict_without_write(tat);
            };

            // Relaxed: as in `acquire`, the CAS alone decides and publishes nothing else.
            match self
                .word
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Verdict::Admitted(next),
                Err(actual) => tat = actual,
            }
            backoff.spin();
        }
    }

    /// Gives back `cost` units that an admission on this bucket took, as read at `now`.
    ///
    /// The word becomes `max(tat - cost, now)`: `cost` units of tokens come back, but the
    /// bucket never holds more than its capacity. Returns the word as the refund left it. A
    /// tombstone, or a word already full at `now`, is left alone.
    ///
    /// # Why it is exact
    ///
    /// Admitting maps a word `x` to `max(x, t) + c`, and that map grows by at most `k` when `x`
    /// grows by `k`. So however many admissions land between the refunded one and its refund,
    /// the word is at most `k` above the word the same admissions would have left without the
    /// refunded one, and `max(tat - k, now)` is never fuller than that word at any reading.
    /// Right after the admission (the usual case) it restores the word exactly, or as full as
    /// the capacity allows. `now` may be stale: the argument holds for any reading.
    ///
    /// The caller must have been admitted `cost` on this very bucket; refunding a replacement
    /// bucket (after an eviction) would credit tokens it never lent.
    pub(crate) fn refund(&self, now: u64, cost: u64) -> u64 {
        // Relaxed: as in `acquire`, the CAS below rechecks the word and publishes nothing else.
        let mut tat = self.word.load(Ordering::Relaxed);
        let backoff = Backoff::new();
        loop {
            // Evicted (nothing to give back to) or already full at `now` (nothing owed).
            if tat & TOMBSTONE != 0 || tat <= now {
                return tat;
            }
            let next = tat.saturating_sub(cost).max(now);

            // Relaxed: CASes on one word are totally ordered; this one only lowers `tat` by at
            // most what an admission on it raised it by.
            match self
                .word
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => tat = actual,
            }
            backoff.spin();
        }
    }

    /// The bucket's word as it is now (a tombstone included).
    #[inline]
    pub(crate) fn load(&self) -> u64 {
        // Relaxed: the word is the bucket's whole state; callers act on this value alone.
        self.word.load(Ordering::Relaxed)
    }

    /// Whether the bucket has been evicted.
    #[inline]
    pub(crate) fn is_tombstone(&self) -> bool {
        self.load() & TOMBSTONE != 0
    }

    /// A zero-cost request: admitted with the current word, which is left as it is.
    #[inline]
    pub(crate) fn peek(&self) -> Verdict {
        match self.load() {
            tat if tat & TOMBSTONE != 0 => Verdict::Evicted,
            tat => Verdict::Admitted(tat),
        }
    }

    /// Turns the bucket into a tombstone if it has been full since `idle_since` (in units).
    ///
    /// A bucket is full since `tat`, so one with `tat <= idle_since` has refilled and sat idle.
    /// Returns whether this call killed it. The kill is a CAS from the word it inspected, so an
    /// admission that lands first makes it fail, and one that comes after finds the tombstone.
    pub(crate) fn try_evict(&self, idle_since: u64) -> bool {
        // Relaxed: only a pre-check; the CAS in `try_evict_from` decides on the word as it is.
        let tat = self.word.load(Ordering::Relaxed);
        tat <= idle_since && self.try_evict_from(tat)
    }

    /// Turns the bucket into a tombstone if its word is still `tat`, full or not.
    ///
    /// For evicting the most idle key when a limiter is full of keys: the bucket's debt is
    /// forgotten, but an admission since `tat` was read makes the CAS fail, so none is lost.
    pub(crate) fn try_evict_from(&self, tat: u64) -> bool {
        // The kill and any admission are CASes on this one word, so exactly one of them wins in
        // its modification order. Release: a request that finds the tombstone takes an Acquire
        // fence, and so sees the eviction horizon that the sweeper raised before the kill.
        tat & TOMBSTONE == 0
            && self
                .word
                .compare_exchange(tat, TOMBSTONE, Ordering::Release, Ordering::Relaxed)
                .is_ok()
    }
}

/// `None` when the word refuses the request or is a tombstone; the new word otherwise.
#[inline]
fn decide(tat: u64, now: u64, cost: u64, tau: u64) -> Option<u64> {
    if tat & TOMBSTONE != 0 {
        return None;
    }
    gcra::admit(tat, now, cost, tau)
}

/// What a word that [`decide`] refused means, without writing it.
#[inline]
fn verdict_without_write(tat: u64) -> Verdict {
    if tat & TOMBSTONE != 0 {
        Verdict::Evicted
    } else {
        Verdict::Denied(tat)
    }
}

#[cfg(all(test, not(hotlimit_loom)))]
mod tests {
    use super::*;

    #[test]
    fn denial_leaves_the_word_unchanged() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(110));
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(120));
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Denied(120));
        assert_eq!(bucket.load(), 120);
    }

    #[test]
    fn refund_restores_the_word_before_the_admission() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(110));
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(120));
        assert_eq!(bucket.refund(100, 10), 110);
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(120));
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Denied(120));
    }

    #[test]
    fn refund_never_fills_past_capacity() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 30), Verdict::Admitted(110));
        // At 105 half of the token came back already: only the rest is owed.
        assert_eq!(bucket.refund(105, 10), 105);
        assert_eq!(gcra::tokens(105, 105, 30, 10), 3);
        // A full bucket and a tombstone are left alone.
        assert_eq!(bucket.refund(200, 10), 105);
        assert!(bucket.try_evict(105));
        assert_eq!(bucket.refund(200, 10), TOMBSTONE);
    }

    #[test]
    fn refund_after_later_admissions_gives_back_only_its_cost() {
        // Capacity 3 tokens of 10 units. A takes one at 100, B one at 100, A is refunded.
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 30), Verdict::Admitted(110));
        assert_eq!(bucket.acquire(100, 10, 30), Verdict::Admitted(120));
        assert_eq!(bucket.refund(100, 10), 110);
        // As if only B had been admitted: two tokens left.
        assert_eq!(gcra::tokens(110, 100, 30, 10), 2);
    }

    #[test]
    fn eviction_needs_a_full_idle_bucket() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(110));
        assert!(!bucket.try_evict(109));
        assert!(bucket.try_evict(110));
        assert_eq!(bucket.acquire(200, 10, 20), Verdict::Evicted);
        assert!(!bucket.try_evict(u64::MAX));
        assert_eq!(bucket.load(), TOMBSTONE);
    }

    #[test]
    fn a_stale_now_never_lowers_the_word() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(1_000, 10, 30), Verdict::Admitted(1_010));
        assert_eq!(bucket.acquire(900, 10, 30), Verdict::Denied(1_010));
        assert_eq!(bucket.acquire(995, 10, 30), Verdict::Admitted(1_020));
    }
}
