//! Real threads on the real map (papaya, which loom cannot model): many threads over few and
//! many keys, with a sweeper calling `retain_recent` all the while, on a frozen and on a moving
//! manual clock. The counts are exact where time stands still and bounded by the quota where it
//! moves. Everything is bounded in iterations: no sleeps, no timing assertions.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use hotlimit::{KeyedRateLimiter, ManualClock, Quota, RateLimiter};

/// Worker threads per phase (the sweeper and the clock come on top).
const WORKERS: u64 = 8;

type Keyed = KeyedRateLimiter<u64, ManualClock>;

/// A keyed limiter that evicts a bucket as soon as it has been full and idle for the watermark
/// step, so that sweeps race admissions as often as possible.
fn keyed(quota: Quota, clock: &ManualClock) -> Keyed {
    KeyedRateLimiter::builder(quota)
        .clock(clock.clone())
        .idle_ttl(Duration::ZERO)
        .build()
}

/// What one phase of checks came to.
struct Phase {
    /// Admissions per key.
    admitted: Vec<u64>,
    /// Keys the concurrent sweeper evicted.
    evicted: usize,
}

/// Every worker tries every key `tries` times (half of them walking the keys backwards, each
/// from its own offset) while a sweeper calls `retain_recent` until the workers are done.
/// `during` runs on one more thread alongside them (the moving clock, or nothing) and is told
/// when the workers are done. All threads start together.
fn phase(limiter: &Keyed, keys: u64, tries: u64, during: impl FnOnce(&AtomicBool) + Send) -> Phase {
    let admitted: Vec<AtomicU64> = (0..keys).map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    let evicted = AtomicUsize::new(0);
    let start = Barrier::new(WORKERS as usize + 2);

    thread::scope(|s| {
        s.spawn(|| {
            start.wait();
            // Acquire pairs with the Release below: once done, no check is still running.
            while !done.load(Ordering::Acquire) {
                evicted.fetch_add(limiter.retain_recent(), Ordering::Relaxed);
            }
        });
        s.spawn(|| {
            start.wait();
            during(&done);
        });

        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (admitted, start) = (&admitted, &start);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..tries {
                        for i in 0..keys {
                            let i = (i + w * 31) % keys;
                            let key = if w % 2 == 0 { i } else { keys - 1 - i };
                            if limiter.check_key(&key).is_ok() {
                                admitted[key as usize].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });

    Phase {
        admitted: admitted.into_iter().map(AtomicU64::into_inner).collect(),
        evicted: evicted.into_inner(),
    }
}

/// Frozen time, in phases. The first admits exactly the burst per key. Before each later one
/// the clock moves past a full refill, so every bucket is full and idle: the sweeper evicts them
/// while the workers use them again, and each key still admits exactly the burst, whether it
/// ends on its old bucket or on a fresh one.
fn frozen_clock_exact_counts(keys: u64, burst: u64, rounds: u32) {
    let clock = ManualClock::new();
    clock.set(Duration::from_secs(10));
    let quota = Quota::per_second(burst).unwrap();
    let limiter = keyed(quota, &clock);
    // Every worker could take the whole burst of every key alone.
    let tries = burst;
    // A full refill (one period) plus the sweeper's one-step margin.
    let refill = quota.period() + Duration::from_millis(2);

    let first = phase(&limiter, keys, tries, |_| {});
    let mut evicted = first.evicted;
    assert!(first.admitted.iter().all(|&n| n == burst), "first phase");
    // The sweeper may still have evicted a few buckets here: one that a worker has just
    // inserted holds the word of a full bucket until its first CAS, so it is full and idle. The
    // worker's CAS then finds the tombstone and it retries on a fresh bucket; the counts above
    // hold either way.
    assert_eq!(limiter.len() as u64, keys);

    for round in 1..=rounds {
        clock.advance(refill);
        let next = phase(&limiter, keys, tries, |_| {});
        assert!(next.admitted.iter().all(|&n| n == burst), "round {round}");
        assert_eq!(limiter.len() as u64, keys);
        evicted += next.evicted;
    }

    // Every key was used at this instant: none is idle. Once they refill, all are.
    assert_eq!(limiter.retain_recent(), 0);
    clock.advance(refill);
    assert_eq!(limiter.retain_recent() as u64, keys);
    assert!(limiter.is_empty());

    println!(
        "frozen clock, {keys} keys, burst {burst}: the sweeper evicted {evicted} buckets \
         during {} rounds of checks",
        rounds + 1
    );
}

#[test]
fn frozen_clock_few_keys_admit_exactly_the_burst() {
    frozen_clock_exact_counts(4, 64, 50);
}

#[test]
fn frozen_clock_many_keys_admit_exactly_the_burst() {
    frozen_clock_exact_counts(5_000, 4, 3);
}

/// One thread moves the clock in small steps while the workers check and the sweeper evicts.
/// However the threads interleave, no key admits more than the burst plus what the elapsed
/// time refills (GCRA's conformance bound; time is counted down to whole units, never early).
fn moving_clock_conformance(keys: u64, tries: u64) {
    let clock = ManualClock::new();
    let start = Duration::from_secs(10);
    clock.set(start);
    // 1000 per second with a burst of 10: a token every millisecond, exactly 10^6 ns.
    let quota = Quota::per_second(1_000).unwrap().with_burst(10).unwrap();
    let limiter = keyed(quota, &clock);

    let ticker = clock.clone();
    let run = phase(&limiter, keys, tries, move |done| {
        // 7 us a step, until the workers are done or the clock has moved 7 s.
        for _ in 0..1_000_000 {
            if done.load(Ordering::Relaxed) {
                break;
            }
            ticker.advance(Duration::from_micros(7));
        }
    });

    let elapsed = clock.elapsed() - start;
    let per_token = quota.replenish_interval().as_nanos();
    let bound = quota.burst() + (elapsed.as_nanos() / per_token) as u64;
    let most = run.admitted.iter().copied().max().unwrap();
    let total: u64 = run.admitted.iter().sum();
    println!(
        "moving clock, {keys} keys: {elapsed:?} elapsed, at most {most} admitted per key \
         (bound {bound}), {total} in all, {} evicted during the run",
        run.evicted
    );
    for (key, &n) in run.admitted.iter().enumerate() {
        assert!(n <= bound, "key {key}: {n} admitted, bound {bound}");
    }
    assert!(
        run.admitted.iter().all(|&n| n >= 1),
        "every key starts full"
    );
}

#[test]
fn moving_clock_few_keys_stay_within_the_rate() {
    moving_clock_conformance(4, 2_000);
}

#[test]
fn moving_clock_many_keys_stay_within_the_rate() {
    moving_clock_conformance(2_000, 10);
}

/// Eight threads on one key at one instant: exactly the capacity goes out, on a keyed and on a
/// direct limiter.
#[test]
fn eight_threads_on_one_key_admit_exactly_the_capacity() {
    const CAPACITY: u64 = 1_000;
    let clock = ManualClock::new();
    clock.set(Duration::from_secs(10));
    let quota = Quota::per_minute(CAPACITY).unwrap();

    let keyed = keyed(quota, &clock);
    let direct = RateLimiter::with_clock(quota, clock.clone());
    let (from_keyed, from_direct) = (AtomicU64::new(0), AtomicU64::new(0));
    thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                for _ in 0..CAPACITY {
                    if keyed.check_key(&7).is_ok() {
                        from_keyed.fetch_add(1, Ordering::Relaxed);
                    }
                    if direct.check().is_ok() {
                        from_direct.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(from_keyed.into_inner(), CAPACITY);
    assert_eq!(from_direct.into_inner(), CAPACITY);
    assert_eq!(keyed.len(), 1);
}
