//! The Redis-backed layer end to end: an axum server on a free port in front of a
//! `redis-server` started per test, and a real HTTP client. Without a `redis-server` on `PATH`
//! the tests that need one print a note and pass, unless `HOTLIMIT_REQUIRE_REDIS=1`.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use axum::{routing::get, Router};
use hotlimit::http::{RateLimitLayer, RedisRateLimitLayer};
use hotlimit::redis::{FailurePolicy, RedisRateLimiter};
use hotlimit::Quota;
use redis_server::start_or_skip;
use reqwest::{Response, StatusCode};
use serde_json::Value;

#[path = "support/headers.rs"]
mod headers;
use headers::header;

macro_rules! server {
    () => {
        match start_or_skip(std::thread::current().name().unwrap_or("redis_http")) {
            Some(server) => server,
            None => return,
        }
    };
}

/// Serves `/api/data` behind `layer`; returns the URL.
async fn serve<L>(layer: L) -> String
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Response:
        axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
{
    let app = Router::new()
        .route("/api/data", get(|| async { "data" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/api/data")
}

async fn get_with(url: &str, key: Option<&str>) -> Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.unwrap()
}

/// The names of the headers a response carries, but the ones every response has.
fn header_names(response: &Response) -> BTreeSet<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| !["date", "content-length"].contains(&name.as_str()))
        .collect()
}

/// A problem document without its members that depend on the exact wait.
fn without_wait(mut body: Value) -> Value {
    if let Some(object) = body.as_object_mut() {
        for member in ["detail", "message", "retry_after"] {
            object.remove(member);
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_quota_answers_like_the_in_process_layer() {
    let server = server!();
    let quota: Quota = "3/min".parse().unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let limiter = RedisRateLimiter::builder(client, quota)
        .budget(Duration::from_secs(2))
        .build()
        .unwrap();
    let shared = serve(RedisRateLimitLayer::new(limiter).policy_name("api")).await;
    let local = serve(RateLimitLayer::new(quota).policy_name("api")).await;

    // The burst passes, each response saying what is left, as the in-process layer says.
    for i in 1..=3u64 {
        let response = get_with(&shared, Some("A")).await;
        let reference = get_with(&local, Some("A")).await;
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(header_names(&response), header_names(&reference));
        assert_eq!(header(&response, "ratelimit-policy"), "\"api\";q=3;w=60");
        let left = 3 - i;
        assert!(
            header(&response, "ratelimit").starts_with(&format!("\"api\";r={left};t=")),
            "{}",
            header(&response, "ratelimit")
        );
        assert_eq!(header(&response, "x-ratelimit-limit"), "3");
        assert_eq!(header(&response, "x-ratelimit-remaining"), left.to_string());
        assert_eq!(response.text().await.unwrap(), "data");
    }

    // The fourth is refused, with the same status, headers and document.
    let response = get_with(&shared, Some("A")).await;
    let reference = get_with(&local, Some("A")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_names(&response), header_names(&reference));
    assert!(header_names(&response).contains("retry-after"));
    let retry: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "Retry-After: {retry}");
    assert_eq!(
        header(&response, "ratelimit"),
        format!("\"api\";r=0;t={retry}")
    );
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    let expected: Value = reference.json().await.unwrap();
    assert_eq!(body["retry_after"], retry);
    assert_eq!(body["violated_policies"], serde_json::json!(["api"]));
    assert_eq!(without_wait(body), without_wait(expected));

    // Another key has its own bucket.
    let response = get_with(&shared, Some("B")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-ratelimit-remaining"), "2");

    // No key: 401, as in process.
    let response = get_with(&shared, None).await;
    let reference = get_with(&local, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_names(&response), header_names(&reference));
    assert!(header_names(&response).contains("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    let expected: Value = reference.json().await.unwrap();
    assert_eq!(body, expected);

    // Both keys were counted in Redis.
    assert!(server.raw(&["EXISTS", "{hotlimit:A}"]).starts_with(":1"));
    assert!(server.raw(&["EXISTS", "{hotlimit:B}"]).starts_with(":1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_without_redis_answers_503_quickly() {
    const BUDGET: Duration = Duration::from_millis(200);
    // Scheduling and the HTTP round trip on a loaded two-core machine, on top of the budget.
    const SLACK: Duration = Duration::from_millis(800);

    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let limiter = RedisRateLimiter::builder(client, "3/min".parse().unwrap())
        .failure_policy(FailurePolicy::FailClosed)
        .budget(BUDGET)
        .build()
        .unwrap();
    let url = serve(RedisRateLimitLayer::new(limiter)).await;

    // The first check waits for Redis at most the budget; the breaker then answers at once.
    for attempt in 0..2 {
        let start = Instant::now();
        let response = get_with(&url, Some("A")).await;
        let took = start.elapsed();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{attempt}"
        );
        assert_eq!(header(&response, "retry-after"), "1");
        assert!(took <= BUDGET + SLACK, "attempt {attempt} took {took:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 503);
    }

    // A request without a key never reaches Redis.
    let response = get_with(&url, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
