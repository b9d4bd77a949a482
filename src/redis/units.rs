//! The integer units the Redis script counts in, and the way back to the crate's own units.
//!
//! Lua numbers are IEEE doubles, exact for integers below `2^53`. The script therefore keeps a
//! bucket in units chosen per quota so that both one microsecond (the resolution of Redis
//! `TIME`) and one token are whole numbers of units:
//!
//! - `per_us = 1000 * n / g` units per microsecond and `per_token = P / g` units per token, with
//!   `P` the period in nanoseconds and `g = gcd(1000 * n, P)`. One token is then exactly
//!   `P / n` of time, with no rounding: 3/s is 3 units per microsecond and 1,000,000 per token.
//! - The stored state is `(t, d)`: `t` the server time of the last write in microseconds since
//!   the Unix epoch (below `2^53` until the year 2255), `d = TAT - t` in units, at most
//!   `tau = burst * per_token`.
//! - Elapsed microseconds are capped at `cap = ceil(tau / per_us)` before multiplying, since any
//!   longer gap empties `d` anyway; so every value the script computes is at most
//!   `2 * tau + per_us`, and [`Units::new`] refuses quotas where that, or `1000 * per_us`,
//!   reaches `2^53`.
//!
//! Within those bounds every addition, subtraction, product, comparison and floored division in
//! the script is exact, and the script decides exactly as [`gcra::admit`](crate::gcra::admit)
//! would on a clock read in whole microseconds.

use crate::outcome::{Denied, Snapshot};
use crate::Quota;

/// Integers up to here are exact in a Lua number (an IEEE double).
pub(crate) const EXACT: u128 = 1 << 53;

/// The script's units for one quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Units {
    /// Units per microsecond of server time.
    pub(crate) per_us: u64,
    /// Units per token.
    pub(crate) per_token: u64,
    /// The capacity in units, `burst * per_token`.
    pub(crate) tau: u64,
    /// Elapsed microseconds past which any state is a full bucket.
    pub(crate) cap_us: u64,
}

impl Units {
    /// The units for `quota`, or `None` when its arithmetic would leave the exact range.
    pub(crate) fn new(quota: Quota) -> Option<Units> {
        let per_us_num = 1000 * u128::from(quota.count());
        let period = quota.period().as_nanos();
        let g = gcd(per_us_num, period);
        let per_us = per_us_num / g;
        let per_token = period / g;
        let tau = u128::from(quota.burst()) * per_token;

        if 2 * tau + per_us >= EXACT || 1000 * per_us >= EXACT {
            return None;
        }
        Some(Units {
            per_us: per_us as u64,
            per_token: per_token as u64,
            tau: tau as u64,
            cap_us: tau.div_ceil(per_us) as u64,
        })
    }

    /// A TAT `d` units ahead of now, in the quota's own time units, rounded up (never more
    /// tokens than the script saw).
    fn quota_units(&self, quota: Quota, d: u64) -> u64 {
        let d = d.min(self.tau);
        let units = (u128::from(d) * u128::from(quota.unit())).div_ceil(u128::from(self.per_token));
        // `d <= tau` makes this at most `burst * unit`, which fits 62 bits.
        units as u64
    }

    /// The bucket after an admitted request left it `d` units ahead of now.
    pub(crate) fn snapshot(&self, quota: Quota, d: u64) -> Snapshot {
        Snapshot::new(quota, self.quota_units(quota, d), 0, 0)
    }

    /// A refusal of `tokens` against a bucket `d` units ahead of now.
    ///
    /// The caller has checked `d + tokens * per_token > tau`, which keeps the retry hint's
    /// arithmetic in range.
    pub(crate) fn denied(&self, quota: Quota, d: u64, tokens: u64) -> Denied {
        Denied::new(
            quota,
            self.quota_units(quota, d),
            tokens * quota.unit(),
            0,
            0,
        )
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The script's step, written again in Rust for the tests: the state `(t, d)` (absent for a
/// fresh key) at server time `now` microseconds, a request for `cost` tokens that takes up to
/// `want`. Returns `(allowed, granted, d, new state)`.
#[cfg(test)]
pub(crate) fn step(
    units: Units,
    state: Option<(u64, u64)>,
    now: u64,
    cost: u64,
    want: u64,
) -> (bool, u64, u64, Option<(u64, u64)>) {
    let (now, d) = match state {
        None => (now, 0),
        Some((t, d)) => {
            let now = now.max(t);
            let elapsed = (now - t).min(units.cap_us);
            (now, d.saturating_sub(elapsed * units.per_us))
        }
    };
    if d + cost * units.per_token > units.tau {
        return (false, 0, d, state);
    }
    let granted = ((units.tau - d) / units.per_token).min(want);
    let nd = d + granted * units.per_token;
    let state = if granted > 0 { Some((now, nd)) } else { state };
    (true, granted, nd, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra;
    use core::time::Duration;
    use proptest::prelude::*;

    #[test]
    fn usual_quotas_have_small_exact_units() {
        let u = Units::new(Quota::per_second(3).unwrap()).unwrap();
        assert_eq!((u.per_us, u.per_token, u.tau), (3, 1_000_000, 3_000_000));
        let u = Units::new(Quota::per_second(150).unwrap()).unwrap();
        assert_eq!((u.per_us, u.per_token), (3, 20_000));
        let u = Units::new(Quota::per_minute(100).unwrap()).unwrap();
        assert_eq!((u.per_us, u.per_token), (1, 600_000));
        let u = Units::new(Quota::new(1_000_000_000, Duration::from_secs(1)).unwrap()).unwrap();
        assert_eq!((u.per_us, u.per_token), (1000, 1));
        // One token a century, burst 1, still fits.
        let century = Duration::from_secs(100 * 365 * 86_400);
        assert!(Units::new(Quota::new(1, century).unwrap()).is_some());
    }

    #[test]
    fn quotas_past_the_exact_range_are_refused() {
        let century = Duration::from_secs(100 * 365 * 86_400);
        let q = Quota::new(1, century).unwrap().with_burst(10).unwrap();
        assert_eq!(Units::new(q), None);
        let q = Quota::new(999_999_937, Duration::from_nanos(1_000_000_007)).unwrap();
        assert_eq!(Units::new(q), None);
    }

    #[test]
    fn denial_hint_counts_the_partial_token() {
        let quota = Quota::per_second(10).unwrap().with_burst(1).unwrap();
        let u = Units::new(quota).unwrap();
        // 30 ms into the 100 ms interval: 70 ms to go.
        let d = u.per_token - 30_000 * u.per_us;
        let denied = u.denied(quota, d, 1);
        assert_eq!(denied.retry_after(), Duration::from_millis(70));
        assert_eq!(denied.remaining(), 0);
        let s = u.snapshot(quota, 0);
        assert_eq!((s.remaining(), s.reset_after()), (1, Duration::ZERO));
    }

    /// A quota whose token interval is whole nanoseconds, so the in-process bucket is exact.
    fn exact_quota() -> impl Strategy<Value = Quota> {
        (1u64..=1000, 1u64..=2_000_000, 1u64..=50).prop_map(|(n, interval_us, burst)| {
            Quota::new(n, Duration::from_micros(interval_us * n))
                .unwrap()
                .with_burst(burst)
                .unwrap()
        })
    }

    proptest! {
        /// On a clock read in whole microseconds the script's arithmetic decides exactly as the
        /// in-process bucket, and its hints agree to the nanosecond.
        #[test]
        fn script_step_matches_in_process_bucket(
            quota in exact_quota(),
            events in prop::collection::vec((0u64..3_000_000, 0u64..=3), 1..200),
        ) {
            let units = Units::new(quota).unwrap();
            let start_us = 1_700_000_000_000_000u64;
            let (mut state, mut tat, mut elapsed_us) = (None, 0u64, 0u64);
            for (dt, cost) in events {
                elapsed_us += dt;
                let cost = cost.min(quota.burst());
                let now = quota.units_at(elapsed_us * 1000);
                let local = gcra::admit(tat, now, cost * quota.unit(), quota.tau());

                let (ok, granted, d, next) = step(units, state, start_us + elapsed_us, cost, cost);
                prop_assert_eq!(ok, local.is_some());
                match local {
                    Some(t) => {
                        tat = t;
                        prop_assert_eq!(granted, cost);
                        let s = units.snapshot(quota, d);
                        let l = crate::outcome::Snapshot::new(quota, t, elapsed_us * 1000, now);
                        prop_assert_eq!(s.remaining(), l.remaining());
                        prop_assert_eq!(s.reset_after(), l.reset_after());
                    }
                    None => {
                        let r = units.denied(quota, d, cost);
                        let l = crate::outcome::Denied::new(
                            quota, tat, cost * quota.unit(), elapsed_us * 1000, now,
                        );
                        prop_assert_eq!(r.retry_after(), l.retry_after());
                    }
                }
                state = next;
            }
        }

        /// A lease takes what is there up to its size, never less than the request, and never
        /// past capacity.
        #[test]
        fn lease_takes_at_most_what_is_there(
            quota in exact_quota(),
            events in prop::collection::vec((0u64..3_000_000, 1u64..=3, 0u64..=8), 1..100),
        ) {
            let units = Units::new(quota).unwrap();
            let (mut state, mut now) = (None, 1_700_000_000_000_000u64);
            for (dt, cost, extra) in events {
                now += dt;
                let cost = cost.min(quota.burst());
                let want = (cost + extra).min(quota.burst());
                let (ok, granted, d, next) = step(units, state, now, cost, want);
                if ok {
                    prop_assert!(granted >= cost && granted <= want);
                    prop_assert!(d <= units.tau);
                }
                state = next;
            }
        }
    }
}
