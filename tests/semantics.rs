//! The token-bucket properties every limiter keeps (DESIGN section 1), on a manual clock.

use hotlimit::{CheckError, KeyedRateLimiter, ManualClock, Quota, RateLimiter};
use std::time::Duration;

const SECOND: u64 = 1_000_000_000;

fn manual(quota: Quota) -> (RateLimiter<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (RateLimiter::with_clock(quota, clock.clone()), clock)
}

/// Admissions of cost 1 at the current instant until the first refusal.
fn drain(limiter: &RateLimiter<ManualClock>) -> u64 {
    let mut admitted = 0;
    while limiter.check().is_ok() {
        admitted += 1;
        assert!(admitted <= hotlimit::MAX_BURST, "the bucket never ran dry");
    }
    admitted
}

#[test]
fn exact_burst_after_any_idle_gap() {
    let gaps = [
        0,
        1,
        SECOND,
        86_400 * SECOND,
        365 * 86_400 * SECOND,
        100 * 365 * 86_400 * SECOND,
    ];
    for burst in [1, 2, 5, 100, 10_000] {
        let (limiter, clock) = manual(Quota::per_second(1).unwrap().with_burst(burst).unwrap());
        for gap in gaps {
            clock.advance(Duration::from_nanos(gap));
            clock.advance(Duration::from_secs(burst));
            assert_eq!(drain(&limiter), burst, "burst {burst}, gap {gap} ns");
        }
    }
}

#[test]
fn a_client_paced_at_the_rate_is_never_refused() {
    let day = Duration::from_secs(86_400);
    let quotas = [
        Quota::new(1, day).unwrap(),
        Quota::per_hour(1).unwrap(),
        Quota::per_minute(7).unwrap(),
        Quota::per_second(3).unwrap(),
        Quota::new(13, Duration::from_millis(17)).unwrap(),
        Quota::per_second(999_999_937).unwrap(),
        Quota::per_second(1_000_000_000).unwrap(),
    ];
    for quota in quotas {
        let quota = quota.with_burst(2).unwrap();
        let (n, period) = (quota.count() as u128, quota.period().as_nanos());

        // Request i comes at ceil(i * P / n); runs start at several instants so that fast rates
        // are tested far from the origin too.
        for start_secs in [0u128, 3_600, 30 * 86_400] {
            let (limiter, clock) = manual(quota);
            let start = (start_secs * 1_000_000_000 * n).div_ceil(period);
            for i in start..start + 20_000 {
                clock.set(Duration::from_nanos((i * period).div_ceil(n) as u64));
                assert!(limiter.check().is_ok(), "{quota} refused request {i}");
            }
        }
    }
}

#[test]
fn burst_of_one_at_the_rate_passes_when_the_period_is_exact() {
    let (limiter, clock) = manual(Quota::per_minute(100).unwrap().with_burst(1).unwrap());
    for i in 0..10_000u64 {
        clock.set(Duration::from_millis(600 * i));
        assert!(limiter.check().is_ok(), "request {i}");
    }
}

#[test]
fn admitted_cost_never_exceeds_burst_plus_rate_times_window() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    for _ in 0..30 {
        let count = rng.random_range(1..50);
        let period = Duration::from_millis(rng.random_range(1..5_000));
        let burst = rng.random_range(1..20);
        let quota = Quota::new(count, period)
            .unwrap()
            .with_burst(burst)
            .unwrap();
        let (limiter, clock) = manual(quota);

        // Random arrivals, many of them too early; record what passed.
        let mut admitted: Vec<(u128, u64)> = Vec::new();
        let mut now = 0u64;
        for _ in 0..600 {
            now += rng.random_range(0..period.as_nanos() as u64 / count * 2 + 1);
            clock.set(Duration::from_nanos(now));
            let cost = rng.random_range(1..=burst);
            if limiter.check_n(cost).is_ok() {
                admitted.push((now as u128, cost));
            }
        }

        // Every window [a, b] between two admissions holds at most C + n * (b - a) / P.
        for (i, &(start, _)) in admitted.iter().enumerate() {
            let mut cost = 0;
            for &(end, c) in &admitted[i..] {
                cost += c as u128;
                let bound = burst as u128 + count as u128 * (end - start) / period.as_nanos();
                assert!(
                    cost <= bound,
                    "{quota}: {cost} in [{start}, {end}] > {bound}"
                );
            }
        }
    }
}

#[test]
fn a_clock_stepped_back_adds_no_tokens() {
    let (limiter, clock) = manual(Quota::per_second(1).unwrap().with_burst(3).unwrap());
    clock.set(Duration::from_secs(10));
    assert_eq!(drain(&limiter), 3);

    // Back, then forward to the same instant: the interval is not credited twice.
    clock.set(Duration::from_secs(5));
    assert!(limiter.check().is_err());
    clock.set(Duration::from_secs(10));
    assert!(limiter.check().is_err());

    // One token a second later, then back and forward again: still one token in all.
    clock.set(Duration::from_secs(11));
    assert_eq!(drain(&limiter), 1);
    clock.set(Duration::from_millis(10_500));
    assert!(limiter.check().is_err());
    clock.set(Duration::from_secs(11));
    assert!(limiter.check().is_err());
}

#[test]
fn a_stale_reading_refuses_nothing_that_is_due() {
    // Readings from a core that lags: the tokens already seen stay usable.
    let (limiter, clock) = manual(Quota::per_second(1).unwrap().with_burst(4).unwrap());
    clock.set(Duration::from_secs(100));
    assert!(limiter.check().is_ok());
    clock.set(Duration::from_micros(99_999_990));
    assert_eq!(drain(&limiter), 3);
}

#[test]
fn retry_after_is_exact_and_counts_the_partial_token() {
    let quota = Quota::new(1, Duration::from_millis(500))
        .unwrap()
        .with_burst(1)
        .unwrap();
    let (limiter, clock) = manual(quota);
    assert!(limiter.check().is_ok());

    clock.set(Duration::from_millis(100));
    let denied = limiter.check().unwrap_err();
    assert_eq!(denied.retry_after(), Duration::from_millis(400));

    // One nanosecond early is still too early; on time passes.
    clock.advance(denied.retry_after() - Duration::from_nanos(1));
    assert!(limiter.check().is_err());
    clock.advance(Duration::from_nanos(1));
    assert!(limiter.check().is_ok());
}

#[test]
fn retry_after_for_a_cost_counts_all_missing_tokens() {
    let (limiter, clock) = manual(Quota::per_second(10).unwrap());
    assert!(limiter.check_n(10).is_ok());
    clock.set(Duration::from_millis(250));

    // 2.5 tokens have accrued; 4 are asked for: 1.5 more, 150 ms.
    let err = limiter.check_n(4).unwrap_err();
    let denied = err.as_denied().unwrap();
    assert_eq!(denied.retry_after(), Duration::from_millis(150));
    assert_eq!(denied.remaining(), 2);
    clock.advance(Duration::from_millis(150));
    assert_eq!(limiter.check_n(4).unwrap().remaining(), 0);
}

#[test]
fn retry_hints_on_inexact_rates_are_never_early() {
    for quota in [Quota::per_second(3).unwrap(), Quota::per_minute(7).unwrap()] {
        let quota = quota.with_burst(1).unwrap();
        let (limiter, clock) = manual(quota);
        clock.set(Duration::from_millis(1_234));
        for _ in 0..200 {
            let _ = limiter.check();
            let wait = limiter.check().unwrap_err().retry_after();
            clock.advance(wait - Duration::from_nanos(1));
            assert!(
                limiter.check().is_err(),
                "{quota}: retry_after was not the minimum"
            );
            clock.advance(Duration::from_nanos(1));
            assert!(
                limiter.check().is_ok(),
                "{quota}: retry_after was too early"
            );
        }
    }
}

#[test]
fn extreme_rates_do_not_overflow() {
    // A billion per second, idle for years, then exactly one burst.
    let (limiter, clock) = manual(
        Quota::per_second(1_000_000_000)
            .unwrap()
            .with_burst(3)
            .unwrap(),
    );
    clock.set(Duration::from_secs(5 * 365 * 86_400));
    assert_eq!(drain(&limiter), 3);

    // The largest burst the word holds.
    let quota = Quota::per_second(1)
        .unwrap()
        .with_burst(hotlimit::MAX_BURST)
        .unwrap();
    let (limiter, clock) = manual(quota);
    clock.set(Duration::from_secs(150 * 365 * 86_400));
    assert_eq!(limiter.check_n(hotlimit::MAX_BURST).unwrap().remaining(), 0);
    assert!(limiter.check().is_err());

    // Past the limiter's range (2^62 units) time stops instead of wrapping: one last refill.
    let (limiter, clock) = manual(
        Quota::per_second(1_000_000_000)
            .unwrap()
            .with_burst(3)
            .unwrap(),
    );
    clock.set(Duration::from_nanos(u64::MAX - 1));
    assert_eq!(drain(&limiter), 3);
    clock.set(Duration::from_nanos(u64::MAX));
    assert!(limiter.check().is_err());
}

#[test]
fn a_rate_of_one_per_century_denies_the_second_request() {
    let century = Duration::from_secs(100 * 365 * 86_400);
    let (limiter, clock) = manual(Quota::new(1, century).unwrap());
    assert!(limiter.check().is_ok());
    clock.advance(Duration::from_secs(50 * 365 * 86_400));
    let denied = limiter.check().unwrap_err();
    assert_eq!(denied.retry_after(), Duration::from_secs(50 * 365 * 86_400));
}

#[test]
fn zero_cost_looks_without_taking() {
    let (limiter, clock) = manual(Quota::per_second(4).unwrap());
    clock.set(Duration::from_secs(1));
    let before = limiter.check_n(0).unwrap();
    assert_eq!(before.remaining(), 4);
    assert_eq!(limiter.check_n(0).unwrap(), before);
    assert_eq!(limiter.check().unwrap().remaining(), 3);
}

#[test]
fn snapshot_reports_remaining_and_reset() {
    let (limiter, clock) = manual(Quota::per_second(10).unwrap());
    clock.set(Duration::from_secs(1));
    let snapshot = limiter.check_n(3).unwrap();
    assert_eq!(snapshot.remaining(), 7);
    assert_eq!(snapshot.reset_after(), Duration::from_millis(300));
    assert_eq!(snapshot.quota(), limiter.quota());
}

#[test]
fn keyed_and_direct_limiters_decide_alike() {
    let quota = Quota::per_second(5).unwrap().with_burst(3).unwrap();
    let clock = ManualClock::new();
    let direct = RateLimiter::with_clock(quota, clock.clone());
    let keyed = KeyedRateLimiter::<u64, _>::with_clock(quota, clock.clone());

    for step in 0..2_000u64 {
        clock.set(Duration::from_millis(step * 37 % 1_000 + step * 50));
        let cost = step % 5;
        let a = direct.check_n(cost);
        let b = keyed.check_key_n(&9, cost);
        assert_eq!(a, b, "step {step}");
    }
}

#[test]
fn cost_above_capacity_is_its_own_error_everywhere() {
    let clock = ManualClock::new();
    let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
    let direct = RateLimiter::with_clock(quota, clock.clone());
    let keyed = KeyedRateLimiter::<String, _>::with_clock(quota, clock.clone());

    for _ in 0..3 {
        let err = direct.check_n(6).unwrap_err();
        assert!(
            matches!(err, CheckError::InsufficientCapacity(c) if c.cost == 6 && c.capacity == 5)
        );
        assert!(err.as_denied().is_none());
        let err = keyed.check_key_n("k", u64::MAX).unwrap_err();
        assert!(matches!(err, CheckError::InsufficientCapacity(_)));
        clock.advance(Duration::from_secs(3_600));
    }
    assert_eq!(keyed.len(), 0, "an impossible request creates no bucket");
    assert_eq!(direct.check_n(5).unwrap().remaining(), 0);
}

#[test]
fn limiters_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RateLimiter>();
    shareable::<KeyedRateLimiter<String>>();
    shareable::<RateLimiter<hotlimit::RecentClock>>();
    shareable::<KeyedRateLimiter<u64, ManualClock>>();
}

#[test]
fn the_default_clock_moves() {
    let limiter = RateLimiter::new(
        Quota::per_second(1_000_000_000)
            .unwrap()
            .with_burst(1)
            .unwrap(),
    );
    assert!(limiter.check().is_ok());
    let mut spins = 0u64;
    while limiter.check().is_err() {
        spins += 1;
        assert!(spins < 1_000_000_000, "the quanta clock never advanced");
    }
}
