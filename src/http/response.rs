//! The responses the layer answers itself: `401` without a usable key, `429` when the bucket
//! is empty. Both carry a small JSON body.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::headers::{retry_after_secs, write_retry_after, Policy, Usage};
use super::key::KeyError;
use crate::Denied;
use core::time::Duration;

/// `401`: `{"error": "API key required", "message": ...}`, with the policy's fields.
pub(crate) fn unauthorized(reason: KeyError, policy: &Policy) -> Response<Full<Bytes>> {
    let body = json!({
        "error": "API key required",
        "message": reason.message(),
    });
    let mut response = json_response(StatusCode::UNAUTHORIZED, &body);

    // RFC 9110 asks a 401 to name a challenge; there is no bucket to report yet.
    let challenge = HeaderValue::from_static("ApiKey header=\"X-API-Key\"");
    response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    policy.write(response.headers_mut(), None);
    response
}

/// `429`: `{"error": "rate_limited", "message": ..., "retry_after": <seconds>}`, with
/// `Retry-After` and the bucket's state.
pub(crate) fn too_many_requests(denied: &Denied, policy: &Policy) -> Response<Full<Bytes>> {
    let retry_after = retry_after_secs(denied.retry_after());
    let message = format!(
        "too many requests: the limit is {} per API key; retry in {retry_after} s",
        policy.quota()
    );
    let body = json!({
        "error": "rate_limited",
        "message": message,
        "retry_after": retry_after,
    });
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body);

    write_retry_after(response.headers_mut(), denied.retry_after());
    policy.write(response.headers_mut(), Some(Usage::from(denied)));
    response
}

/// `503`: the limiter tracks as many keys as it may and refuses new ones for now.
pub(crate) fn no_room(policy: &Policy) -> Response<Full<Bytes>> {
    let body = json!({
        "error": "too_many_clients",
        "message": "the server is tracking as many API keys as it can; retry shortly",
        "retry_after": 1,
    });
    let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    write_retry_after(response.headers_mut(), Duration::from_secs(1));
    policy.write(response.headers_mut(), None);
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(CONTENT_TYPE, json);
    response
}
