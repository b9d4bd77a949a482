//! Loom models of the real bucket, the real limiters' check paths and the real eviction
//! protocol (on the crate's loom-backed store). Run with `scripts/loom.sh`.
//!
//! Each model states its preemption bound and what it measured on the 2-core development
//! machine (release build). All ten together explore about 281,000 executions in about 50 s,
//! most of it in the two three-thread eviction models.

#![cfg(hotlimit_loom)]

#[allow(dead_code)] // each test file uses part of it
mod common;

use common::{
    explore, horizon_read_before_the_previous_bucket, one_per_second, stale_reading_across_eviction,
};
use hotlimit::loom_api::{Bucket, Direct, Keyed, Verdict};
use hotlimit::{CheckError, Overflow, Quota};
use loom::sync::Arc;
use loom::thread;

/// Units per token in the bucket-level models.
const U: u64 = 10;
/// The frozen time of the bucket-level models, in units.
const NOW: u64 = 1_000;
/// One second in nanoseconds: the limiter-level models use quotas of one token per second, whose
/// unit is one nanosecond, so a word reads as nanoseconds.
const SEC: u64 = 1_000_000_000;

fn spawn_acquire(
    bucket: &Arc<Bucket>,
    now: u64,
    cost: u64,
    tau: u64,
) -> thread::JoinHandle<Verdict> {
    let bucket = Arc::clone(bucket);
    thread::spawn(move || bucket.acquire(now, cost, tau))
}

/// Two threads race for the single token of a full bucket at one instant: exactly one wins.
// Bound 3: 62 executions, under 0.01 s.
#[test]
fn two_threads_capacity_one_admit_exactly_one() {
    explore("two_threads_capacity_one", 3, || {
        let bucket = Arc::new(Bucket::full());
        let a = spawn_acquire(&bucket, NOW, U, U);
        let b = spawn_acquire(&bucket, NOW, U, U);
        let verdicts = [a.join().unwrap(), b.join().unwrap()];

        let admitted = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Admitted(_)))
            .count();
        assert_eq!(admitted, 1, "{verdicts:?}");
        assert!(
            verdicts.contains(&Verdict::Admitted(NOW + U)),
            "{verdicts:?}"
        );
        assert!(verdicts.contains(&Verdict::Denied(NOW + U)), "{verdicts:?}");
        assert_eq!(bucket.load(), NOW + U);
    });
}

/// Costs 1, 1 and 2 against a capacity of 2 at one instant: exactly 2 tokens go out, and the
/// final word is what admitting the winners one after another gives.
// Bound 3: 5,516 executions, about 0.5-0.8 s (bound 2: 1,151).
#[test]
fn three_threads_costs_1_1_2_capacity_two() {
    explore("three_threads_costs_1_1_2", 3, || {
        let tau = 2 * U;
        let bucket = Arc::new(Bucket::full());
        let costs = [U, U, 2 * U];
        let handles: Vec<_> = costs
            .iter()
            .map(|&cost| spawn_acquire(&bucket, NOW, cost, tau))
            .collect();
        let verdicts: Vec<Verdict> = handles.into_iter().map(|h| h.join().unwrap()).collect();

        let mut admitted: Vec<(u64, u64)> = costs
            .iter()
            .zip(&verdicts)
            .filter_map(|(&cost, v)| match *v {
                Verdict::Admitted(tat) => Some((tat, cost)),
                _ => None,
            })
            .collect();
        let total: u64 = admitted.iter().map(|&(_, cost)| cost).sum();
        assert!(total <= tau, "{verdicts:?}");
        // Frozen time and a full bucket: nothing is lost either.
        assert_eq!(total, tau, "{verdicts:?}");

        // Replay the admitted requests in the order their words show, on a fresh bucket.
        admitted.sort_unstable();
        let replay = Bucket::full();
        for &(tat, cost) in &admitted {
            assert_eq!(replay.acquire(NOW, cost, tau), Verdict::Admitted(tat));
        }
        assert_eq!(bucket.load(), replay.load());

        // A denial reports a word the bucket really held.
        for v in &verdicts {
            if let Verdict::Denied(tat) = *v {
                assert!(admitted.iter().any(|&(t, _)| t == tat), "{verdicts:?}");
            }
        }
        assert!(!verdicts.contains(&Verdict::Evicted));
    });
}

/// A request on a stale reading races one on a fresh reading of an empty bucket. The word only
/// moves up, by exactly what was admitted, and the tokens that came back are not handed out
/// twice.
// Bound 3: 104 executions, about 0.01 s.
#[test]
fn stale_now_racing_fresh_now() {
    explore("stale_now_racing_fresh_now", 3, || {
        let tau = 2 * U;
        let bucket = Arc::new(Bucket::full());
        // Empty at NOW: the word is NOW + tau, one token back at NOW + U, two at NOW + 2U.
        assert_eq!(bucket.acquire(NOW, tau, tau), Verdict::Admitted(NOW + tau));
        let start = bucket.load();

        // Alone, each would be admitted: the stale one takes the one token it sees, the fresh
        // one the two it sees. Together they must not take three.
        let requests = [(NOW + U, U), (NOW + 2 * U, 2 * U)];
        let handles: Vec<_> = requests
            .iter()
            .map(|&(now, cost)| {
                let bucket = Arc::clone(&bucket);
                thread::spawn(move || {
                    let before = bucket.load();
                    let verdict = bucket.acquire(now, cost, tau);
                    let after = bucket.load();
                    assert!(start <= before && before <= after, "{before} {after}");
                    verdict
                })
            })
            .collect();
        let verdicts: Vec<Verdict> = handles.into_iter().map(|h| h.join().unwrap()).collect();

        let admitted: u64 = requests
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| matches!(v, Verdict::Admitted(_)))
            .map(|(&(_, cost), _)| cost)
            .sum();
        assert!(admitted > 0 && admitted <= tau, "{verdicts:?}");
        assert_eq!(bucket.load(), start + admitted, "{verdicts:?}");
        for v in &verdicts {
            match *v {
                Verdict::Admitted(tat) | Verdict::Denied(tat) => assert!(tat >= start),
                Verdict::Evicted => panic!("never evicted"),
            }
        }
    });
}

/// Shared case C16. A key used once has sat full and idle; a sweep races two requests on it at
/// the same instant. The kill and an admission are CASes on one word, so the key's single token
/// goes out once, whichever bucket (the old one or its replacement) it comes from.
// Bound 2: 194,870 executions, about 30 s (bound 3 on this finer store: several times longer).
#[test]
fn eviction_racing_admits_never_doubles_a_token() {
    explore("eviction_racing_admits", 2, || {
        let quota = Quota::per_second(1).unwrap();
        let limiter = Arc::new(Keyed::new(quota));
        assert!(limiter.check_n_at(7, 1, 10 * SEC).is_ok());
        // Full since 11 s; at 13 s the sweep may evict it.
        let t = 13 * SEC;

        let sweeper = {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || limiter.retain_recent_at(t))
        };
        let checks: Vec<_> = (0..2)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                thread::spawn(move || limiter.check_n_at(7, 1, t).is_ok())
            })
            .collect();
        let admitted = checks
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        let evicted = sweeper.join().unwrap();

        assert_eq!(admitted, 1, "evicted {evicted}");
        assert!(evicted <= 1);
        // The admitted bucket is the live one: it is in the map and empty.
        assert_eq!(limiter.len(), 1);
        assert!(limiter.check_n_at(7, 1, t).is_err());
    });
}

/// `check_n` above the capacity races admissions on a direct limiter: it fails without touching
/// the bucket, so the final word accounts for the admitted requests only.
// Bound 3: 62 executions, about 0.01 s.
#[test]
fn check_n_above_capacity_racing_admits_changes_nothing() {
    explore("check_n_above_capacity", 3, || {
        let quota = Quota::per_second(1).unwrap().with_burst(2).unwrap();
        let limiter = Arc::new(Direct::new(quota));
        let t = 10 * SEC;

        let over = {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || {
                match limiter.check_n_at(3, t) {
                    Err(CheckError::InsufficientCapacity(e)) => {
                        assert_eq!((e.cost, e.capacity), (3, 2));
                    }
                    other => panic!("expected InsufficientCapacity, got {other:?}"),
                }
                u64::from(limiter.check_n_at(1, t).is_ok())
            })
        };
        let two = {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || 2 * u64::from(limiter.check_n_at(2, t).is_ok()))
        };
        let admitted = over.join().unwrap() + two.join().unwrap();

        assert!((1..=2).contains(&admitted));
        assert_eq!(limiter.word(), t + admitted * SEC);
    });
}

/// A request holding a reading older than an eviction: the bucket that replaces the evicted one
/// starts at the eviction horizon, so it denies what the evicted one would have denied (see
/// `common::stale_reading_across_eviction`; its negative controls are in `negative.rs`).
// Bound 2: 74,875 executions, about 15-19 s.
#[test]
fn a_stale_reading_across_an_eviction_stays_within_the_bound() {
    explore("stale_reading_across_eviction", 2, || {
        stale_reading_across_eviction(Keyed::new(one_per_second()));
    });
}

/// A request that missed and read the horizon before the key's previous bucket was even
/// inserted, preempted until that bucket was used and evicted (see
/// `common::horizon_read_before_the_previous_bucket`).
// Bound 2: 2,878 executions, about 0.8 s (before the fix it failed on the first execution).
#[test]
fn a_horizon_read_before_the_previous_bucket_stays_within_the_bound() {
    explore("horizon_read_before_the_previous_bucket", 2, || {
        horizon_read_before_the_previous_bucket(Keyed::new(one_per_second()));
    });
}

/// The key cap: with room for one key, two new keys race for it. Exactly one gets in, the
/// count never passes the cap, and at the end it equals the entries in the map.
// Bound 3: 70 executions, about 0.01 s.
#[test]
fn two_new_keys_race_for_the_last_slot() {
    explore("two_new_keys_race_for_the_last_slot", 3, || {
        let limiter = Arc::new(Keyed::with_max_keys(one_per_second(), 1, Overflow::Refuse));
        let handles: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let limiter = Arc::clone(&limiter);
                thread::spawn(move || {
                    let result = limiter.check_n_at(key, 1, 10 * SEC);
                    assert!(limiter.len() <= 1);
                    match result {
                        Ok(_) => true,
                        Err(CheckError::TooManyKeys(_)) => false,
                        Err(other) => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        let inserted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();

        assert_eq!(inserted, 1);
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.entries(), 1);
    });
}

/// The key cap with an eviction in flight: the one slot is held by an idle key that a sweep
/// evicts while two new keys ask for a slot. At most one new key gets in, the count never
/// passes the cap, and at the end it equals the entries in the map.
// Bound 2: 2,380 executions, about 0.5 s.
#[test]
fn new_keys_race_a_sweep_for_the_last_slot() {
    explore("new_keys_race_a_sweep_for_the_last_slot", 2, || {
        let limiter = Arc::new(Keyed::with_max_keys(one_per_second(), 1, Overflow::Refuse));
        assert!(limiter.check_n_at(0, 1, 10 * SEC).is_ok());
        let t = 13 * SEC;

        let sweeper = {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || {
                let evicted = limiter.retain_recent_at(t);
                assert!(limiter.len() <= 1);
                evicted
            })
        };
        let handles: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let limiter = Arc::clone(&limiter);
                thread::spawn(move || {
                    let ok = limiter.check_n_at(key, 1, t).is_ok();
                    assert!(limiter.len() <= 1);
                    ok
                })
            })
            .collect();
        let inserted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        let evicted = sweeper.join().unwrap();

        assert_eq!(evicted, 1);
        assert!(inserted <= 1);
        assert!(limiter.len() <= 1);
        assert_eq!(limiter.len(), limiter.entries());
    });
}

/// A charge given back (a later quota refused the request) races two admissions at capacity 2:
/// the other thread always gets at least one token, the bucket never ends fuller than if the
/// refunded request had never come, and it keeps at most that one charge.
// Bound 3: 187 executions, about 0.03 s.
#[test]
fn refund_racing_admissions_never_credits_twice() {
    explore("refund_racing_admissions", 3, || {
        let bucket = Arc::new(Bucket::full());
        let refunded = {
            let bucket = Arc::clone(&bucket);
            thread::spawn(move || {
                // Refused when the other thread took both tokens first: nothing to give back.
                if let Verdict::Admitted(word) = bucket.acquire(NOW, U, 2 * U) {
                    bucket.refund(word, U);
                }
            })
        };
        let other = {
            let bucket = Arc::clone(&bucket);
            thread::spawn(move || {
                (0..2)
                    .filter(|_| matches!(bucket.acquire(NOW, U, 2 * U), Verdict::Admitted(_)))
                    .count() as u64
            })
        };
        refunded.join().unwrap();
        let admitted = other.join().unwrap();

        assert!((1..=2).contains(&admitted));
        let word = bucket.load();
        assert!(
            word >= NOW + admitted * U,
            "fuller than without the refunded request"
        );
        assert!(word <= NOW + (admitted + 1) * U);
    });
}
