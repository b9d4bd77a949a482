//! The middleware's builder: [`RateLimitLayer`].

use core::fmt;
use std::sync::Arc;

use tower::Layer;

use super::metrics::{Counters, Stats};
use super::policy::Policy;
use super::service::RateLimit;
use super::tiers::Tier;
use crate::{Clock, QuantaClock, Quota};

/// The name the rate-limit headers give the policy of [`RateLimitLayer::new`] unless told
/// otherwise.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// A tower layer that holds each client to a [`Policy`].
///
/// Every service it makes, and every clone of it, draws from the same buckets; a layer built
/// again from the same policy has buckets of its own. It works with any tower stack over
/// `http` requests: axum's `Router::layer`, hyper through `hyper-util`'s `TowerToHyperService`,
/// and tonic's `Server::layer` (refusals of gRPC requests are gRPC statuses). See the
/// [module docs](super) for what the services answer.
///
/// # Examples
///
/// ```
/// use axum::{routing::get, Router};
/// use hotlimit::http::RateLimitLayer;
///
/// let app: Router = Router::new()
///     .route("/api/data", get(|| async { "data" }))
///     .layer(RateLimitLayer::new("100/min".parse()?));
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
pub struct RateLimitLayer<C = QuantaClock> {
    shared: Arc<Shared<C>>,
}

/// What a layer, its clones and its services share.
pub(crate) struct Shared<C> {
    pub(crate) policy: Policy,
    pub(crate) tiers: Box<[Tier<C>]>,
    pub(crate) counters: Counters,
    clock: C,
}

impl RateLimitLayer {
    /// A layer allowing each `X-API-Key` `quota`, on the default [`QuantaClock`].
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, QuantaClock::new())
    }

    /// A layer enforcing `policy`, on the default [`QuantaClock`].
    pub fn from_policy(policy: Policy) -> Self {
        Self::from_policy_with_clock(policy, QuantaClock::new())
    }
}

impl<C: Clock + Clone> RateLimitLayer<C> {
    /// A layer allowing each `X-API-Key` `quota`, reading time from `clock` (for tests, a
    /// [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self::from_policy_with_clock(simple_policy(DEFAULT_POLICY_NAME, quota), clock)
    }

    /// A layer enforcing `policy`, reading time from `clock`.
    pub fn from_policy_with_clock(policy: Policy, clock: C) -> Self {
        let config = &policy.config;
        let tiers = config
            .tiers
            .iter()
            .map(|spec| Tier::new(config, spec, &clock))
            .collect();
        RateLimitLayer {
            shared: Arc::new(Shared {
                counters: Counters::new(&config.name),
                tiers,
                policy,
                clock,
            }),
        }
    }

    /// Renames the policy of a layer made with [`new`](RateLimitLayer::new) (the default name
    /// is [`DEFAULT_POLICY_NAME`]). The layer gets fresh buckets: rename it before use.
    ///
    /// # Panics
    ///
    /// If `name` holds a character outside printable ASCII (`' '..='~'`): the headers could
    /// not carry it. [`Policy::builder`] reports that as an error instead.
    pub fn policy_name(self, name: &str) -> Self {
        let policy = simple_policy(name, self.quota());
        Self::from_policy_with_clock(policy, self.shared.clock.clone())
    }
}

impl<C> RateLimitLayer<C> {
    /// The policy this layer enforces.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The first quota of the policy's first tier: for [`new`](RateLimitLayer::new), the one
    /// quota.
    pub fn quota(&self) -> Quota {
        self.shared.policy.quotas()[0]
    }

    /// What the layer decided so far.
    pub fn stats(&self) -> Stats {
        self.shared.counters.stats()
    }
}

impl<C: Clock> RateLimitLayer<C> {
    /// The number of buckets held, over every quota of every tier (a key checked against two
    /// quotas counts twice).
    pub fn tracked_keys(&self) -> usize {
        self.shared.tiers.iter().map(Tier::len).sum()
    }

    /// Evicts the keys whose buckets have been full for the idle TTL; returns how many buckets
    /// went. The limiters also evict on their own as new keys arrive.
    pub fn retain_recent(&self) -> usize {
        self.shared.tiers.iter().map(Tier::retain_recent).sum()
    }
}

/// The policy of [`RateLimitLayer::new`]: one quota per `X-API-Key`.
fn simple_policy(name: &str, quota: Quota) -> Policy {
    match Policy::builder(name).quota(quota).build() {
        Ok(policy) => policy,
        Err(_) => panic!("a rate-limit policy name must be printable ASCII, got {name:?}"),
    }
}

impl<S, C> Layer<S> for RateLimitLayer<C> {
    type Service = RateLimit<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.shared))
    }
}

impl<C> Clone for RateLimitLayer<C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C> fmt::Debug for RateLimitLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}
