//! The middleware's builder: [`RateLimitLayer`].

use core::fmt;
use std::sync::Arc;

use tower::Layer;

use super::headers::Policy;
use super::service::RateLimit;
use crate::{Clock, KeyedRateLimiter, QuantaClock, Quota};

/// The name the rate-limit headers give the policy unless told otherwise.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// A tower layer that limits each API key to a [`Quota`].
///
/// Every service it makes, and every clone of it, draws from the same buckets. See the
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
    limiter: Arc<KeyedRateLimiter<String, C>>,
    policy: Arc<Policy>,
}

impl RateLimitLayer {
    /// A layer allowing each API key `quota`, on the default [`QuantaClock`].
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, QuantaClock::new())
    }
}

impl<C: Clock> RateLimitLayer<C> {
    /// A layer allowing each API key `quota`, reading time from `clock` (for tests, a
    /// [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        RateLimitLayer {
            limiter: Arc::new(KeyedRateLimiter::with_clock(quota, clock)),
            policy: Arc::new(Policy::new(DEFAULT_POLICY_NAME, quota)),
        }
    }
}

impl<C> RateLimitLayer<C> {
    /// Names the policy in the `RateLimit-Policy` and `RateLimit` headers (the default is
    /// [`DEFAULT_POLICY_NAME`]).
    ///
    /// # Panics
    ///
    /// If `name` holds a character outside printable ASCII (`' '..='~'`): the headers could
    /// not carry it.
    pub fn policy_name(mut self, name: &str) -> Self {
        self.policy = Arc::new(Policy::new(name, self.policy.quota()));
        self
    }

    /// The quota each API key follows.
    pub fn quota(&self) -> Quota {
        self.policy.quota()
    }

    /// The limiter holding the buckets, shared by every service this layer makes.
    ///
    /// The layer keeps a bucket for every key it has seen; call
    /// [`retain_recent`](KeyedRateLimiter::retain_recent) from time to time to drop the idle
    /// ones.
    pub fn limiter(&self) -> &KeyedRateLimiter<String, C> {
        &self.limiter
    }
}

impl<S, C> Layer<S> for RateLimitLayer<C> {
    type Service = RateLimit<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.limiter), Arc::clone(&self.policy))
    }
}

impl<C> Clone for RateLimitLayer<C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: Arc::clone(&self.limiter),
            policy: Arc::clone(&self.policy),
        }
    }
}

impl<C> fmt::Debug for RateLimitLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("quota", &self.policy.quota())
            .finish_non_exhaustive()
    }
}
