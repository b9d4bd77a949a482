//! Policies end to end: several quotas, tiers, key extractors behind proxies, shadow mode,
//! gRPC refusals and malformed input, on a manual clock (nothing sleeps). Most cases drive
//! the service directly with `oneshot`; the shared cases that are about connections and routes
//! (C17, C18) and the proxy cases also run over loopback with a real client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hotlimit::http::{
    Cidr, ForwardedHeader, Key, KeyExtractor, Policy, RateLimitLayer, Stats, TrustedProxies,
};
use hotlimit::{ManualClock, Overflow};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{service_fn, Layer, ServiceExt};

#[path = "support/headers.rs"]
mod headers;
use headers::header;

type Resp = Response<hotlimit::http::ResponseBody<Full<Bytes>>>;

fn clock() -> ManualClock {
    let clock = ManualClock::new();
    clock.set(Duration::from_secs(1_000));
    clock
}

/// Sends `request` through a fresh service of `layer` over a handler that answers 200.
async fn send(layer: &RateLimitLayer<ManualClock>, request: Request<Full<Bytes>>) -> Resp {
    let ok = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    layer.layer(ok).oneshot(request).await.unwrap()
}

fn with_key(key: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .header("x-api-key", key)
        .body(Full::default())
        .unwrap()
}

fn from_peer(peer: &str, forwarded_for: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    if let Some(value) = forwarded_for {
        let value = HeaderValue::from_str(value).unwrap();
        request.headers_mut().insert("x-forwarded-for", value);
    }
    request
}

async fn json(response: Resp) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn layer(policy: Policy, clock: &ManualClock) -> RateLimitLayer<ManualClock> {
    RateLimitLayer::from_policy_with_clock(policy, clock.clone())
}

#[tokio::test]
async fn c19_a_refusal_by_one_quota_charges_none() {
    // Per client 2/min and 1/s.
    let clock = clock();
    let policy = Policy::builder("client")
        .quota("2/min".parse().unwrap())
        .quota("1/s".parse().unwrap())
        .build()
        .unwrap();
    let layer = layer(policy, &clock);

    // t = 0: A.
    let response = send(&layer, with_key("c")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"client.0\";q=2;w=60, \"client.1\";q=1;w=1"
    );
    assert_eq!(
        header(&response, "ratelimit"),
        "\"client.0\";r=1;t=30, \"client.1\";r=0;t=1"
    );

    // t = 0: D by the 1/s quota; the minute quota still holds its second token.
    let response = send(&layer, with_key("c")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&response, "ratelimit"),
        "\"client.0\";r=1;t=30, \"client.1\";r=0;t=1"
    );
    assert_eq!(header(&response, "x-ratelimit-limit"), "1");
    assert_eq!(header(&response, "retry-after"), "1");
    let body = json(response).await;
    assert_eq!(body["violated_policies"], serde_json::json!(["client.1"]));
    assert_eq!(body["policy"], "client");
    assert_eq!(body["status"], 429);

    // t = 1.5 s: A, with the minute quota's second token.
    clock.advance(Duration::from_millis(1_500));
    let response = send(&layer, with_key("c")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "ratelimit"),
        "\"client.0\";r=0;t=59, \"client.1\";r=0;t=1"
    );

    // And now the minute quota refuses: retry when its next token is back, 28.5 s on.
    let response = send(&layer, with_key("c")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after"), "29");
    assert_eq!(header(&response, "x-ratelimit-limit"), "2");
    assert_eq!(header(&response, "x-ratelimit-reset"), "29");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c17_a_layer_cloned_per_connection_shares_its_buckets() {
    // 1,500 concurrent requests, each through its own clone of the layer, at one instant.
    let clock = clock();
    let policy = Policy::builder("c17")
        .quota("5/s".parse().unwrap())
        .build()
        .unwrap();
    let layer = layer(policy, &clock);

    let tasks: Vec<_> = (0..1_500)
        .map(|_| {
            let per_connection = layer.clone();
            tokio::spawn(async move { send(&per_connection, with_key("k")).await.status() })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        passed += usize::from(task.await.unwrap() == StatusCode::OK);
    }
    assert_eq!(passed, 5);
    let stats: Stats = layer.stats();
    assert_eq!((stats.allowed, stats.denied), (5, 1_495));

    // One second on, exactly five more.
    clock.advance(Duration::from_secs(1));
    let mut passed = 0;
    for _ in 0..20 {
        passed += usize::from(send(&layer.clone(), with_key("k")).await.status() == StatusCode::OK);
    }
    assert_eq!(passed, 5);
}

/// Serves `app` on a free loopback port, with the peer address in each request.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c17_over_loopback_connections() {
    let clock = clock();
    let policy = Policy::builder("c17")
        .quota("5/s".parse().unwrap())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer(policy, &clock));
    let url = serve(app).await;

    // 300 requests at once, over as many connections as the client opens.
    let client = reqwest::Client::new();
    let requests = (0..300).map(|_| {
        let request = client.get(&url).header("x-api-key", "k");
        tokio::spawn(async move { request.send().await.unwrap().status() })
    });
    let mut passed = 0;
    for request in requests.collect::<Vec<_>>() {
        passed += usize::from(request.await.unwrap() == StatusCode::OK);
    }
    assert_eq!(passed, 5);
}

#[tokio::test]
async fn c18_separate_policies_keep_separate_buckets() {
    // Route A 5/s and route B 5/s, both keyed by the client's address.
    let clock = clock();
    let route = |name: &str| {
        let policy = Policy::builder(name)
            .quota("5/s".parse().unwrap())
            .key(KeyExtractor::peer_ip())
            .build()
            .unwrap();
        layer(policy, &clock)
    };
    let app = Router::new()
        .route("/a", get(|| async { "a" }).layer(route("a")))
        .route("/b", get(|| async { "b" }).layer(route("b")));
    let url = serve(app).await;

    let client = reqwest::Client::new();
    for path in ["/a", "/b"] {
        let mut passed = 0;
        for _ in 0..8 {
            let response = client.get(format!("{url}{path}")).send().await.unwrap();
            passed += usize::from(response.status() == StatusCode::OK);
        }
        assert_eq!(passed, 5, "{path}");
    }
}

#[tokio::test]
async fn the_same_policy_in_two_layers_counts_twice() {
    let clock = clock();
    let policy = Policy::builder("p")
        .quota("1/min".parse().unwrap())
        .build()
        .unwrap();
    let (first, second) = (layer(policy.clone(), &clock), layer(policy, &clock));
    assert_eq!(send(&first, with_key("k")).await.status(), StatusCode::OK);
    assert_eq!(send(&second, with_key("k")).await.status(), StatusCode::OK);
    let refused = StatusCode::TOO_MANY_REQUESTS;
    assert_eq!(send(&first, with_key("k")).await.status(), refused);
}

#[tokio::test]
async fn tiers_have_their_own_quotas_and_buckets() {
    let clock = clock();
    let policy = Policy::builder("api")
        .tier("free", ["2/min".parse().unwrap()])
        .tier("pro", ["5/min".parse().unwrap()])
        .select_tier(|key, _| {
            if key.starts_with(b"pro_") {
                "pro"
            } else {
                "free"
            }
        })
        .build()
        .unwrap();
    let layer = layer(policy, &clock);

    let count = |key: &'static str| {
        let layer = layer.clone();
        async move {
            let mut passed = 0;
            for _ in 0..10 {
                passed += usize::from(send(&layer, with_key(key)).await.status() == StatusCode::OK);
            }
            passed
        }
    };
    assert_eq!(count("alice").await, 2);
    assert_eq!(count("pro_bob").await, 5);

    let response = send(&layer, with_key("pro_carol")).await;
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"api.pro\";q=5;w=60"
    );
    assert_eq!(header(&response, "ratelimit"), "\"api.pro\";r=4;t=12");
    let response = send(&layer, with_key("dave")).await;
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"api.free\";q=2;w=60"
    );
}

/// A server allowing 3 requests a minute per client address, trusting proxies in `network`.
async fn serve_by_client_ip(network: &str) -> String {
    let clock = clock();
    let proxies = TrustedProxies::networks([network.parse::<Cidr>().unwrap()]);
    let policy = Policy::builder("ip")
        .quota("3/min".parse().unwrap())
        .key(KeyExtractor::client_ip(proxies))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer(policy, &clock));
    serve(app).await
}

#[tokio::test]
async fn behind_a_trusted_proxy_rotating_the_left_entry_does_not_help() {
    let url = serve_by_client_ip("127.0.0.1").await;

    // The proxy on 127.0.0.1 appends the client it saw; the client forges what comes before.
    let client = reqwest::Client::new();
    let mut passed = 0;
    for i in 0..10 {
        let forwarded = format!("198.51.100.{i}, 203.0.113.7");
        let request = client.get(&url).header("x-forwarded-for", forwarded);
        passed += usize::from(request.send().await.unwrap().status() == StatusCode::OK);
    }
    assert_eq!(passed, 3);

    // Another client behind the same proxy has its own bucket.
    let request = client.get(&url).header("x-forwarded-for", "203.0.113.8");
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn from_an_untrusted_peer_the_header_is_ignored() {
    let url = serve_by_client_ip("10.0.0.0/8").await;

    let client = reqwest::Client::new();
    let mut passed = 0;
    for i in 0..10 {
        let request = client
            .get(&url)
            .header("x-forwarded-for", format!("198.51.100.{i}"));
        passed += usize::from(request.send().await.unwrap().status() == StatusCode::OK);
    }
    assert_eq!(passed, 3);
}

#[tokio::test]
async fn forwarded_header_and_ipv6_prefixes() {
    let clock = clock();
    let proxies = TrustedProxies::networks(["10.0.0.0/8".parse::<Cidr>().unwrap()])
        .header(ForwardedHeader::Forwarded);
    let policy = Policy::builder("ip")
        .quota("1/min".parse().unwrap())
        .key(KeyExtractor::client_ip(proxies))
        .build()
        .unwrap();
    let layer = layer(policy, &clock);

    let request = |value: &str| {
        let mut request = from_peer("10.1.1.1:80", None);
        let value = HeaderValue::from_str(value).unwrap();
        request.headers_mut().insert("forwarded", value);
        request
    };
    // Two addresses of one /64 are one client; another /64 is another.
    let first = request(r#"for="[2001:db8:0:1::aaaa]:1234""#);
    assert_eq!(send(&layer, first).await.status(), StatusCode::OK);
    let same = request(r#"for=unknown, for="[2001:db8:0:1::bbbb]""#);
    assert_eq!(
        send(&layer, same).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = request(r#"for="[2001:db8:0:2::1]""#);
    assert_eq!(send(&layer, other).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn grpc_requests_are_refused_with_a_grpc_status() {
    let clock = clock();
    let policy = Policy::builder("rpc")
        .quota("1/s".parse().unwrap())
        .build()
        .unwrap();
    let layer = layer(policy, &clock);
    let grpc = || {
        Request::builder()
            .header("content-type", "application/grpc+proto")
            .header("x-api-key", "k")
            .body(Full::default())
            .unwrap()
    };

    assert_eq!(send(&layer, grpc()).await.status(), StatusCode::OK);
    clock.advance(Duration::from_millis(250));
    let response = send(&layer, grpc()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/grpc");
    assert_eq!(header(&response, "grpc-status"), "8");
    assert!(header(&response, "grpc-message").contains("retry"));
    assert_eq!(header(&response, "grpc-retry-pushback-ms"), "750");
    assert_eq!(header(&response, "retry-after"), "1");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());

    // A gRPC request without a key is UNAUTHENTICATED, not a 401.
    let request = Request::builder()
        .header("content-type", "application/grpc")
        .body(Full::default())
        .unwrap();
    let response = send(&layer, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "grpc-status"), "16");
}

#[tokio::test]
async fn shadow_mode_counts_and_marks_but_never_blocks() {
    let clock = clock();
    let policy = Policy::builder("shadow")
        .quota("2/min".parse().unwrap())
        .shadow(true)
        .build()
        .unwrap();
    let layer = layer(policy, &clock);

    for i in 0..5 {
        let response = send(&layer, with_key("k")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let marked = response.headers().get("ratelimit-shadow");
        assert_eq!(marked.is_some(), i >= 2, "request {i}");
        assert!(response.headers().get("retry-after").is_none());
    }
    // The refused ones charged nothing: 30 s on, one token is back and passes unmarked.
    clock.advance(Duration::from_secs(30));
    let response = send(&layer, with_key("k")).await;
    assert!(response.headers().get("ratelimit-shadow").is_none());
    let request = Request::new(Full::default());
    assert_eq!(send(&layer, request).await.status(), StatusCode::OK);

    let stats = layer.stats();
    assert_eq!((stats.allowed, stats.shadow_denied), (3, 3));
    assert_eq!((stats.denied, stats.key_errors), (0, 1));
}

#[tokio::test]
async fn costs_hooks_and_header_switches() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let policy = Policy::builder("cost")
        .quota("10/min".parse().unwrap())
        .cost(|head| head.uri.path().trim_start_matches('/').parse().unwrap_or(1))
        .legacy_headers(false)
        .partition_key(true)
        .on_denied(move |denial| {
            seen.fetch_add(1, Ordering::Relaxed);
            let text = format!("slow down, {} s", denial.retry_after_secs());
            let mut response = Response::new(Bytes::from(text));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
        })
        .build()
        .unwrap();
    let layer = layer(policy, &clock);
    let costing = |n: &str| {
        Request::builder()
            .uri(format!("/{n}"))
            .header("x-api-key", "k")
            .body(Full::default())
            .unwrap()
    };

    let response = send(&layer, costing("7")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ratelimit = header(&response, "ratelimit");
    assert!(
        ratelimit.starts_with("\"cost\";r=3;t=42;pk=:"),
        "{ratelimit}"
    );
    assert!(response.headers().get("x-ratelimit-remaining").is_none());

    // Four more than the three left: the hook answers, with the wait of 6 s per token.
    let response = send(&layer, costing("4")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after"), "6");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "slow down, 6 s");
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // More than the burst can never pass; zero passes without charging.
    let response = send(&layer, costing("11")).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(send(&layer, costing("0")).await.status(), StatusCode::OK);
    assert_eq!(send(&layer, costing("3")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_input_never_panics_or_500s() {
    let clock = clock();
    let proxies = TrustedProxies::networks(["127.0.0.0/8".parse::<Cidr>().unwrap()]);
    let by_ip = Policy::builder("ip")
        .quota("1000/s".parse().unwrap())
        .key(KeyExtractor::client_ip(proxies.clone()))
        .build()
        .unwrap();
    let by_ip = layer(by_ip, &clock);
    let forwarded = Policy::builder("fwd")
        .quota("1000/s".parse().unwrap())
        .key(KeyExtractor::client_ip(
            proxies.header(ForwardedHeader::Forwarded),
        ))
        .build()
        .unwrap();
    let forwarded = layer(forwarded, &clock);

    let huge = "9".repeat(64 * 1024);
    let values: Vec<HeaderValue> = vec![
        HeaderValue::from_bytes(b"\xff\xfe\x80").unwrap(),
        HeaderValue::from_str(&huge).unwrap(),
        HeaderValue::from_str(&",".repeat(10_000)).unwrap(),
        HeaderValue::from_static("for=\"[::1"),
        HeaderValue::from_static("\"\"\"\\\";;;==,,for="),
        HeaderValue::from_static("for=[zz::1]:99999;by=\"x"),
        HeaderValue::from_static(""),
    ];
    for value in values {
        for name in ["x-forwarded-for", "forwarded", "x-api-key"] {
            let mut request = from_peer("127.0.0.1:9", None);
            request.headers_mut().append(name, value.clone());
            for layer in [&by_ip, &forwarded] {
                let status = send(layer, request_clone(&request)).await.status();
                assert_eq!(status, StatusCode::OK, "{name}: {value:?}");
            }
        }
    }

    // A layer keyed by the peer, without one: 400, not 500.
    let request = Request::new(Full::default());
    let response = send(&by_ip, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
}

fn request_clone(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(Full::default());
    *copy.headers_mut() = request.headers().clone();
    if let Some(info) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        copy.extensions_mut().insert(*info);
    }
    copy
}

#[tokio::test]
async fn ten_thousand_new_keys_a_second_stay_bounded() {
    // C20 at the layer: new keys every request, a key cap, and a shared bucket beyond it.
    let clock = clock();
    let policy = Policy::builder("flood")
        .quota("10/s".parse().unwrap())
        .key(KeyExtractor::custom(|head| {
            head.headers
                .get("x-api-key")
                .map(|v| Key::borrowed(v.as_bytes()))
        }))
        .idle_ttl(Duration::ZERO)
        .max_keys(2_000, Overflow::Shared)
        .build()
        .unwrap();
    let layer = layer(policy, &clock);

    let mut max_keys = 0;
    for second in 0..3u64 {
        for i in 0..10_000u64 {
            let key = HeaderValue::from(second * 10_000 + i);
            let request = Request::builder()
                .header("x-api-key", key)
                .body(Full::default())
                .unwrap();
            let status = send(&layer, request).await.status();
            assert!(status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS);
            clock.advance(Duration::from_micros(100));
            max_keys = max_keys.max(layer.tracked_keys());
        }
    }
    assert!(max_keys <= 2_000, "{max_keys}");
}
