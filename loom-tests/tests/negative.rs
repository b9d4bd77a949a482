//! Negative controls: two designs the crate rejects, modelled with the same loom setup as
//! `models.rs`. Each must fail, which shows that the models can see the bugs they guard against.
//! Both live only here; nothing in the crate uses them.

#![cfg(hotlimit_loom)]

#[allow(dead_code)] // each test file uses part of it
mod common;

use std::collections::HashMap;

use common::{
    explore, horizon_read_before_the_previous_bucket, one_per_second, stale_reading_across_eviction,
};
use hotlimit::loom_api::{Bucket, Keyed, Verdict, STEP};
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A token bucket split over two atomics: a token count and the time it was last refilled.
struct SplitBucket {
    tokens: AtomicU64,
    stamp: AtomicU64,
}

impl SplitBucket {
    /// Refills from the elapsed time, then takes `cost` tokens with a CAS on the count.
    fn acquire(&self, now: u64, cost: u64, capacity: u64, unit: u64) -> bool {
        loop {
            // SeqCst everywhere: the bug is in the design, not in the orderings.
            let stamp = self.stamp.load(Ordering::SeqCst);
            let tokens = self.tokens.load(Ordering::SeqCst);
            let have = (tokens + now.saturating_sub(stamp) / unit).min(capacity);
            if have < cost {
                return false;
            }
            if self
                .tokens
                .compare_exchange(tokens, have - cost, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.stamp.fetch_max(now, Ordering::SeqCst);
                return true;
            }
        }
    }
}

/// Run one request after the other, the split bucket is right: the failure below is the race.
// Bound 2: 1 execution.
#[test]
fn split_bucket_is_right_sequentially() {
    explore("split_bucket_sequential", 2, || {
        let bucket = SplitBucket {
            tokens: AtomicU64::new(0),
            stamp: AtomicU64::new(1_000),
        };
        assert!(bucket.acquire(1_010, 1, 1, 10));
        assert!(!bucket.acquire(1_010, 1, 1, 10));
    });
}

/// With tokens and time in two words, two requests can both count the same refill: one token
/// comes back and two go out. The one-word bucket makes that impossible.
// Bound 2: caught on the first execution loom tries.
#[test]
#[should_panic(expected = "one token came back, two went out")]
fn split_bucket_credits_a_refill_twice() {
    explore("split_bucket (negative control)", 2, || {
        let unit = 10;
        // Empty at 1000; one token back at 1010.
        let bucket = Arc::new(SplitBucket {
            tokens: AtomicU64::new(0),
            stamp: AtomicU64::new(1_000),
        });
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let bucket = Arc::clone(&bucket);
                thread::spawn(move || bucket.acquire(1_000 + unit, 1, 1, unit))
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        assert!(admitted <= 1, "one token came back, two went out");
    });
}

/// The store's protocol minus the tombstone: the sweeper unlinks a full, idle bucket after only
/// looking at its word, while a request may already hold that bucket.
struct NoTombstoneStore {
    map: Mutex<HashMap<u64, Arc<Bucket>>>,
}

impl NoTombstoneStore {
    /// Takes `cost` from `key`'s bucket, inserting a full one if there is none.
    fn acquire(&self, key: u64, now: u64, cost: u64, tau: u64) -> bool {
        let bucket = Arc::clone(
            self.map
                .lock()
                .unwrap()
                .entry(key)
                .or_insert_with(|| Arc::new(Bucket::full())),
        );
        matches!(bucket.acquire(now, cost, tau), Verdict::Admitted(_))
    }

    /// Unlinks every bucket that has been full since `idle_since`, without killing it first.
    fn evict(&self, idle_since: u64) -> usize {
        let buckets: Vec<(u64, Arc<Bucket>)> = self
            .map
            .lock()
            .unwrap()
            .iter()
            .map(|(&key, bucket)| (key, Arc::clone(bucket)))
            .collect();
        let mut evicted = 0;
        for (key, bucket) in buckets {
            if bucket.load() <= idle_since {
                let mut map = self.map.lock().unwrap();
                if map.get(&key).is_some_and(|b| Arc::ptr_eq(b, &bucket)) {
                    map.remove(&key);
                    evicted += 1;
                }
            }
        }
        evicted
    }
}

/// Run one step after the other, the store without tombstones is right: the failure below is
/// the race.
// Bound 2: 1 execution.
#[test]
fn eviction_without_tombstone_is_right_sequentially() {
    explore("eviction_without_tombstone_sequential", 2, || {
        let (unit, tau) = (1_000, 1_000);
        let store = NoTombstoneStore {
            map: Mutex::new(HashMap::new()),
        };
        assert!(store.acquire(7, 10 * STEP, unit, tau));
        let t = 13 * STEP;
        assert_eq!(store.evict(t - STEP), 1);
        assert!(store.acquire(7, t, unit, tau));
        assert!(!store.acquire(7, t, unit, tau));
        assert_eq!(store.evict(t - STEP), 0);
    });
}

/// The C16 race of `models.rs` without the tombstone: a request admits on the bucket it already
/// holds after the sweeper unlinked it, and another request admits on the fresh bucket that took
/// its place. One token, two admissions.
// Bound 2: caught after 195 executions, about 0.01 s.
#[test]
#[should_panic(expected = "a capacity-1 key admitted twice")]
fn eviction_without_tombstone_admits_twice() {
    explore("eviction_without_tombstone (negative control)", 2, || {
        let (unit, tau) = (1_000, 1_000);
        let store = Arc::new(NoTombstoneStore {
            map: Mutex::new(HashMap::new()),
        });
        // Used once at 10 * STEP; full since 10 * STEP + unit, idle at 13 * STEP.
        assert!(store.acquire(7, 10 * STEP, unit, tau));
        let t = 13 * STEP;

        let sweeper = {
            let store = Arc::clone(&store);
            thread::spawn(move || store.evict(t - STEP))
        };
        let checks: Vec<_> = (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                thread::spawn(move || store.acquire(7, t, unit, tau))
            })
            .collect();
        let admitted = checks
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        sweeper.join().unwrap();
        assert_eq!(admitted, 1, "a capacity-1 key admitted twice");
    });
}

/// The stale reading across an eviction with new buckets starting at 0, as before the eviction
/// horizon: the stale request is admitted on the replacement bucket.
// Bound 2: fails after 61 executions.
#[test]
#[should_panic(expected = "admissions with readings in")]
fn fresh_buckets_at_zero_admit_a_stale_reading() {
    explore("fresh_buckets_at_zero (negative control)", 2, || {
        stale_reading_across_eviction(Keyed::new(one_per_second()).with_faults(true, false));
    });
}

/// The same with the horizon but without the Acquire fence after a tombstone: the request that
/// found the tombstone unlinks it itself and may then read a horizon older than the kill.
// Bound 2: fails after 64,288 executions, about 6 s.
#[test]
#[should_panic(expected = "admissions with readings in")]
fn no_fence_after_a_tombstone_admits_a_stale_reading() {
    explore("no_fence_after_a_tombstone (negative control)", 2, || {
        stale_reading_across_eviction(Keyed::new(one_per_second()).with_faults(false, true));
    });
}

/// The horizon read before the previous bucket, with new buckets at 0.
// Bound 2: fails after 1 execution.
#[test]
#[should_panic(expected = "admissions with readings in")]
fn fresh_buckets_at_zero_admit_a_request_that_missed_early() {
    explore(
        "fresh_buckets_at_zero_missed_early (negative control)",
        2,
        || {
            horizon_read_before_the_previous_bucket(
                Keyed::new(one_per_second()).with_faults(true, false),
            );
        },
    );
}
