//! hotlimit against a textbook token bucket written with exact integer arithmetic.

use hotlimit::{CheckError, ManualClock, Quota, RateLimiter};
use proptest::prelude::*;
use std::time::Duration;

/// The textbook bucket: `level` is tokens times the period in nanoseconds, so refill is exact.
struct Reference {
    count: u128,
    period: u128,
    burst: u128,
    level: u128,
    last: u128,
}

enum Answer {
    Admitted { remaining: u64 },
    Denied { retry_after: Duration },
    Impossible,
}

impl Reference {
    fn new(quota: Quota) -> Self {
        let period = quota.period().as_nanos();
        let burst = quota.burst() as u128;
        Self {
            count: quota.count() as u128,
            period,
            burst,
            level: burst * period,
            last: 0,
        }
    }

    fn check(&mut self, now: u128, cost: u64) -> Answer {
        let cost = cost as u128;
        if cost > self.burst {
            return Answer::Impossible;
        }
        let refill = (now - self.last) * self.count;
        self.level = (self.level + refill).min(self.burst * self.period);
        self.last = now;

        let need = cost * self.period;
        if self.level >= need {
            self.level -= need;
            Answer::Admitted {
                remaining: (self.level / self.period) as u64,
            }
        } else {
            let wait = (need - self.level).div_ceil(self.count);
            Answer::Denied {
                retry_after: Duration::from_nanos(wait as u64),
            }
        }
    }
}

/// Quotas whose token time is a whole number of nanoseconds, so that both buckets count time in
/// the same steps and every decision must agree to the nanosecond.
fn exact_quota() -> impl Strategy<Value = Quota> {
    (1u64..1_000, 1u64..100_000_000, 1u64..50).prop_map(|(count, per_token, burst)| {
        Quota::new(count, Duration::from_nanos(count * per_token))
            .unwrap()
            .with_burst(burst)
            .unwrap()
    })
}

/// Arrival gaps: many together, many about one token apart, some very long.
fn gaps() -> impl Strategy<Value = Vec<(u64, u64)>> {
    let gap = prop_oneof![
        4 => Just(0u64),
        4 => 0u64..1_000,
        6 => 0u64..200_000_000,
        1 => 0u64..1_000_000_000_000_000,
    ];
    prop::collection::vec((gap, 0u64..60), 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decisions_match_the_textbook_bucket(quota in exact_quota(), steps in gaps()) {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_clock(quota, clock.clone());
        let mut reference = Reference::new(quota);
        let mut now = 0u64;

        for (gap, cost) in steps {
            now = now.saturating_add(gap).min(1 << 61);
            clock.set(Duration::from_nanos(now));
            match (limiter.check_n(cost), reference.check(now as u128, cost)) {
                (Ok(snapshot), Answer::Admitted { remaining }) => {
                    prop_assert_eq!(snapshot.remaining(), remaining);
                }
                (Err(CheckError::Denied(denied)), Answer::Denied { retry_after }) => {
                    prop_assert_eq!(denied.retry_after(), retry_after);
                }
                (Err(CheckError::InsufficientCapacity(_)), Answer::Impossible) => {}
                (ours, _) => prop_assert!(false, "{:?} at {} cost {}: {:?}", quota, now, cost, ours),
            }
        }
    }

    #[test]
    fn any_quota_keeps_the_conformance_bound(
        count in 1u64..10_000,
        period_ms in 1u64..100_000,
        burst in 1u64..100,
        steps in gaps(),
    ) {
        let quota = Quota::new(count, Duration::from_millis(period_ms)).unwrap();
        let quota = quota.with_burst(burst).unwrap();
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_clock(quota, clock.clone());
        let period = quota.period().as_nanos();

        let mut now = 0u64;
        let mut admitted: Vec<(u128, u128)> = Vec::new();
        for (gap, cost) in steps {
            now = now.saturating_add(gap).min(1 << 61);
            clock.set(Duration::from_nanos(now));
            if limiter.check_n(cost).is_ok() && cost > 0 {
                admitted.push((now as u128, cost as u128));
            }
        }

        for (i, &(start, _)) in admitted.iter().enumerate() {
            let mut total = 0;
            for &(end, cost) in &admitted[i..] {
                total += cost;
                let bound = burst as u128 + count as u128 * (end - start) / period;
                prop_assert!(total <= bound, "{} in [{}, {}] > {}", total, start, end, bound);
            }
        }
    }
}
