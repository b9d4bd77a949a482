//! [`RedisRateLimitLayer`]: the tower middleware over a [`RedisRateLimiter`], for quotas shared
//! by every node through Redis.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service};

use super::headers::{retry_after_secs, Fields};
use super::key::{KeyExtractor, RequestHead};
use super::layer::DEFAULT_POLICY_NAME;
use super::policy::Policy;
use super::response::Denial;
use super::response::{backend_unavailable, is_grpc, no_key, too_costly, too_many_requests};
use super::tiers::{Report, Tier, Usage};
use super::ResponseBody;
use crate::redis::{RedisCheckError, RedisRateLimiter};
use crate::QuantaClock;

/// A tower layer that holds each client to the quota of a [`RedisRateLimiter`], so that every
/// node sharing the limiter's Redis and prefix shares each client's budget.
///
/// Its services answer like [`RateLimitLayer`](super::RateLimitLayer)'s: `429` with
/// `Retry-After` and the rate-limit headers for a refusal, `401` (or `400` for keys that are
/// not headers) for a request without a usable key, and the inner service's response, with the
/// headers, for a request that passes. When Redis cannot decide and the limiter's
/// [`FailurePolicy`](crate::redis::FailurePolicy) is `FailClosed`, they answer `503` with
/// `Retry-After: 1`. Under `FailOpen` and `LocalFallback` the limiter decides and the layer
/// answers as it says. A passed request gets `RateLimit` and `X-RateLimit-Remaining` only when
/// the limiter reports the bucket (not for a lease spend or a fail-open pass).
///
/// Each request waits for one check in Redis (bounded by the limiter's budget) before the inner
/// service is called. Keys that are not UTF-8 (address keys) are sent to Redis as `0x` and
/// lowercase hex; a [custom](KeyExtractor::custom) extractor that returns both text and bytes
/// should keep the two apart itself.
///
/// # Examples
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use hotlimit::http::RedisRateLimitLayer;
/// use hotlimit::redis::RedisRateLimiter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let limiter = RedisRateLimiter::builder(client, "100/min".parse()?).build()?;
/// let app: Router = Router::new()
///     .route("/api/data", get(|| async { "data" }))
///     .layer(RedisRateLimitLayer::new(limiter).policy_name("api"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRateLimitLayer {
    shared: Arc<Shared>,
}

/// What a layer and its services share.
struct Shared {
    limiter: RedisRateLimiter,
    policy: Policy,
    /// The header values and the `429` members of the one quota; its in-process buckets are
    /// never used.
    tier: Tier<QuantaClock>,
}

impl RedisRateLimitLayer {
    /// A layer checking each `X-API-Key` against `limiter`, under the policy name
    /// [`DEFAULT_POLICY_NAME`].
    pub fn new(limiter: RedisRateLimiter) -> Self {
        Self::build(limiter, DEFAULT_POLICY_NAME, KeyExtractor::default())
    }

    /// Finds each request's key with `key` instead of the `X-API-Key` header.
    pub fn key(self, key: KeyExtractor) -> Self {
        let shared = &self.shared;
        Self::build(shared.limiter.clone(), shared.policy.name(), key)
    }

    /// Names the policy in the rate-limit headers and the `429` body.
    ///
    /// # Panics
    ///
    /// If `name` holds a character outside printable ASCII (`' '..='~'`): the headers could
    /// not carry it.
    pub fn policy_name(self, name: &str) -> Self {
        let shared = &self.shared;
        Self::build(
            shared.limiter.clone(),
            name,
            shared.policy.config.key.clone(),
        )
    }

    /// The limiter the layer asks.
    pub fn limiter(&self) -> &RedisRateLimiter {
        &self.shared.limiter
    }

    fn build(limiter: RedisRateLimiter, name: &str, key: KeyExtractor) -> Self {
        let policy = match Policy::builder(name)
            .quota(limiter.quota())
            .key(key)
            .build()
        {
            Ok(policy) => policy,
            Err(_) => panic!("a rate-limit policy name must be printable ASCII, got {name:?}"),
        };
        let config = &policy.config;
        let tier = Tier::new(config, &config.tiers[0], &QuantaClock::new());
        RedisRateLimitLayer {
            shared: Arc::new(Shared {
                limiter,
                policy,
                tier,
            }),
        }
    }
}

impl<S> Layer<S> for RedisRateLimitLayer {
    type Service = RedisRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RedisRateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl fmt::Debug for RedisRateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitLayer")
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

/// The service of a [`RedisRateLimitLayer`]: checks each request in Redis, then passes it on
/// or answers it.
#[derive(Clone)]
pub struct RedisRateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RedisRateLimit<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, giving this one up.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for RedisRateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimit")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

/// The response future of a [`RedisRateLimit`] service: a check in Redis, then the inner call.
pub type RedisResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RedisRateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RedisResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready goes into the future; a clone stays behind.
        let clone = self.inner.clone();
        let mut inner = core::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        let grpc = is_grpc(request.headers());

        let key = match shared
            .policy
            .config
            .key
            .extract(&RequestHead::new(&request))
        {
            Ok(key) => redis_key_text(key.as_bytes()),
            Err(reason) => {
                let config = &shared.policy.config;
                let status = match config.key.is_header() {
                    true => StatusCode::UNAUTHORIZED,
                    false => StatusCode::BAD_REQUEST,
                };
                let mut response = no_key(reason, config.key.header_name(), status, grpc);
                Fields::new(config, &shared.tier, None, None, &[]).write(response.headers_mut());
                let response = response.map(ResponseBody::refusal);
                return Box::pin(core::future::ready(Ok(response)));
            }
        };

        Box::pin(async move {
            match shared.check(&key, grpc).await {
                Ok(fields) => {
                    let mut response = inner.call(request).await?.map(ResponseBody::inner);
                    fields.write(response.headers_mut());
                    Ok(response)
                }
                Err(refusal) => Ok(refusal.map(ResponseBody::refusal)),
            }
        })
    }
}

impl Shared {
    /// The fields for a request that may pass, or the response that refuses it.
    async fn check(&self, key: &str, grpc: bool) -> Result<Fields, Response<Full<Bytes>>> {
        let config = &*self.policy.config;
        let tier = &self.tier;
        let quota = self.limiter.quota();
        let denied = match self.limiter.check_key(key).await {
            Ok(allowed) => {
                let report = allowed.snapshot().map(|s| Report::single(Usage::from(s)));
                return Ok(Fields::new(
                    config,
                    tier,
                    report.as_ref(),
                    None,
                    key.as_bytes(),
                ));
            }
            Err(RedisCheckError::Denied(denied)) => denied,
            Err(RedisCheckError::InsufficientCapacity(_)) => {
                let mut response = too_costly(1, quota, grpc);
                Fields::new(config, tier, None, Some(0), key.as_bytes())
                    .write(response.headers_mut());
                return Err(response);
            }
            Err(error) => {
                let policy = config.name.as_str();
                tracing::debug!(policy, %error, "rate limit backend unavailable");
                return Err(backend_unavailable(grpc));
            }
        };

        let retry_after = denied.retry_after();
        let denial = Denial {
            policy: &config.name,
            tier: None,
            quota_name: &tier.names[0],
            quota,
            retry_after,
            json: &tier.denials[0],
        };
        tracing::debug!(
            policy = denial.policy,
            retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            "rate limit refused a request"
        );
        let report = Report::single(Usage {
            remaining: denied.remaining(),
            reset: retry_after_secs(retry_after),
        });
        let mut response = too_many_requests(&denial, grpc);
        Fields::new(config, tier, Some(&report), Some(0), key.as_bytes())
            .retry_after(retry_after)
            .write(response.headers_mut());
        Err(response)
    }
}

/// The key as Redis sees it: the text itself, or `0x` and lowercase hex for bytes that are not
/// UTF-8.
fn redis_key_text(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(2 + 2 * key.len());
            out.push_str("0x");
            for b in key {
                let _ = write!(out, "{b:02x}");
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redis_key_text;

    #[test]
    fn keys_that_are_not_text_go_as_hex() {
        assert_eq!(redis_key_text(b"alice"), "alice");
        assert_eq!(redis_key_text(&[0xc0, 0x00, 0x02, 0xff]), "0xc00002ff");
    }
}
