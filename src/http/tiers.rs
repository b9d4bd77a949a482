//! The buckets behind a policy: one keyed limiter per quota of each tier, and the
//! all-or-nothing check across a tier's quotas.

use core::borrow::Borrow;
use core::hash::Hash;
use core::time::Duration;

use http::HeaderValue;

use super::headers::{ceil_secs, retry_after_secs, sf_string};
use super::key::Key;
use super::policy::{Config, TierSpec, MAX_QUOTAS};
use super::response::DenialJson;
use super::values::fixed;
use crate::keyed::Then;
use crate::{CheckError, Clock, KeyedRateLimiter, Quota, Snapshot};

/// Why the fixed header values are valid.
const CHECKED: &str = "names are checked to be printable ASCII";

/// Each quota's buckets: keyed by the key's bytes, or, for a policy keyed by client address,
/// by the address as a number, which each bucket's entry holds inline: no allocation of its
/// own per address, no hashing or comparing of a byte string per request.
enum Limiters<C> {
    Bytes(Box<[KeyedRateLimiter<Vec<u8>, C>]>),
    Addr(Box<[KeyedRateLimiter<u128, C>]>),
}

/// One tier's buckets, and the header values that never change.
pub(crate) struct Tier<C> {
    limiters: Limiters<C>,
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
    /// A key that is not an address, for a policy keyed by address: a client the policy
    /// cannot tell apart (not made by the built-in extractors).
    Unidentified,
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
        let limiters = match config.key.is_address() {
            true => Limiters::Addr(
                spec.quotas
                    .iter()
                    .map(|&q| limiter(config, q, clock))
                    .collect(),
            ),
            false => Limiters::Bytes(
                spec.quotas
                    .iter()
                    .map(|&q| limiter(config, q, clock))
                    .collect(),
            ),
        };

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

/// One quota's limiter, as `config` sets it up.
fn limiter<K: Eq + Hash + Send + 'static, C: Clock + Clone>(
    config: &Config,
    quota: Quota,
    clock: &C,
) -> KeyedRateLimiter<K, C> {
    let mut builder = KeyedRateLimiter::builder(quota).clock(clock.clone());
    if let Some(ttl) = config.idle_ttl {
        builder = builder.idle_ttl(ttl);
    }
    if let Some((max_keys, overflow)) = config.max_keys {
        builder = builder.max_keys(max_keys, overflow);
    }
    builder.build()
}

impl<C: Clock> Tier<C> {
    /// Charges `cost` to `key` on every quota, or on none. `report`, when given, is filled in
    /// with each quota's state (the headers need it; the arithmetic costs a few divisions).
    ///
    /// The report is the caller's, so that neither it nor the decision is copied on the way
    /// back: this runs on every request.
    #[inline]
    pub(crate) fn check(&self, key: &Key<'_>, cost: u64, report: Option<&mut Report>) -> Decision {
        match &self.limiters {
            Limiters::Bytes(limiters) => check(limiters, key.as_bytes(), cost, report),
            Limiters::Addr(limiters) => match key.addr() {
                Some(addr) => check(limiters, &addr, cost, report),
                // The address extractors make nothing but addresses.
                None => Decision::Unidentified,
            },
        }
    }

    /// The quotas, in order.
    pub(crate) fn quota(&self, index: usize) -> Quota {
        match &self.limiters {
            Limiters::Bytes(limiters) => limiters[index].quota(),
            Limiters::Addr(limiters) => limiters[index].quota(),
        }
    }

    /// Keys with a bucket, over all quotas.
    pub(crate) fn len(&self) -> usize {
        match &self.limiters {
            Limiters::Bytes(limiters) => limiters.iter().map(KeyedRateLimiter::len).sum(),
            Limiters::Addr(limiters) => limiters.iter().map(KeyedRateLimiter::len).sum(),
        }
    }

    /// Evicts idle keys from every quota; returns how many.
    pub(crate) fn retain_recent(&self) -> usize {
        match &self.limiters {
            Limiters::Bytes(limiters) => limiters.iter().map(KeyedRateLimiter::retain_recent).sum(),
            Limiters::Addr(limiters) => limiters.iter().map(KeyedRateLimiter::retain_recent).sum(),
        }
    }
}

/// [`Tier::check`] on the limiters of one key type.
#[inline]
fn check<K, Q, C>(
    limiters: &[KeyedRateLimiter<K, C>],
    key: &Q,
    cost: u64,
    mut report: Option<&mut Report>,
) -> Decision
where
    K: Borrow<Q> + Eq + Hash,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    C: Clock,
{
    if let Some(report) = report.as_deref_mut() {
        report.len = limiters.len() as u8;
    }

    // One quota, the usual case: no chain and no refund to set up.
    let refusal = if let [limiter] = limiters {
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
        match check_from(limiters, 0, key, cost, report.as_deref_mut()) {
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
                for (i, limiter) in limiters.iter().enumerate().skip(refusal.index + 1) {
                    if let Ok(snapshot) = limiter.check_key_n(key, 0) {
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
fn check_from<K, Q, C>(
    limiters: &[KeyedRateLimiter<K, C>],
    i: usize,
    key: &Q,
    cost: u64,
    mut report: Option<&mut Report>,
) -> Result<(), Refusal>
where
    K: Borrow<Q> + Eq + Hash,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    C: Clock,
{
    let Some(limiter) = limiters.get(i) else {
        return Ok(());
    };
    let then = |_: &Snapshot| check_from(limiters, i + 1, key, cost, report.as_deref_mut());
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

/// The window in whole seconds, rounded up and at least 1.
fn window(quota: &Quota) -> u64 {
    retry_after_secs(quota.period())
}
