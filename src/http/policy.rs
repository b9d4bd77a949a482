//! What a layer enforces: a [`Policy`], made with a [`PolicyBuilder`].

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};

use super::headers::sf_string;
use super::key::{KeyExtractor, RequestHead};
use super::response::Denial;
use crate::{Overflow, Quota};

/// The most quotas one tier of a policy may check together.
pub const MAX_QUOTAS: usize = 8;

/// A tier selector, as stored.
pub(crate) type TierFn = dyn Fn(&[u8], &RequestHead<'_>) -> &'static str + Send + Sync;
/// A cost function, as stored.
pub(crate) type CostFn = dyn Fn(&RequestHead<'_>) -> u64 + Send + Sync;
/// A denial hook, as stored.
pub(crate) type DeniedFn = dyn Fn(&Denial<'_>) -> Response<Bytes> + Send + Sync;

/// A named rate-limit policy: the quotas a key is held to, how keys are found, what a request
/// costs, and how refusals look.
///
/// A policy is only a description; each [`RateLimitLayer`](super::RateLimitLayer) made from
/// it has its own buckets, shared by that layer's clones. So one policy per route, or the same
/// policy given to two layers, keeps separate counts for the same client.
///
/// # Several quotas
///
/// A tier may hold several quotas, such as 10 per second and 1,000 per hour. A request passes
/// only if every one of them can pay for it, and a request that any of them refuses is charged
/// to none: the quotas are charged in order, and when one refuses, the charges already made are
/// given back to the same buckets. Concurrent requests may briefly see a token that is being
/// given back as taken (and be refused for it), never the reverse: no quota ever admits more
/// than it would alone.
///
/// # Tiers
///
/// With [`tier`](PolicyBuilder::tier) and [`select_tier`](PolicyBuilder::select_tier), each
/// request is held to the quotas of the tier its key belongs to. Each tier has its own
/// buckets: a key that moves from `free` to `pro` starts on the `pro` buckets as they are
/// (full, for a key new to the tier), and finds its `free` buckets as it left them if it moves
/// back.
///
/// # Examples
///
/// ```
/// use hotlimit::http::{KeyExtractor, Policy, RateLimitLayer};
///
/// let policy = Policy::builder("api")
///     .tier("free", ["10/s".parse()?, "1000/h".parse()?])
///     .tier("pro", ["100/s".parse()?, "100000/h".parse()?])
///     .select_tier(|key, _head| if key.starts_with(b"pro_") { "pro" } else { "free" })
///     .key(KeyExtractor::api_key())
///     .cost(|head| if head.method == "POST" { 5 } else { 1 })
///     .build()?;
/// let layer = RateLimitLayer::from_policy(policy);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Policy {
    pub(crate) config: Arc<Config>,
}

pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) tiers: Vec<TierSpec>,
    pub(crate) select: Option<Arc<TierFn>>,
    pub(crate) key: KeyExtractor,
    pub(crate) cost: Option<Arc<CostFn>>,
    pub(crate) shadow: bool,
    pub(crate) draft_headers: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) partition_key: bool,
    pub(crate) on_denied: Option<Arc<DeniedFn>>,
    pub(crate) key_error_status: Option<StatusCode>,
    pub(crate) idle_ttl: Option<Duration>,
    pub(crate) max_keys: Option<(usize, Overflow)>,
}

/// One tier as configured.
#[derive(Clone, Debug)]
pub(crate) struct TierSpec {
    pub(crate) name: Option<String>,
    pub(crate) quotas: Vec<Quota>,
}

impl Policy {
    /// A builder for a policy named `name`, the name the rate-limit headers and the metrics
    /// give it.
    pub fn builder(name: impl Into<String>) -> PolicyBuilder {
        PolicyBuilder {
            config: Config {
                name: name.into(),
                tiers: Vec::new(),
                select: None,
                key: KeyExtractor::default(),
                cost: None,
                shadow: false,
                draft_headers: true,
                legacy_headers: true,
                partition_key: false,
                on_denied: None,
                key_error_status: None,
                idle_ttl: None,
                max_keys: None,
            },
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the policy only counts and marks what it would refuse.
    pub fn is_shadow(&self) -> bool {
        self.config.shadow
    }

    /// The quotas of the first tier (the only one, for a policy without tiers).
    pub fn quotas(&self) -> &[Quota] {
        &self.config.tiers[0].quotas
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Policy")
            .field("name", &c.name)
            .field("tiers", &c.tiers)
            .field("key", &c.key)
            .field("shadow", &c.shadow)
            .finish_non_exhaustive()
    }
}

/// A policy that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A policy or tier name outside printable ASCII, which the headers cannot carry.
    #[error("{0:?} is not a usable name: use printable ASCII")]
    BadName(String),
    /// A tier (or the policy) without a quota.
    #[error("tier {0:?} has no quota")]
    NoQuota(String),
    /// A tier with more than [`MAX_QUOTAS`] quotas.
    #[error("tier {0:?} has more than {MAX_QUOTAS} quotas")]
    TooManyQuotas(String),
    /// Two tiers with the same name.
    #[error("two tiers are named {0:?}")]
    DuplicateTier(String),
}

/// Builds a [`Policy`]; from [`Policy::builder`].
#[must_use]
pub struct PolicyBuilder {
    config: Config,
}

impl PolicyBuilder {
    /// Adds `quota` to the first tier (making an unnamed one if there is none yet).
    pub fn quota(mut self, quota: Quota) -> Self {
        match self.config.tiers.first_mut() {
            Some(tier) => tier.quotas.push(quota),
            None => self.config.tiers.push(TierSpec {
                name: None,
                quotas: vec![quota],
            }),
        }
        self
    }

    /// Adds a tier named `name` with `quotas`. The first tier is the default: keys the
    /// [selector](Self::select_tier) sends nowhere known go there.
    pub fn tier(
        mut self,
        name: impl Into<String>,
        quotas: impl IntoIterator<Item = Quota>,
    ) -> Self {
        self.config.tiers.push(TierSpec {
            name: Some(name.into()),
            quotas: quotas.into_iter().collect(),
        });
        self
    }

    /// Picks each request's tier by name from its key and head; a name no tier has means the
    /// first tier.
    pub fn select_tier<F>(mut self, select: F) -> Self
    where
        F: Fn(&[u8], &RequestHead<'_>) -> &'static str + Send + Sync + 'static,
    {
        self.config.select = Some(Arc::new(select));
        self
    }

    /// Finds keys with `key` ([`KeyExtractor::api_key`] unless set).
    pub fn key(mut self, key: KeyExtractor) -> Self {
        self.config.key = key;
        self
    }

    /// Charges each request `cost(head)` tokens instead of 1. A cost of 0 passes without
    /// charging; a cost above a quota's burst can never pass and is answered `413`.
    pub fn cost<F>(mut self, cost: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> u64 + Send + Sync + 'static,
    {
        self.config.cost = Some(Arc::new(cost));
        self
    }

    /// Shadow mode: decide and count as usual, but let every request through; one that would
    /// have been refused carries `RateLimit-Shadow: denied` and charges nothing.
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.config.shadow = shadow;
        self
    }

    /// Whether to send the draft `RateLimit-Policy` and `RateLimit` fields (yes unless set).
    pub fn draft_headers(mut self, on: bool) -> Self {
        self.config.draft_headers = on;
        self
    }

    /// Whether to send `X-RateLimit-Limit`, `-Remaining` and `-Reset` (yes unless set).
    pub fn legacy_headers(mut self, on: bool) -> Self {
        self.config.legacy_headers = on;
        self
    }

    /// Whether the draft fields carry a partition key `pk` (no unless set): an 8-byte digest
    /// of the key, never the key itself, so API keys are not echoed.
    pub fn partition_key(mut self, on: bool) -> Self {
        self.config.partition_key = on;
        self
    }

    /// Answers refused HTTP requests with `hook`'s response instead of the problem document.
    ///
    /// The layer still adds `Retry-After` and the rate-limit headers. gRPC requests keep their
    /// gRPC status.
    pub fn on_denied<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Denial<'_>) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.config.on_denied = Some(Arc::new(hook));
        self
    }

    /// The status of a request without a usable key: `401` for a header key and `400` for
    /// other keys unless set.
    pub fn key_error_status(mut self, status: StatusCode) -> Self {
        self.config.key_error_status = Some(status);
        self
    }

    /// How long a key's buckets stay after they are full again (see
    /// [`KeyedBuilder::idle_ttl`](crate::KeyedBuilder::idle_ttl)).
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.config.idle_ttl = Some(ttl);
        self
    }

    /// Holds at most `max_keys` keys per quota, with `overflow` for the rest (see
    /// [`KeyedBuilder::max_keys`](crate::KeyedBuilder::max_keys)). A key refused under
    /// [`Overflow::Refuse`] is answered `503`.
    pub fn max_keys(mut self, max_keys: usize, overflow: Overflow) -> Self {
        self.config.max_keys = Some((max_keys, overflow));
        self
    }

    /// The policy.
    ///
    /// # Errors
    ///
    /// When a name is not printable ASCII, a tier has no quota or more than [`MAX_QUOTAS`],
    /// or two tiers share a name.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let config = self.config;
        if sf_string(&config.name).is_none() {
            return Err(PolicyError::BadName(config.name));
        }
        if config.tiers.is_empty() {
            return Err(PolicyError::NoQuota(config.name));
        }
        for (i, tier) in config.tiers.iter().enumerate() {
            let name = tier.name.clone().unwrap_or_else(|| config.name.clone());
            if tier.name.as_deref().is_some_and(|n| sf_string(n).is_none()) {
                return Err(PolicyError::BadName(name));
            }
            if tier.quotas.is_empty() {
                return Err(PolicyError::NoQuota(name));
            }
            if tier.quotas.len() > MAX_QUOTAS {
                return Err(PolicyError::TooManyQuotas(name));
            }
            if config.tiers[..i].iter().any(|t| t.name == tier.name) {
                return Err(PolicyError::DuplicateTier(name));
            }
        }
        Ok(Policy {
            config: Arc::new(config),
        })
    }
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBuilder")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quota {
        text.parse().unwrap()
    }

    #[test]
    fn refuses_unusable_configurations() {
        let err = |b: PolicyBuilder| b.build().unwrap_err();
        assert_eq!(
            err(Policy::builder("a\nb").quota(q("1/s"))),
            PolicyError::BadName("a\nb".into())
        );
        assert_eq!(err(Policy::builder("p")), PolicyError::NoQuota("p".into()));
        assert_eq!(
            err(Policy::builder("p").tier("t", [])),
            PolicyError::NoQuota("t".into())
        );
        assert_eq!(
            err(Policy::builder("p").tier("t", vec![q("1/s"); MAX_QUOTAS + 1])),
            PolicyError::TooManyQuotas("t".into())
        );
        assert_eq!(
            err(Policy::builder("p")
                .tier("t", [q("1/s")])
                .tier("t", [q("2/s")])),
            PolicyError::DuplicateTier("t".into())
        );
        assert_eq!(
            err(Policy::builder("p").tier("é", [q("1/s")])),
            PolicyError::BadName("é".into())
        );
    }

    #[test]
    fn quotas_go_to_the_first_tier() {
        let policy = Policy::builder("p")
            .quota(q("1/s"))
            .quota(q("10/min"))
            .build()
            .unwrap();
        assert_eq!(policy.quotas(), [q("1/s"), q("10/min")]);
        assert_eq!(policy.name(), "p");
        assert!(!policy.is_shadow());
    }
}
