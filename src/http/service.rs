//! The middleware service, [`RateLimit`], and the decision it takes for each request.

use core::fmt;
use core::task::{Context, Poll};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::Service;

use super::future::ResponseFuture;
use super::headers::Fields;
use super::key::{KeyError, RequestHead};
use super::layer::Shared;
use super::metrics::Outcome;
use super::response::{is_grpc, no_key, no_room, too_costly, too_many_requests, Denial};
use super::tiers::{Decision, Report};
use super::ResponseBody;
use crate::{Clock, QuantaClock};

/// A service that charges each request to its client's buckets before passing it on.
///
/// Made by [`RateLimitLayer`](super::RateLimitLayer); clones share the buckets. See the
/// [module docs](super) for what it answers.
pub struct RateLimit<S, C = QuantaClock> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S, C> RateLimit<S, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C>>) -> Self {
        RateLimit { inner, shared }
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

    #[inline]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Decide on the head alone; the borrow of the request ends before it moves on.
        match self.shared.decide(&RequestHead::new(&request)) {
            Ok(fields) => ResponseFuture::passed(self.inner.call(request), fields),
            Err(response) => ResponseFuture::refused(response),
        }
    }
}

impl<C: Clock> Shared<C> {
    /// The fields for a request that may pass, or the response that refuses it.
    #[inline]
    fn decide(&self, head: &RequestHead<'_>) -> Result<Fields, Box<Response<Full<Bytes>>>> {
        let config = &*self.policy.config;

        // Find the key; a request without one never reaches a bucket.
        let key = match config.key.extract(head) {
            Ok(key) => key,
            Err(reason) => return self.unidentified(reason, head),
        };

        // Pick the tier and the cost, then charge every quota of the tier or none.
        let tier = match &config.select {
            Some(select) => {
                let name = select(key.as_bytes(), head);
                let found = self
                    .tiers
                    .iter()
                    .position(|t| t.name.as_deref() == Some(name));
                &self.tiers[found.unwrap_or(0)]
            }
            None => &self.tiers[0],
        };
        let cost = config.cost.as_ref().map_or(1, |cost| cost(head));
        // Without headers the report is never written, not even zeroed.
        let usage = config.draft_headers || config.legacy_headers;
        let mut report = usage.then(Report::default);
        let (index, retry_after) = match tier.check(&key, cost, report.as_mut()) {
            Decision::Allowed => {
                self.counters.count(Outcome::Allowed);
                let key = key.as_bytes();
                return Ok(Fields::new(config, tier, report.as_ref(), None, key));
            }
            Decision::Denied { index, retry_after } => (index, retry_after),
            Decision::TooCostly { index } => {
                let fields = Fields::new(config, tier, None, Some(index), key.as_bytes());
                let grpc = is_grpc(head.headers);
                return self.refuse(fields, || too_costly(cost, tier.quota(index), grpc));
            }
            Decision::NoRoom => {
                let fields = Fields::new(config, tier, None, None, key.as_bytes());
                return self.refuse(fields, || no_room(is_grpc(head.headers)));
            }
            Decision::Unidentified => return self.unidentified(KeyError::Missing, head),
        };

        // Refused by quota `index`.
        let denial = Denial {
            policy: &config.name,
            tier: tier.name.as_deref(),
            quota_name: &tier.names[index],
            quota: tier.quota(index),
            retry_after,
            json: &tier.denials[index],
        };
        tracing::debug!(
            policy = denial.policy,
            tier = denial.tier,
            quota = denial.quota_name,
            retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            shadow = config.shadow,
            "rate limit refused a request"
        );
        let fields = Fields::new(config, tier, report.as_ref(), Some(index), key.as_bytes());
        let grpc = is_grpc(head.headers);
        self.refuse(fields, || {
            let response = match &config.on_denied {
                Some(hook) if !grpc => hook(&denial).map(Full::new),
                _ => too_many_requests(&denial, grpc),
            };
            (response, Some(retry_after))
        })
    }

    /// The answer to a request without a usable key (or passing it, in shadow mode).
    #[cold]
    fn unidentified(
        &self,
        reason: KeyError,
        head: &RequestHead<'_>,
    ) -> Result<Fields, Box<Response<Full<Bytes>>>> {
        let config = &*self.policy.config;
        self.counters.count(Outcome::KeyError);
        let fields = Fields::new(config, &self.tiers[0], None, None, &[]);
        if config.shadow {
            return Ok(fields);
        }
        let default = match config.key.is_header() {
            true => StatusCode::UNAUTHORIZED,
            false => StatusCode::BAD_REQUEST,
        };
        let status = config.key_error_status.unwrap_or(default);
        let header = config.key.header_name();
        let mut response = no_key(reason, header, status, is_grpc(head.headers));
        fields.write(response.headers_mut());
        Err(Box::new(response))
    }

    /// Refuses with `response()` and `fields`, or in shadow mode passes the request, marked.
    #[cold]
    fn refuse<R: Refusal>(
        &self,
        fields: Fields,
        response: impl FnOnce() -> R,
    ) -> Result<Fields, Box<Response<Full<Bytes>>>> {
        if self.policy.config.shadow {
            self.counters.count(Outcome::ShadowDenied);
            return Ok(fields.shadow_denied());
        }
        self.counters.count(Outcome::Denied);
        let (mut response, retry_after) = response().into_parts();
        let fields = match retry_after {
            Some(wait) => fields.retry_after(wait),
            None => fields,
        };
        fields.write(response.headers_mut());
        Err(Box::new(response))
    }
}

/// A refusal, with the wait to announce in `Retry-After` when waiting helps.
trait Refusal {
    fn into_parts(self) -> (Response<Full<Bytes>>, Option<core::time::Duration>);
}

impl Refusal for Response<Full<Bytes>> {
    fn into_parts(self) -> (Response<Full<Bytes>>, Option<core::time::Duration>) {
        (self, None)
    }
}

impl Refusal for (Response<Full<Bytes>>, Option<core::time::Duration>) {
    fn into_parts(self) -> (Response<Full<Bytes>>, Option<core::time::Duration>) {
        self
    }
}

impl<S: Clone, C> Clone for RateLimit<S, C> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for RateLimit<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}
