//! Counting what a policy decided: [`Stats`], and with the `metrics` cargo feature, counters
//! in the [`metrics`](https://docs.rs/metrics) facade.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a layer's policy decided so far, from
/// [`RateLimitLayer::stats`](super::RateLimitLayer::stats).
///
/// With the `metrics` cargo feature the same counts also go to the `metrics` facade as
/// `hotlimit_requests_total{policy, outcome}`, where `outcome` is `allowed`, `denied`,
/// `shadow_denied` or `key_error`. Install the recorder before building the layer: the layer
/// registers its counters once, when it is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests passed on (shadow-mode passes of refusals not included).
    pub allowed: u64,
    /// Requests refused: by a quota, for a cost above the burst, or for lack of room for keys.
    pub denied: u64,
    /// Requests shadow mode passed on although a quota refused them.
    pub shadow_denied: u64,
    /// Requests without a usable key.
    pub key_errors: u64,
}

/// The outcomes counted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    Allowed,
    Denied,
    ShadowDenied,
    KeyError,
}

/// The counters of one layer.
#[derive(Debug)]
pub(crate) struct Counters {
    // Relaxed everywhere: counts publish nothing, and readers want totals, not an order.
    counts: [AtomicU64; 4],
    #[cfg(feature = "metrics")]
    exported: [metrics::Counter; 4],
}

impl Counters {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(policy: &str) -> Self {
        Counters {
            counts: Default::default(),
            #[cfg(feature = "metrics")]
            exported: ["allowed", "denied", "shadow_denied", "key_error"].map(|outcome| {
                metrics::counter!(
                    "hotlimit_requests_total",
                    "policy" => policy.to_owned(),
                    "outcome" => outcome,
                )
            }),
        }
    }

    #[inline]
    pub(crate) fn count(&self, outcome: Outcome) {
        let i = outcome as usize;
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.exported[i].increment(1);
    }

    pub(crate) fn stats(&self) -> Stats {
        let [allowed, denied, shadow_denied, key_errors] =
            self.counts.each_ref().map(|c| c.load(Ordering::Relaxed));
        Stats {
            allowed,
            denied,
            shadow_denied,
            key_errors,
        }
    }
}
