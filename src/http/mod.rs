//! A tower middleware that rate-limits each API key: [`RateLimitLayer`].
//!
//! This module needs the `http` cargo feature, which is on by default; depend on hotlimit with
//! `default-features = false` for the limiter alone, without tower, http and serde_json.
//!
//! # What the middleware answers
//!
//! Each request is charged one token from the bucket of the key in its `X-API-Key` header
//! ([`API_KEY_HEADER`]). Then:
//!
//! - **Passed**: the inner service's response, with the headers below added.
//! - **No usable key** (missing, empty, longer than [`MAX_KEY_LEN`] bytes, or not UTF-8):
//!   `401` with `{"error": "API key required", "message": "..."}`, a `WWW-Authenticate`
//!   challenge, and the policy headers (there is no bucket to report).
//! - **Bucket empty**: `429` with `{"error": "rate_limited", "message": "...",
//!   "retry_after": <seconds>}` and the headers below, `Retry-After` included.
//!
//! The request never reaches the inner service in the last two cases.
//!
//! # Headers
//!
//! The fields of the IETF draft *RateLimit header fields for HTTP*
//! (`draft-ietf-httpapi-ratelimit-headers-11`), and the older `X-RateLimit-*` pair:
//!
//! ```text
//! RateLimit-Policy: "default";q=100;w=60    the quota: q tokens every w seconds
//! RateLimit: "default";r=42;t=35            r tokens left, t seconds until the bucket is full
//! X-RateLimit-Limit: 100
//! X-RateLimit-Remaining: 42
//! Retry-After: 1                            429 only: seconds until the request would pass
//! ```
//!
//! Seconds are rounded up, and `Retry-After` is at least 1: a client told to wait 0.3 s hears
//! 1, never 0. The policy name, `"default"` unless [`RateLimitLayer::policy_name`] says
//! otherwise, ties the two draft fields together.
//!
//! # Response bodies
//!
//! The services answer `Response<ResponseBody<B>>`, where `B` is the inner service's body:
//! [`ResponseBody`] is either that body, untouched, or the layer's own JSON. It is an enum
//! rather than a boxed body, so a passed request costs no allocation for its body, and its
//! error type is the inner body's. axum's `Router::layer` takes the layer as it is.
//!
//! # Examples
//!
//! ```
//! use axum::{routing::get, Json, Router};
//! use hotlimit::http::RateLimitLayer;
//! use serde_json::json;
//!
//! let layer = RateLimitLayer::new("100/min".parse()?).policy_name("per-key");
//! let app: Router = Router::new()
//!     .route("/api/data", get(|| async { Json(json!({ "data": [1, 2, 3] })) }))
//!     .layer(layer.clone());
//!
//! // Clones share the buckets: the layer can evict idle keys while the app runs.
//! layer.limiter().retain_recent();
//! # Ok::<(), hotlimit::QuotaError>(())
//! ```

mod body;
mod future;
mod headers;
mod key;
mod layer;
mod response;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use key::{API_KEY_HEADER, MAX_KEY_LEN};
pub use layer::{RateLimitLayer, DEFAULT_POLICY_NAME};
pub use service::RateLimit;
