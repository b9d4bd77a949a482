//! The bucket's arithmetic, apart from any atomic.
//!
//! A bucket is one number, its theoretical arrival time `tat`: the instant (in the quota's time
//! units, see [`Quota`](crate::Quota)) at which it would be full again. With `tau = C * M`
//! (capacity times units per token), the bucket holds `(now + tau - max(tat, now)) / M` tokens.
//! `tat == 0` is a full bucket at any time.
//!
//! Every value here stays below `2^63`: `now` is clamped to [`MAX_NOW`], `tau` and every cost are
//! at most `2^62 - 1`, and an admitted `tat` is at most `now + tau`.

/// The largest instant the limiter counts to, in time units (at least 146 years of uptime).
///
/// Readings past it are clamped: a bucket no longer refills past this point.
pub(crate) const MAX_NOW: u64 = 1 << 62;

/// The largest `capacity * units_per_token` a quota may have.
pub(crate) const MAX_TAU: u64 = (1 << 62) - 1;

/// Decides a request of `cost` units against `tat` at `now`.
///
/// Returns the new `tat` when the request fits, `None` when it does not. A denial changes
/// nothing, so the caller keeps the old `tat`.
#[inline]
pub(crate) fn admit(tat: u64, now: u64, cost: u64, tau: u64) -> Option<u64> {
    // A `tat` in the past is a full bucket: count from `now`, never credit past capacity.
    let next = tat.max(now) + cost;

    // The request fits when the bucket, after paying, is still within its tolerance.
    if next <= now + tau {
        Some(next)
    } else {
        None
    }
}

/// Whole tokens in a bucket with `tat` at `now`, at most the capacity.
pub(crate) fn tokens(tat: u64, now: u64, tau: u64, unit: u64) -> u64 {
    (now + tau).saturating_sub(tat.max(now)) / unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_bucket_pays_from_now() {
        assert_eq!(admit(0, 100, 10, 30), Some(110));
        assert_eq!(tokens(0, 100, 30, 10), 3);
    }

    #[test]
    fn request_that_does_not_fit_is_denied() {
        assert_eq!(admit(125, 100, 10, 30), None);
        assert_eq!(admit(120, 100, 10, 30), Some(130));
    }

    #[test]
    fn stale_now_sees_no_more_tokens() {
        // At 100 the bucket holds 1 token (tat 120); an older reading must not see more.
        assert_eq!(tokens(120, 100, 30, 10), 1);
        assert_eq!(tokens(120, 95, 30, 10), 0);
        assert_eq!(admit(120, 95, 10, 30), None);
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(admit(MAX_NOW + MAX_TAU, MAX_NOW, MAX_TAU, MAX_TAU), None);
        assert_eq!(admit(0, MAX_NOW, MAX_TAU, MAX_TAU), Some(MAX_NOW + MAX_TAU));
        assert_eq!(tokens(0, MAX_NOW, MAX_TAU, 1), MAX_TAU);
    }
}
