//! A tower middleware that rate-limits each client: [`RateLimitLayer`].
//!
//! This module needs the `http` cargo feature, which is on by default; depend on hotlimit with
//! `default-features = false` for the limiter alone, without tower, http and serde_json.
//!
//! # The simple case
//!
//! [`RateLimitLayer::new`] holds each `X-API-Key` to one quota:
//!
//! ```
//! use axum::{routing::get, Router};
//! use hotlimit::http::RateLimitLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/data", get(|| async { "data" }))
//!     .layer(RateLimitLayer::new("100/min".parse()?));
//! # Ok::<(), hotlimit::QuotaError>(())
//! ```
//!
//! # Policies
//!
//! A [`Policy`] names the quotas a client is held to (several at once, all or nothing), how the
//! client is found ([`KeyExtractor`]: a header, the peer address, the address behind
//! [`TrustedProxies`], or a closure), what a request costs, tiers of clients with their own
//! quotas, which headers to send, and shadow mode. Each layer built from a policy has its own
//! buckets, so one layer per route keeps separate counts for the same client:
//!
//! ```
//! use axum::{routing::{get, post}, Router};
//! use hotlimit::http::{KeyExtractor, Policy, RateLimitLayer};
//!
//! let api = Policy::builder("api")
//!     .tier("free", ["100/min".parse()?])
//!     .tier("pro", ["1000/min".parse()?])
//!     .select_tier(|key, _| if key.starts_with(b"pro_") { "pro" } else { "free" })
//!     .build()?;
//! let login = Policy::builder("login")
//!     .quota("5/min".parse()?)
//!     .key(KeyExtractor::peer_ip())
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/login", post(|| async { "welcome" }).layer(RateLimitLayer::from_policy(login)))
//!     .route("/api/data", get(|| async { "data" }))
//!     .layer(RateLimitLayer::from_policy(api));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the middleware answers
//!
//! - **Passed**: the inner service's response, with the headers below added.
//! - **Refused by a quota**: `429` with `Retry-After` and an `application/problem+json` body
//!   (RFC 9457) carrying `type`, `title`, `status` and `detail`, the older `error`, `message`
//!   and `retry_after` members, the `policy` and the `violated_policies` (the quota names as in
//!   the headers). A hook ([`PolicyBuilder::on_denied`]) may answer instead.
//! - **No usable key** (missing, empty, longer than [`MAX_KEY_LEN`] bytes, a header key that is
//!   not UTF-8, no peer address): `401` with a `WWW-Authenticate` challenge for header keys,
//!   `400` for others, or the status set with [`PolicyBuilder::key_error_status`].
//! - **Cost above a quota's burst** (it can never pass): `413`.
//! - **Too many keys** (a key cap with [`Overflow::Refuse`](crate::Overflow::Refuse)): `503`.
//! - **gRPC** (`content-type: application/grpc...`): each refusal is a trailers-only gRPC
//!   response, HTTP `200` with `grpc-status` (`8` RESOURCE_EXHAUSTED for a quota, `16`
//!   UNAUTHENTICATED for a missing key, `14` UNAVAILABLE for too many keys), `grpc-message`,
//!   and for a quota `grpc-retry-pushback-ms` and `Retry-After`.
//!
//! A refused request never reaches the inner service, and nothing the client sends makes the
//! layer panic or answer `500`.
//!
//! # Headers
//!
//! The fields of the IETF draft *RateLimit header fields for HTTP*
//! (`draft-ietf-httpapi-ratelimit-headers-11`), one list item per quota, and the older
//! `X-RateLimit-*` fields, each family switchable ([`PolicyBuilder::draft_headers`],
//! [`PolicyBuilder::legacy_headers`]):
//!
//! ```text
//! RateLimit-Policy: "api.0";q=10;w=1, "api.1";q=1000;w=3600
//! RateLimit: "api.0";r=9;t=1, "api.1";r=999;t=4
//! X-RateLimit-Limit: 10                     the quota with the fewest tokens left
//! X-RateLimit-Remaining: 9
//! X-RateLimit-Reset: 1                      seconds until that bucket is full
//! Retry-After: 1                            refusals only
//! ```
//!
//! A quota is named after its policy, then its tier (`api.pro`) when the policy has tiers, then
//! its place (`.0`, `.1`) when the tier has several quotas. `q` tokens every `w` seconds; `r`
//! tokens left and `t` seconds until the bucket is full, or, for the refusing quota of a `429`,
//! until the request would pass (the same as `Retry-After`). Seconds are rounded up, and
//! `Retry-After` is at least 1: a client told to wait 0.3 s hears 1, never 0. The partition
//! key `pk` is off unless [`PolicyBuilder::partition_key`] turns it on.
//!
//! # Shadow mode
//!
//! A policy with [`shadow(true)`](PolicyBuilder::shadow) decides and counts as usual, but
//! passes every request on. A request it would have refused charges nothing and carries
//! `RateLimit-Shadow: denied` ([`RATELIMIT_SHADOW`]).
//!
//! # Counting and logging
//!
//! [`RateLimitLayer::stats`] reads the counts of allowed, denied, shadow-denied requests and key
//! errors; the `metrics` cargo feature also exports them (see [`Stats`]). Refusals are logged
//! with `tracing` at debug level, without the key; nothing is logged for allowed requests.
//!
//! # A shared limit in Redis
//!
//! With the `redis` cargo feature, [`RedisRateLimitLayer`] does the same over a
//! [`RedisRateLimiter`](crate::redis::RedisRateLimiter): one quota per key, kept in Redis and
//! shared by every node, answered with the same statuses and headers, plus `503` with
//! `Retry-After: 1` when Redis cannot decide and the limiter fails closed.
//!
//! # Response bodies
//!
//! The services answer `Response<ResponseBody<B>>`, where `B` is the inner service's body:
//! [`ResponseBody`] is either that body, untouched, or the layer's own. It is an enum rather
//! than a boxed body, so a passed request costs no allocation for its body, and its error type
//! is the inner body's.
//!
//! # One route, one policy, the least overhead
//!
//! `MethodRouter::route_layer` in axum boxes the handler as a service, then boxes the layered
//! service again. Wrapping the handler as a service and layering that boxes once:
//!
//! ```
//! use axum::handler::HandlerWithoutStateExt;
//! use axum::{routing::get_service, Router};
//! use hotlimit::http::RateLimitLayer;
//! use tower::Layer;
//!
//! async fn data() -> &'static str {
//!     "data"
//! }
//!
//! let limit = RateLimitLayer::new("100/min".parse()?);
//! let data = get_service(limit.layer(data.into_service()));
//! let app: Router = Router::new().route("/api/data", data);
//! # Ok::<(), hotlimit::QuotaError>(())
//! ```
//!
//! Either way only requests that match the route and its method are charged. On the example
//! server's loopback load test (`scripts/load-test.sh`) one box served about 2% more requests a
//! second than two, a difference near that test's run-to-run noise.

mod body;
mod forwarded;
mod future;
mod headers;
mod key;
mod layer;
mod metrics;
mod net;
mod policy;
#[cfg(all(feature = "http", feature = "redis"))]
mod redis_layer;
mod response;
mod service;
mod tiers;
mod values;

pub use body::ResponseBody;
pub use forwarded::{ForwardedHeader, TrustedProxies};
pub use future::ResponseFuture;
pub use headers::RATELIMIT_SHADOW;
pub use key::{
    Key, KeyError, KeyExtractor, RequestHead, API_KEY_HEADER, DEFAULT_IPV6_PREFIX, MAX_KEY_LEN,
};
pub use layer::{RateLimitLayer, DEFAULT_POLICY_NAME};
pub use metrics::Stats;
pub use net::{Cidr, CidrError};
pub use policy::{Policy, PolicyBuilder, PolicyError, MAX_QUOTAS};
#[cfg(all(feature = "http", feature = "redis"))]
pub use redis_layer::{RedisRateLimit, RedisRateLimitLayer, RedisResponseFuture};
pub use response::Denial;
pub use service::RateLimit;
