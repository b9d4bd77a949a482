//! The buckets behind a policy: one keyed limiter per quota of each tier, and the
//! all-or-nothing check across a tier's quotas.

use core::time::Duration;

use http::HeaderValue;

use super::headers::{ceil_secs, retry_after_secs, sf_string};
use super::policy::{Config, TierSpec, MAX_QUOTAS};
use super::response::DenialJson;
use super::values::fixed;
use crate::keyed::Then;
use crate::{CheckError, Clock, KeyedRateLimiter, Quota, Snapshot};

/// Why the fixed header values are valid.
const CHECKED: &str = "names are checked to be printable ASCII";

/// The limiter holding one quota's buckets.
pub(crate) type Limiter<C> = KeyedRateLimiter<Vec<u8>, C>;

/// One tier's buckets, and the header values that never change.
pub(crate) struct Tier<C> {
    limiters: Box<[Limiter<C>]>,
    /// Each quota's name in the draft fields.
    pub(crate) names: Box<[String]>,
    /// The same names as structured-field strings, quotes included.
    pub(crate) sf_names: Box<[String]>,
    /// `RateLimit-Policy`, kept for the process (see `values::fixed`).
    pub(crate) policy: &'static HeaderValue,
    /// `X-RateLimit-Limit` for each quota, kept for the process.
    pub(crate) limits: Box<[&'static HeaderValue]>,
    /// The tier's name, when the policy names tiers.
    pub(crate) name: Option<String>,
    /// Each quota's part of a `429` body.
    pub(crate) denials: Box<[DenialJson]>,
}

/// One quota's bucket as a request left it, for the headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Whole tokens left.
    pub(crate) remaining: u64,
    /// Seconds, rounded up, until the bucket is full (on a refusal, for the refusing quota,
    /// until the request would pass).
    pub(crate) reset: u64,
}

impl From<&Snapshot> for Usage {
    fn from(snapshot: &Snapshot) -> Self {
        Usage {
            remaining: snapshot.remaining(),
            reset: ceil_secs(snapshot.reset_after()),
        }
    }
}

/// Every quota's [`Usage`] for one request, on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    usages: [Usage; MAX_QUOTAS],
    len: u8,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            usages: [Usage::default(); MAX_QUOTAS],
            len: 0,
        }
    }
}

impl Report {
    /// The report of a tier with one quota.
    #[cfg(feature = "redis")]
    pub(crate) fn single(usage: Usage) -> Self {
        let mut usages = [Usage::default(); MAX_QUOTAS];
        usages[0] = usage;
        Report { usages, len: 1 }
    }

    pub(crate) fn usages(&self) -> &[Usage] {
        &self.usages[..usize::from(self.len)]
    }
}

/// What a tier made of a request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Decision {
    /// Every quota paid.
    Allowed,
    /// Quota `index` refused; nothing was charged.
    Denied { index: usize, retry_after: Duration },
    /// The cost exceeds quota `index`'s burst: it can never pass.
    TooCostly { index: usize },
    /// A new key while a limiter was full of keys ([`crate::Overflow::Refuse`]).
    NoRoom,
}

/// Why the rest of a chain refused, carried back through the refunds.
#[derive(Clone, Copy)]
struct Refusal {
    index: usize,
    error: CheckError,
}

impl<C: Clock + Clone> Tier<C> {
    /// The buckets for `spec` of policy `config`, on `clock`.
    pub(crate) fn new(config: &Config, spec: &TierSpec, clock: &C) -> Self {
        let limiters = spec
            .quotas
            .iter()
            .map(|&quota| {
                let mut builder = KeyedRateLimiter::builder(quota).clock(clock.clone());
                if let Some(ttl) = config.idle_ttl {
                    builder = builder.idle_ttl(ttl);
                }
                if let Some((max_keys, overflow)) = config.max_keys {
                    builder = builder.max_keys(max_keys, overflow);
                }
                builder.build()
            })
            .collect();

        // `policy`, `policy.tier`, and `.0`, `.1`... when the tier has several quotas.
        let base = match &spec.name {
            Some(tier) => format!("{}.{tier}", config.name),
            None => config.name.clone(),
        };
        let names: Box<[String]> = (0..spec.quotas.len())
            .map(|i| match spec.quotas.len() {
                1 => base.clone(),
                _ => format!("{base}.{i}"),
            })
            .collect();
        let sf_names: Box<[String]> = names
            .iter()
            .map(|name| sf_string(name).expect("names are checked when the policy is built"))
            .collect();
        let items: Vec<String> = sf_names
            .iter()
            .zip(&spec.quotas)
            .map(|(name, quota)| format!("{name};q={};w={}", quota.count(), window(quota)))
            .collect();

        let denials = names
            .iter()
            .zip(&spec.quotas)
            .map(|(name, &quota)| DenialJson::new(&config.name, name, quota))
            .collect();
        Tier {
            limiters,
            denials,
            policy: fixed(&items.join(", ")).expect(CHECKED),
            limits: spec
                .quotas
                .iter()
                .map(|q| fixed(&q.count().to_string()).expect(CHECKED))
                .collect(),
            names,
            sf_names,
            name: spec.name.clone(),
        }
    }
}

impl<C: Clock> Tier<C> {
    /// Charges `cost` to `key` on every quota, or on none. `report`, when given, is filled in
    /// with each quota's state (the headers need it; the arithmetic costs a few divisions).
    ///
    /// The report is the caller's, so that neither it nor the decision is copied on the way
    /// back: this runs on every request.
    #[inline]
    pub(crate) fn check(&self, key: &[u8], cost: u64, mut report: Option<&mut Report>) -> Decision {
        if let Some(report) = report.as_deref_mut() {
            report.len = self.limiters.len() as u8;
        }

        // One quota, the usual case: no chain and no refund to set up.
        let refusal = if let [limiter] = &*self.limiters {
            match limiter.check_key_n(key, cost) {
                Ok(snapshot) => {
                    if let Some(report) = report {
                        report.usages[0] = Usage::from(&snapshot);
                    }
                    return Decision::Allowed;
                }
                Err(error) => Refusal { index: 0, error },
            }
        } else {
            match self.check_from(0, key, cost, report.as_deref_mut()) {
                Ok(()) => return Decision::Allowed,
                Err(refusal) => refusal,
            }
        };

        match refusal.error {
            CheckError::Denied(denied) => {
                // The quotas after the refusing one were not asked: report them as they are, if
                // the headers want them (a look at a key they have not seen makes its bucket).
                let retry_after = denied.retry_after();
                if let Some(report) = report {
                    for i in refusal.index + 1..self.limiters.len() {
                        if let Ok(snapshot) = self.limiters[i].check_key_n(key, 0) {
                            report.usages[i] = Usage::from(&snapshot);
                        }
                    }
                    report.usages[refusal.index] = Usage {
                        remaining: denied.remaining(),
                        reset: retry_after_secs(retry_after),
                    };
                }
                Decision::Denied {
                    index: refusal.index,
                    retry_after,
                }
            }
            CheckError::InsufficientCapacity(_) => Decision::TooCostly {
                index: refusal.index,
            },
            _ => Decision::NoRoom,
        }
    }

    /// Charges quotas `i..` in order; each one's charge is given back if a later one refuses.
    fn check_from(
        &self,
        i: usize,
        key: &[u8],
        cost: u64,
        mut report: Option<&mut Report>,
    ) -> Result<(), Refusal> {
        let Some(limiter) = self.limiters.get(i) else {
            return Ok(());
        };
        let then = |_: &Snapshot| self.check_from(i + 1, key, cost, report.as_deref_mut());
        let (snapshot, result) = match limiter.check_key_n_then(key, cost, then) {
            Then::Passed(snapshot, ()) => (snapshot, Ok(())),
            Then::Undone(snapshot, refusal) => (snapshot, Err(refusal)),
            Then::Refused(error) => return Err(Refusal { index: i, error }),
        };
        if let Some(report) = report {
            report.usages[i] = Usage::from(&snapshot);
        }
        result
    }

    /// The quotas, in order.
    pub(crate) fn quota(&self, index: usize) -> Quota {
        self.limiters[index].quota()
    }

    /// Keys with a bucket, over all quotas.
    pub(crate) fn len(&self) -> usize {
        self.limiters.iter().map(Limiter::len).sum()
    }

    /// Evicts idle keys from every quota; returns how many.
    pub(crate) fn retain_recent(&self) -> usize {
        self.limiters.iter().map(Limiter::retain_recent).sum()
    }
}

/// The window in whole seconds, rounded up and at least 1.
fn window(quota: &Quota) -> u64 {
    retry_after_secs(quota.period())
}
