//! The atomic cell: one bucket in one `AtomicU64`.
//!
//! # The word
//!
//! | bits  | meaning                                                                  |
//! |-------|--------------------------------------------------------------------------|
//! | 0..63 | `tat`, the bucket's theoretical arrival time in the quota's time units   |
//! | 63    | tombstone: the bucket was evicted and must not be used again             |
//!
//! [`UNSET`] (bit 63 and bit 0) is a bucket just inserted whose word is not set yet: the first
//! request that meets it sets it from the eviction horizon (`store` module notes).
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

/// The word of a bucket inserted before its starting word was read. Never admits, never evicted.
pub(crate) const UNSET: u64 = TOMBSTONE | 1;

/// What one attempt on a bucket came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Admitted; the bucket's new `tat`.
    Admitted(u64),
    /// Refused; the `tat` that refused it, left unchanged.
    Denied(u64),
    /// The bucket is a tombstone, or [`UNSET`]: the caller must set it, or find or make the
    /// live one.
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

    /// A bucket whose word is not set yet: see [`UNSET`] and [`Bucket::init`].
    pub(crate) fn unset() -> Self {
        Self::starting_at(UNSET)
    }

    /// Sets the word of an [`UNSET`] bucket to `tat`; does nothing to any other word.
    pub(crate) fn init(&self, tat: u64) {
        // Relaxed: the word is the bucket's whole state; racing initialisers read the horizon
        // after the insert, so any of their values will do, and only the first lands.
        let _ = self
            .word
            .compare_exchange(UNSET, tat, Ordering::Relaxed, Ordering::Relaxed);
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

    /// Gives back the `cost` units of an admission that left the word at `admitted`, if nothing
    /// has changed the word since. Returns whether it did.
    ///
    /// # Why only then
    ///
    /// Admitting at reading `t` maps a word `x` to `max(x, t) + cost`; lowering that by `cost`
    /// gives `max(x, t)`, which decides every reading from `t` on as `x` does and is never
    /// fuller than `x` at an older one: exactly as if the admission had not happened. Once
    /// another admission has moved the word, no amount can be given back safely: if that one
    /// found the bucket full (its reading at or past `admitted`), the charge was absorbed, its
    /// word is the same with or without the charge, and any refund would hand out a token
    /// twice. So a refund that finds the word moved keeps the charge: never more admissions
    /// than without the refunded request, at the price of a token when requests race.
    ///
    /// An exact undo of another request brings the word back to `admitted`; the refund then
    /// succeeds, rightly, since the history is again as if only this admission had happened.
    pub(crate) fn refund(&self, admitted: u64, cost: u64) -> bool {
        // Relaxed: one CAS on the one word, ordered with every admission; it publishes nothing.
        self.word
            .compare_exchange(
                admitted,
                admitted - cost,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The bucket's word as it is now (a tombstone included).
    #[inline]
    pub(crate) fn load(&self) -> u64 {
        // Relaxed: the word is the bucket's whole state; callers act on this value alone.
        self.word.load(Ordering::Relaxed)
    }

    /// A request of `cost` units at `now`: [`acquire`](Bucket::acquire), or a look at the word
    /// for a zero cost.
    #[inline]
    pub(crate) fn decide(&self, now: u64, cost: u64, tau: u64) -> Verdict {
        if cost == 0 {
            self.peek()
        } else {
            self.acquire(now, cost, tau)
        }
    }

    /// Whether the bucket has been evicted.
    #[inline]
    pub(crate) fn is_tombstone(&self) -> bool {
        self.load() == TOMBSTONE
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
        assert!(bucket.refund(120, 10));
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(120));
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Denied(120));
    }

    #[test]
    fn refund_of_an_idle_bucket_restores_it_full() {
        // The charge was taken from a full bucket: giving it back makes it full again at 100.
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 30), Verdict::Admitted(110));
        assert!(bucket.refund(110, 10));
        assert_eq!(gcra::tokens(bucket.load(), 100, 30, 10), 3);
    }

    #[test]
    fn refund_never_credits_a_charge_that_a_later_admission_absorbed() {
        // Capacity 1. R is admitted at 100; S at 200 finds the bucket full whether or not R
        // came. Giving R's token back would let U through at 200 as well.
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 10), Verdict::Admitted(110));
        assert_eq!(bucket.acquire(200, 10, 10), Verdict::Admitted(210));
        assert!(!bucket.refund(110, 10));
        assert_eq!(bucket.acquire(200, 10, 10), Verdict::Denied(210));
    }

    #[test]
    fn refund_after_an_exact_undo_still_applies() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(100, 10, 30), Verdict::Admitted(110));
        assert_eq!(bucket.acquire(100, 10, 30), Verdict::Admitted(120));
        assert!(bucket.refund(120, 10));
        assert!(bucket.refund(110, 10));
        assert_eq!(bucket.load(), 100);
        assert!(
            !bucket.refund(110, 10),
            "a second refund of the same charge"
        );
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
    fn an_unset_bucket_admits_nothing_until_set_once() {
        let bucket = Bucket::unset();
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Evicted);
        assert!(!bucket.is_tombstone());
        assert!(!bucket.try_evict(u64::MAX - 1));
        bucket.init(50);
        bucket.init(0);
        assert_eq!(bucket.load(), 50);
        assert_eq!(bucket.acquire(100, 10, 20), Verdict::Admitted(110));
    }

    #[test]
    fn a_stale_now_never_lowers_the_word() {
        let bucket = Bucket::full();
        assert_eq!(bucket.acquire(1_000, 10, 30), Verdict::Admitted(1_010));
        assert_eq!(bucket.acquire(900, 10, 30), Verdict::Denied(1_010));
        assert_eq!(bucket.acquire(995, 10, 30), Verdict::Admitted(1_020));
    }
}
