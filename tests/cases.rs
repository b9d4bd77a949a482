//! Faults that shipped in public rate limiters, each pinned as a scenario on a manual clock.

use hotlimit::{CheckError, KeyedRateLimiter, ManualClock, Quota, RateLimiter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn manual(quota: Quota) -> (RateLimiter<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (RateLimiter::with_clock(quota, clock.clone()), clock)
}

fn quota(count: u64, period: Duration, burst: u64) -> Quota {
    Quota::new(count, period)
        .unwrap()
        .with_burst(burst)
        .unwrap()
}

fn admitted_of(limiter: &RateLimiter<ManualClock>, tries: usize) -> usize {
    (0..tries).filter(|_| limiter.check().is_ok()).count()
}

#[test]
fn idle_refill_is_capped_at_capacity() {
    let (limiter, clock) = manual(quota(1, Duration::from_millis(100), 5));
    clock.advance(Duration::from_secs(10));
    assert_eq!(admitted_of(&limiter, 200), 5);
}

#[test]
fn a_long_idle_gap_is_credited_once() {
    let (limiter, clock) = manual(quota(1, Duration::from_secs(1), 1));
    clock.advance(Duration::from_secs(30));
    assert_eq!(admitted_of(&limiter, 1_000), 1);

    clock.advance(Duration::from_nanos(999_999_999));
    assert_eq!(admitted_of(&limiter, 1_000), 0);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(admitted_of(&limiter, 1_000), 1);
}

#[test]
fn slack_is_not_applied_again_and_again() {
    let (limiter, clock) = manual(quota(1, Duration::from_secs(1), 2));
    assert!(limiter.check().is_ok());

    clock.set(Duration::from_secs(2));
    assert_eq!(admitted_of(&limiter, 25), 2);
    for second in 3..10 {
        clock.set(Duration::from_secs(second));
        assert_eq!(admitted_of(&limiter, 25), 1, "at {second} s");
    }
}

#[test]
fn cost_above_capacity_fails_at_once_and_forever() {
    let (limiter, clock) = manual(Quota::per_second(5).unwrap());
    for _ in 0..5 {
        let err = limiter.check_n(6).unwrap_err();
        assert!(matches!(err, CheckError::InsufficientCapacity(c) if c.capacity == 5));
        clock.advance(Duration::from_secs(100));
    }

    let (tiny, _clock) = manual(Quota::per_second(1).unwrap());
    for _ in 0..1_000 {
        assert!(matches!(
            tiny.check_n(5),
            Err(CheckError::InsufficientCapacity(_))
        ));
    }
    assert!(tiny.check().is_ok(), "the failed calls took nothing");
}

#[test]
fn a_bucket_starts_full() {
    let (limiter, clock) = manual(Quota::per_second(10).unwrap());
    assert_eq!(admitted_of(&limiter, 10), 10);
    for ms in [100, 200, 300, 400, 500] {
        clock.set(Duration::from_millis(ms));
        assert_eq!(admitted_of(&limiter, 1), 1, "at {ms} ms");
    }
}

#[test]
fn a_high_rate_after_a_long_idle_does_not_overflow() {
    let (limiter, clock) = manual(Quota::per_second(1_000_000).unwrap());
    clock.advance(Duration::from_secs(12 * 3_600));
    assert_eq!(limiter.check().unwrap().remaining(), 999_999);
}

#[test]
fn one_token_per_century_denies_the_second_request() {
    let (limiter, clock) = manual(quota(1, Duration::from_secs(100 * 365 * 86_400), 1));
    assert!(limiter.check().is_ok());
    clock.advance(Duration::from_secs(1));
    let denied = limiter.check().unwrap_err();
    assert_eq!(
        denied.retry_after(),
        Duration::from_secs(100 * 365 * 86_400 - 1)
    );
}

#[test]
fn remaining_counts_tokens_refilled_since() {
    // 5 per minute is one token every 12 s.
    let (limiter, clock) = manual(Quota::per_minute(5).unwrap());
    assert_eq!(limiter.check_n(4).unwrap().remaining(), 1);
    assert_eq!(limiter.check().unwrap().remaining(), 0);

    // Two tokens refilled, one taken.
    clock.set(Duration::from_secs(24));
    assert_eq!(limiter.check().unwrap().remaining(), 1);

    // Two minutes on, the bucket is full again (capped at 5), one taken.
    clock.set(Duration::from_secs(144));
    assert_eq!(limiter.check().unwrap().remaining(), 4);
}

#[test]
fn retry_hint_counts_the_partial_token() {
    let (limiter, clock) = manual(quota(1, Duration::from_millis(500), 1));
    assert!(limiter.check().is_ok());
    clock.set(Duration::from_millis(100));
    let denied = limiter.check().unwrap_err();
    assert_eq!(denied.retry_after(), Duration::from_millis(400));
    assert_eq!(denied.retry_after_secs(), 1);
}

#[test]
fn rates_finer_than_the_clock_do_not_drift() {
    // 3 per second for a whole simulated hour.
    let (limiter, clock) = manual(Quota::per_second(3).unwrap());
    for i in 0..3 * 3_600u64 {
        clock.set(Duration::from_nanos((i * 1_000_000_000).div_ceil(3)));
        assert!(limiter.check().is_ok(), "3/s refused request {i}");
    }

    // 7e8 per second: runs of two million requests at the start, middle and end of the hour.
    let n = 700_000_000u128;
    let (limiter, clock) = manual(Quota::per_second(n as u64).unwrap());
    for start_secs in [0u128, 1_800, 3_599] {
        let start = start_secs * n;
        for i in start..start + 2_000_000 {
            clock.set(Duration::from_nanos((i * 1_000_000_000).div_ceil(n) as u64));
            assert!(limiter.check().is_ok(), "7e8/s refused request {i}");
        }
    }
}

#[test]
fn readings_alternating_across_cores_spend_the_burst_once() {
    let clock = ManualClock::new();
    let keyed = KeyedRateLimiter::<&str, _>::with_clock(
        Quota::per_second(1).unwrap().with_burst(10).unwrap(),
        clock.clone(),
    );
    for i in 0..10 {
        let ms = if i % 2 == 0 { 10_000 } else { 8_400 };
        clock.set(Duration::from_millis(ms));
        assert!(keyed.check_key(&"fresh").is_ok(), "request {i} at {ms} ms");
    }
    assert!(keyed.check_key(&"fresh").is_err());
}

#[test]
fn reading_order_never_beats_a_monotonic_clock() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (count, burst) = (5u64, 3u64);

    for _ in 0..50 {
        let (limiter, clock) = manual(quota(count, Duration::from_secs(1), burst));
        let mut truth = 0u64;
        let mut latest = 0u64;
        let mut admitted = Vec::new();

        // Readings lag the true time by up to two seconds, in any order.
        for _ in 0..400 {
            truth += rng.random_range(0..300_000_000);
            let reading = truth.saturating_sub(rng.random_range(0..2_000_000_000));
            latest = latest.max(reading);
            clock.set(Duration::from_nanos(reading));
            if limiter.check().is_ok() {
                admitted.push(latest);
            }
        }

        // Judged on the latest reading seen, admissions keep the monotonic bound.
        for (i, &start) in admitted.iter().enumerate() {
            for (count_so_far, &end) in (1u64..).zip(&admitted[i..]) {
                let bound = burst + count * (end - start) / 1_000_000_000;
                assert!(
                    count_so_far <= bound,
                    "{count_so_far} admitted in [{start}, {end}]"
                );
            }
        }
    }
}

#[test]
fn a_refused_request_writes_nothing() {
    let (limiter, clock) = manual(quota(10, Duration::from_secs(1), 2));
    clock.set(Duration::from_secs(1));
    let before = limiter.check_n(0).unwrap();
    assert!(matches!(
        limiter.check_n(3),
        Err(CheckError::InsufficientCapacity(_))
    ));
    assert_eq!(limiter.check_n(0).unwrap(), before);

    assert!(limiter.check_n(2).is_ok());
    let empty = limiter.check_n(0).unwrap();
    for _ in 0..10 {
        assert!(limiter.check().is_err());
    }
    assert_eq!(limiter.check_n(0).unwrap(), empty);
}

#[test]
fn one_token_many_threads_one_winner() {
    for _ in 0..50 {
        let (limiter, clock) = manual(quota(1, Duration::from_millis(100), 1));
        assert!(limiter.check().is_ok());
        clock.set(Duration::from_millis(100));

        let limiter = Arc::new(limiter);
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, barrier) = (limiter.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    limiter.check().is_ok()
                })
            })
            .collect();
        let admitted = threads.into_iter().map(|t| t.join().unwrap());
        assert_eq!(admitted.filter(|&ok| ok).count(), 1);
    }
}

#[test]
fn refill_racing_takes_admits_no_more_than_the_refills() {
    let (limiter, clock) = manual(quota(1, Duration::from_millis(1), 1));
    let limiter = Arc::new(limiter);
    let attempts = Arc::new(AtomicU64::new(0));
    let admitted = Arc::new(AtomicU64::new(0));

    // Eight threads share 16,000 attempts; every sixteenth attempt first moves the clock 1 ms,
    // so refills land between, during and after the other threads' compare-and-swaps.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, clock) = (limiter.clone(), clock.clone());
            let (attempts, admitted) = (attempts.clone(), admitted.clone());
            std::thread::spawn(move || loop {
                let n = attempts.fetch_add(1, Ordering::Relaxed);
                if n >= 16_000 {
                    break;
                }
                if n % 16 == 0 {
                    clock.advance(Duration::from_millis(1));
                }
                if limiter.check().is_ok() {
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    // One simulated second: the initial token plus one per millisecond at most.
    assert_eq!(clock.elapsed(), Duration::from_secs(1));
    let admitted = admitted.load(Ordering::Relaxed);
    assert!((1..=1_001).contains(&admitted), "admitted {admitted}");
}
