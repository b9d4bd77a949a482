//! The middleware end to end: a real axum server on a free port, a real HTTP client, and a
//! manual clock, so nothing sleeps and every header value is known exactly.

use std::time::Duration;

use axum::{routing::get, Json, Router};
use hotlimit::http::{RateLimitLayer, MAX_KEY_LEN};
use hotlimit::{ManualClock, Quota};
use reqwest::header::HeaderValue;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

#[path = "support/headers.rs"]
mod headers;
use headers::header;

/// The example server's app, on a manual clock.
async fn serve(layer: RateLimitLayer<ManualClock>) -> String {
    let app = Router::new()
        .route(
            "/api/data",
            get(|| async { Json(json!({ "data": [1, 2, 3] })) }),
        )
        .layer(layer);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/api/data")
}

fn layer(quota: &str) -> (RateLimitLayer<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let quota: Quota = quota.parse().unwrap();
    (RateLimitLayer::with_clock(quota, clock.clone()), clock)
}

async fn get_with_key(url: &str, key: impl Into<HeaderValue>) -> Response {
    let client = reqwest::Client::new();
    client
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_gets_its_quota_then_429() {
    let (layer, _clock) = layer("100/min");
    let url = serve(layer).await;

    // The whole burst passes, each response saying what is left.
    for i in 1..=100 {
        let response = get_with_key(&url, HeaderValue::from_static("A")).await;
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            (100 - i).to_string()
        );
        if i == 1 {
            assert_eq!(header(&response, "ratelimit"), "\"default\";r=99;t=1");
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"], json!([1, 2, 3]));
    }

    // The 101st is refused: one token comes back in 0.6 s, the bucket is full in 60 s.
    let response = get_with_key(&url, HeaderValue::from_static("A")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(header(&response, "retry-after"), "1");
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"default\";q=100;w=60"
    );
    // On a refusal, `t` is the wait until the request would pass, as in `Retry-After`.
    assert_eq!(header(&response, "ratelimit"), "\"default\";r=0;t=1");
    assert_eq!(header(&response, "x-ratelimit-limit"), "100");
    assert_eq!(header(&response, "x-ratelimit-reset"), "1");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("100/min"));
    assert_eq!(body["retry_after"], 1);

    // Another key has its own bucket.
    let response = get_with_key(&url, HeaderValue::from_static("B")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "ratelimit"), "\"default\";r=99;t=1");
}

#[tokio::test]
async fn a_request_without_a_key_gets_401() {
    let (layer, _clock) = layer("100/min");
    let limiter_view = layer.clone();
    let url = serve(layer).await;

    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"default\";q=100;w=60"
    );
    assert_eq!(header(&response, "x-ratelimit-limit"), "100");
    assert!(response.headers().get("ratelimit").is_none());
    assert!(response.headers().get("www-authenticate").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "API key required");

    assert_eq!(limiter_view.tracked_keys(), 0);
}

#[tokio::test]
async fn malformed_keys_get_401_and_no_bucket() {
    let (layer, _clock) = layer("100/min");
    let limiter_view = layer.clone();
    let url = serve(layer).await;

    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    let huge = "k".repeat(10 * 1024);
    let keys = [
        (
            HeaderValue::from_bytes(b"\xff\xfe\xfd").unwrap(),
            "invalid API key",
        ),
        (
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
            "invalid API key",
        ),
        (HeaderValue::from_static(""), "API key required"),
        (HeaderValue::from_static("   "), "API key required"),
        (HeaderValue::try_from(too_long).unwrap(), "invalid API key"),
        (HeaderValue::try_from(huge).unwrap(), "invalid API key"),
    ];
    for (key, error) in keys {
        let response = get_with_key(&url, key.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "key {key:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "key {key:?}");
    }
    assert_eq!(limiter_view.tracked_keys(), 0);

    // The longest key allowed, and one in UTF-8, are keys like any other.
    let longest = HeaderValue::try_from("k".repeat(MAX_KEY_LEN)).unwrap();
    let utf8 = HeaderValue::from_bytes("clé".as_bytes()).unwrap();
    for key in [longest, utf8] {
        let response = get_with_key(&url, key).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(limiter_view.tracked_keys(), 2);
}

#[tokio::test]
async fn headers_follow_the_bucket_as_time_moves() {
    let (layer, clock) = layer("1/s");
    let url = serve(layer).await;
    let key = || HeaderValue::from_static("slow");

    // Spend the only token.
    let response = get_with_key(&url, key()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "ratelimit"), "\"default\";r=0;t=1");

    // 0.3 s later the token is 0.7 s away: the client hears 1, never 0.
    clock.advance(Duration::from_millis(300));
    let response = get_with_key(&url, key()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after"), "1");
    assert_eq!(header(&response, "ratelimit"), "\"default\";r=0;t=1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["retry_after"], 1);

    // A wait of exactly that long is enough.
    clock.advance(Duration::from_millis(700));
    let response = get_with_key(&url, key()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn remaining_counts_refilled_tokens() {
    let (layer, clock) = layer("10/min");
    let url = serve(layer).await;
    let key = || HeaderValue::from_static("refill");

    // Empty the bucket at t = 0: one token returns every 6 s.
    for _ in 0..10 {
        let response = get_with_key(&url, key()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    // At t = 30 s, five tokens are back; one is spent, the bucket is full at 66 s.
    clock.advance(Duration::from_secs(30));
    let response = get_with_key(&url, key()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "ratelimit"), "\"default\";r=4;t=36");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "4");
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"default\";q=10;w=60"
    );
}

#[tokio::test]
async fn clones_share_buckets_and_names_are_configurable() {
    let (layer, _clock) = layer("2/min");
    let layer = layer.policy_name("per-key");
    let first = serve(layer.clone()).await;
    let second = serve(layer).await;

    // Two servers, one bucket per key.
    for url in [&first, &second] {
        let response = get_with_key(url, HeaderValue::from_static("shared")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "ratelimit-policy"),
            "\"per-key\";q=2;w=60"
        );
    }
    let response = get_with_key(&first, HeaderValue::from_static("shared")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "ratelimit"), "\"per-key\";r=0;t=30");
    assert_eq!(header(&response, "retry-after"), "30");
}
