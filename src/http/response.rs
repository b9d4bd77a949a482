//! The responses the layer answers itself, as RFC 9457 problem documents for HTTP and as
//! trailers-only responses for gRPC.
//!
//! | case                 | HTTP                          | gRPC `grpc-status`           |
//! |----------------------|-------------------------------|------------------------------|
//! | refused by a quota   | `429`, `Retry-After`          | 8 `RESOURCE_EXHAUSTED`       |
//! | no usable key        | `401` (header key) or `400`   | 16 `UNAUTHENTICATED` or 3    |
//! | cost above the burst | `413`                         | 8 `RESOURCE_EXHAUSTED`       |
//! | too many keys        | `503`, `Retry-After: 1`       | 14 `UNAVAILABLE`             |
//! | Redis unavailable    | `503`, `Retry-After: 1`       | 14 `UNAVAILABLE`             |

use core::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use super::headers::retry_after_secs;
use super::key::KeyError;
use crate::Quota;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_PUSHBACK: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// A refused request, as the [denial hook](super::PolicyBuilder::on_denied) sees it.
#[derive(Clone, Copy, Debug)]
pub struct Denial<'a> {
    pub(crate) policy: &'a str,
    pub(crate) tier: Option<&'a str>,
    pub(crate) quota_name: &'a str,
    pub(crate) quota: Quota,
    pub(crate) retry_after: Duration,
    /// The refusing quota's members of the problem document, rendered once per layer.
    pub(crate) json: &'a DenialJson,
}

/// The parts of a `429` body that depend only on the quota, rendered when the layer is built,
/// so that a refusal, the hot path under a flood, formats one string.
#[derive(Debug)]
pub(crate) struct DenialJson {
    /// The start of `detail` and `message`, up to the number of seconds, escaped for JSON.
    detail: String,
    /// `"policy": ..., "violated_policies": [...]`, escaped.
    members: String,
}

impl DenialJson {
    pub(crate) fn new(policy: &str, quota_name: &str, quota: Quota) -> Self {
        let members = json!({ "policy": policy, "violated_policies": [quota_name] }).to_string();
        let detail = format!("too many requests: the limit is {quota} per client; retry in ");
        let detail = Value::from(detail).to_string();
        DenialJson {
            // Escaped for JSON, without the quotes.
            detail: detail[1..detail.len() - 1].to_owned(),
            // Without the braces, to splice into the document.
            members: members[1..members.len() - 1].to_owned(),
        }
    }
}

impl Denial<'_> {
    /// The policy's name.
    pub fn policy(&self) -> &str {
        self.policy
    }

    /// The key's tier, when the policy has named tiers.
    pub fn tier(&self) -> Option<&str> {
        self.tier
    }

    /// The refusing quota's name in the rate-limit headers.
    pub fn quota_name(&self) -> &str {
        self.quota_name
    }

    /// The refusing quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The exact time until the request would pass, if nothing else takes tokens.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(self.retry_after)
    }
}

/// `429` (or gRPC 8): a problem document with the legacy `error`, `message` and `retry_after`
/// members and the violated quota's name.
pub(crate) fn too_many_requests(denial: &Denial<'_>, grpc: bool) -> Response<Full<Bytes>> {
    let secs = denial.retry_after_secs();
    let detail = &denial.json.detail;
    if grpc {
        return grpc_status(8, &format!("{detail}{secs} s"), Some(denial.retry_after));
    }
    let body = format!(
        "{{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,\
         \"detail\":\"{detail}{secs} s\",\"error\":\"rate_limited\",\
         \"message\":\"{detail}{secs} s\",\"retry_after\":{secs},{}}}",
        denial.json.members
    );
    problem_text(StatusCode::TOO_MANY_REQUESTS, body)
}

/// A request without a usable key: `401` with a challenge for a missing header key, the
/// configured status otherwise.
pub(crate) fn no_key(
    reason: KeyError,
    header: Option<&HeaderName>,
    status: StatusCode,
    grpc: bool,
) -> Response<Full<Bytes>> {
    let message = match (header, reason) {
        (Some(name), KeyError::Missing) => format!("send your key in the {name} header"),
        (Some(name), KeyError::TooLong) => {
            format!("the {name} header is longer than the 256 bytes allowed")
        }
        (Some(name), _) => format!("the {name} header is not valid UTF-8"),
        (None, KeyError::NoPeerAddress) => "the client's address is unknown".to_owned(),
        (None, _) => "the request does not say who the client is".to_owned(),
    };
    if grpc {
        let code = if status == StatusCode::UNAUTHORIZED {
            16
        } else {
            3
        };
        return grpc_status(code, &message, None);
    }

    let api_key = header.is_some_and(|name| name == super::API_KEY_HEADER);
    let error = match (header, reason) {
        (Some(_), KeyError::Missing) if api_key => "API key required",
        (Some(_), KeyError::Missing) => "key required",
        (Some(_), _) if api_key => "invalid API key",
        (Some(_), _) => "invalid key",
        (None, _) => "client not identified",
    };
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Client Error"),
        "status": status.as_u16(),
        "detail": message,
        "error": error,
        "message": message,
    });
    let mut response = problem(status, &body);

    // RFC 9110 asks a 401 to name a challenge.
    if let (Some(name), StatusCode::UNAUTHORIZED) = (header, status) {
        let challenge = format!("ApiKey header=\"{name}\"");
        if let Ok(challenge) = HeaderValue::try_from(challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
    }
    response
}

/// `413` (or gRPC 8): a request whose cost exceeds a quota's burst can never pass.
pub(crate) fn too_costly(cost: u64, quota: Quota, grpc: bool) -> Response<Full<Bytes>> {
    let message = format!(
        "this request costs {cost} tokens, more than the {} that the limit of {quota} ever holds",
        quota.burst()
    );
    if grpc {
        return grpc_status(8, &message, None);
    }
    let body = json!({
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": message,
        "error": "cost_exceeds_limit",
        "message": message,
    });
    problem(StatusCode::PAYLOAD_TOO_LARGE, &body)
}

/// `503` (or gRPC 14): the limiter tracks as many keys as it may and refuses new ones for now.
pub(crate) fn no_room(grpc: bool) -> Response<Full<Bytes>> {
    let message = "the server is tracking as many clients as it can; retry shortly";
    unavailable("too_many_clients", message, grpc)
}

/// `503` (or gRPC 14): the shared limiter's backend could not decide and the layer fails
/// closed.
#[cfg(feature = "redis")]
pub(crate) fn backend_unavailable(grpc: bool) -> Response<Full<Bytes>> {
    let message = "the rate limiter cannot reach its backend; retry shortly";
    unavailable("rate_limiter_unavailable", message, grpc)
}

/// `503` with `Retry-After: 1` and a problem body naming `error`, or gRPC status 14.
fn unavailable(error: &str, message: &str, grpc: bool) -> Response<Full<Bytes>> {
    if grpc {
        return grpc_status(14, message, Some(Duration::from_secs(1)));
    }
    let body = json!({
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": message,
        "error": error,
        "message": message,
        "retry_after": 1,
    });
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, &body);
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(1));
    response
}

/// Whether `headers` belong to a gRPC request.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// A trailers-only gRPC response: HTTP 200, the status in the headers, an empty body.
fn grpc_status(code: u32, message: &str, retry: Option<Duration>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(GRPC_STATUS, HeaderValue::from(code));
    if let Ok(message) = HeaderValue::try_from(percent_encode(message)) {
        headers.insert(GRPC_MESSAGE, message);
    }
    if let Some(wait) = retry {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let ms = ms + u64::from(wait.as_nanos() % 1_000_000 != 0);
        headers.insert(GRPC_PUSHBACK, HeaderValue::from(ms));
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(wait)),
        );
    }
    response
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response with an `application/problem+json` body.
fn problem(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    problem_text(status, body.to_string())
}

fn problem_text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let json = HeaderValue::from_static("application/problem+json");
    response.headers_mut().insert(CONTENT_TYPE, json);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_429_document_is_json_with_every_member() {
        let quota: Quota = "100/min".parse().unwrap();
        let json = DenialJson::new("a \"quoted\" policy", "q\\1", quota);
        let denial = Denial {
            policy: "p",
            tier: None,
            quota_name: "q",
            quota,
            retry_after: Duration::from_millis(1_200),
            json: &json,
        };
        let response = too_many_requests(&denial, false);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = response.into_body();
        let bytes = futures_bytes(body);
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let detail = "too many requests: the limit is 100/min per client; retry in 2 s";
        let expected = json!({
            "type": "about:blank",
            "title": "Too Many Requests",
            "status": 429,
            "detail": detail,
            "error": "rate_limited",
            "message": detail,
            "retry_after": 2,
            "policy": "a \"quoted\" policy",
            "violated_policies": ["q\\1"],
        });
        assert_eq!(value, expected);
    }

    /// The bytes of a `Full` body, which is ready at once.
    fn futures_bytes(body: Full<Bytes>) -> Bytes {
        use http_body::Body;
        let mut body = std::pin::pin!(body);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match body.as_mut().poll_frame(&mut cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap(),
            _ => Bytes::new(),
        }
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("retry in 2 s"), "retry in 2 s");
        assert_eq!(percent_encode("100% é"), "100%25 %C3%A9");
    }

    #[test]
    fn grpc_pushback_rounds_up_to_the_millisecond() {
        let response = grpc_status(8, "x", Some(Duration::from_micros(1_500)));
        assert_eq!(response.headers()["grpc-retry-pushback-ms"], "2");
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
