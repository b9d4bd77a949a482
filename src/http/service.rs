//! The middleware service: [`RateLimit`].

use core::fmt;
use core::task::{Context, Poll};
use std::sync::Arc;

use http::{Request, Response};
use tower::Service;

use super::future::ResponseFuture;
use super::headers::{Policy, Usage};
use super::key::api_key;
use super::response::{no_room, too_many_requests, unauthorized};
use super::ResponseBody;
use crate::{CheckError, Clock, KeyedRateLimiter, QuantaClock};

/// A service that charges each request to its API key's bucket before passing it on.
///
/// Made by [`RateLimitLayer`](super::RateLimitLayer); clones share the buckets. See the
/// [module docs](super) for what it answers.
pub struct RateLimit<S, C = QuantaClock> {
    inner: S,
    limiter: Arc<KeyedRateLimiter<String, C>>,
    policy: Arc<Policy>,
}

impl<S, C> RateLimit<S, C> {
    pub(crate) fn new(
        inner: S,
        limiter: Arc<KeyedRateLimiter<String, C>>,
        policy: Arc<Policy>,
    ) -> Self {
        RateLimit {
            inner,
            limiter,
            policy,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, giving this one up.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Clock,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Find the bucket; a request without a usable key never reaches the limiter.
        let checked = match api_key(request.headers()) {
            Ok(key) => self.limiter.check_key(key),
            Err(reason) => return ResponseFuture::refused(unauthorized(reason, &self.policy)),
        };

        // Pass the request on with its bucket's state, or refuse it.
        match checked {
            Ok(snapshot) => {
                let future = self.inner.call(request);
                ResponseFuture::passed(future, Usage::from(&snapshot), self.policy.clone())
            }
            Err(CheckError::Denied(denied)) => {
                ResponseFuture::refused(too_many_requests(&denied, &self.policy))
            }
            // A limiter full of keys that refuses new ones; cost errors cannot occur at cost 1.
            Err(_) => ResponseFuture::refused(no_room(&self.policy)),
        }
    }
}

impl<S: Clone, C> Clone for RateLimit<S, C> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
            policy: Arc::clone(&self.policy),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for RateLimit<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}
