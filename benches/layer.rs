//! What the HTTP layer adds to a request, hotlimit's against tower_governor's, in one run.
//!
//! Each scenario wraps the same no-op service (a `service_fn` answering a ready, empty
//! response) and calls it with a fresh request per iteration, keyed the same way on both
//! sides, with a quota no loop can exhaust (every request passes). Like is compared with like:
//!
//! - `layer_bare`: the no-op service alone (building the request, calling, polling);
//! - `layer_api_key`: keyed by the `X-API-Key` header, no rate-limit headers on either side
//!   (tower_governor's key is an owned `String`, through a small `KeyExtractor` written here);
//! - `layer_peer_ip`: keyed by the peer address in axum's `ConnectInfo<SocketAddr>`, no headers;
//! - `layer_api_key_headers`: the `X-API-Key` key with each side's legacy headers
//!   (hotlimit's `X-RateLimit-Limit`, `-Remaining` and `-Reset`; tower_governor's
//!   `use_headers`, `x-ratelimit-limit` and `-remaining`), and hotlimit's default set as
//!   `hotlimit_default` (the two draft fields as well);
//! - `layer_floor`: no layer, but what any layer on hotlimit's core must do per request: read
//!   the `X-API-Key` header and charge the key's bucket (`check_key`), then call the service.
//!
//! The function named `governor` in each group is tower_governor (which wraps governor), so
//! that `scripts/bench-ratios.py` pairs it with `hotlimit`. After criterion, the bench times
//! each scenario once more in plain loops and prints the cost each adds over the bare service,
//! with the ratios.
//!
//! `cargo bench --bench layer` (`-- --quick` for a quick run).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::Criterion;
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use http::{Request, Response};
use tower::{service_fn, Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{KeyExtractor as GovKeyExtractor, PeerIpKeyExtractor};
use tower_governor::{GovernorError, GovernorLayer};

use hotlimit::http::{KeyExtractor, Policy, RateLimitLayer, API_KEY_HEADER};

/// The key extractor tower_governor has no built-in form of: the `X-API-Key` header.
#[derive(Clone)]
struct ApiKey;

impl GovKeyExtractor for ApiKey {
    type Key = String;

    fn extract<T>(&self, req: &Request<T>) -> Result<String, GovernorError> {
        req.headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

/// Builds one request the way a server hands it to the stack.
fn request() -> Request<Body> {
    let mut request = Request::builder()
        .uri("/api/data")
        .header("x-api-key", "key-0123456789")
        .body(Body::empty())
        .unwrap();
    let peer = SocketAddr::from(([192, 0, 2, 7], 40_000));
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Calls `service` once and polls the answer to completion (everything here is ready at once).
fn call<S>(service: &mut S) -> bool
where
    S: Service<Request<Body>, Error = Infallible>,
    S::Response: IsSuccess,
{
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        unreachable!("the no-op service is always ready");
    };
    let future = pin!(service.call(request()));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(response)) => response.is_success(),
        Poll::Pending => unreachable!("the no-op service answers at once"),
    }
}

trait IsSuccess {
    fn is_success(&self) -> bool;
}

impl<B> IsSuccess for Response<B> {
    fn is_success(&self) -> bool {
        self.status().is_success()
    }
}

type Bare = tower::util::ServiceFn<
    fn(Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>>,
>;

fn bare() -> Bare {
    service_fn(|_| std::future::ready(Ok(Response::new(Body::empty()))))
}

/// A quota no benchmark loop can exhaust.
fn open_quota() -> hotlimit::Quota {
    hotlimit::Quota::per_second(1_000_000_000).unwrap()
}

/// hotlimit's layer on `key`, with the draft and the legacy header fields as asked.
fn open_policy(key: KeyExtractor, draft: bool, legacy: bool) -> RateLimitLayer {
    let policy = Policy::builder("bench")
        .quota(open_quota())
        .key(key)
        .draft_headers(draft)
        .legacy_headers(legacy)
        .build()
        .unwrap();
    RateLimitLayer::from_policy(policy)
}

/// The least a keyed layer on hotlimit's core can do: the header's value as the key, one
/// bucket charge, then the service. Not a usable middleware (no answer for a missing key or
/// a refusal, no headers); a measure of what the real one adds on top.
fn floor(mut inner: Bare) -> impl FnMut(Request<Body>) -> bool {
    let limiter = hotlimit::KeyedRateLimiter::<Vec<u8>>::new(open_quota());
    move |request| {
        let Some(key) = request.headers().get(API_KEY_HEADER) else {
            return false;
        };
        if limiter.check_key(key.as_bytes()).is_err() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let future = pin!(inner.call(request));
        matches!(future.poll(&mut cx), Poll::Ready(Ok(r)) if r.status().is_success())
    }
}

fn governor_layer<K: GovKeyExtractor>(key: K) -> GovernorLayer<K, NoOpMiddleware, Body> {
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .key_extractor(key)
        .finish()
        .unwrap();
    GovernorLayer::new(config)
}

/// tower_governor with its `x-ratelimit-*` headers on (`use_headers`).
fn governor_layer_with_headers<K: GovKeyExtractor>(
    key: K,
) -> GovernorLayer<K, StateInformationMiddleware, Body> {
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .key_extractor(key)
        .use_headers()
        .finish()
        .unwrap();
    GovernorLayer::new(config)
}

/// One call through a service, answering whether it passed.
type Run = Box<dyn FnMut() -> bool>;

/// The services each scenario compares, by name.
struct Scenario {
    group: &'static str,
    run: Vec<(&'static str, Run)>,
}

fn scenarios() -> Vec<Scenario> {
    let mut bare_service = bare();
    let mut key_ours = open_policy(KeyExtractor::api_key(), false, false).layer(bare());
    let mut key_theirs = governor_layer(ApiKey).layer(bare());
    let mut peer_ours = open_policy(KeyExtractor::peer_ip(), false, false).layer(bare());
    let mut peer_theirs = governor_layer(PeerIpKeyExtractor).layer(bare());
    let mut legacy_ours = open_policy(KeyExtractor::api_key(), false, true).layer(bare());
    let mut legacy_theirs = governor_layer_with_headers(ApiKey).layer(bare());
    let mut default_ours = open_policy(KeyExtractor::api_key(), true, true).layer(bare());
    let mut least = floor(bare());
    vec![
        Scenario {
            group: "layer_bare",
            run: vec![("service", Box::new(move || call(&mut bare_service)))],
        },
        Scenario {
            group: "layer_api_key",
            run: vec![
                ("hotlimit", Box::new(move || call(&mut key_ours))),
                ("governor", Box::new(move || call(&mut key_theirs))),
            ],
        },
        Scenario {
            group: "layer_peer_ip",
            run: vec![
                ("hotlimit", Box::new(move || call(&mut peer_ours))),
                ("governor", Box::new(move || call(&mut peer_theirs))),
            ],
        },
        Scenario {
            group: "layer_api_key_headers",
            run: vec![
                ("hotlimit", Box::new(move || call(&mut legacy_ours))),
                ("governor", Box::new(move || call(&mut legacy_theirs))),
                (
                    "hotlimit_default",
                    Box::new(move || call(&mut default_ours)),
                ),
            ],
        },
        Scenario {
            group: "layer_floor",
            run: vec![("floor", Box::new(move || least(request())))],
        },
    ]
}

/// Nanoseconds per call of `f` over a plain loop of `iters` calls.
fn time(f: &mut dyn FnMut() -> bool, iters: u32) -> f64 {
    for _ in 0..iters / 10 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..iters {
        assert!(black_box(f()));
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut scenarios = scenarios();
    for scenario in &mut scenarios {
        let mut group = criterion.benchmark_group(scenario.group);
        for (name, run) in &mut scenario.run {
            group.bench_function(*name, |b| b.iter(|| black_box(run())));
        }
        group.finish();
    }
    criterion.final_summary();

    // The summary: best of three plain loops per service, minus the bare service.
    let best = |run: &mut Run| {
        (0..3)
            .map(|_| time(run.as_mut(), 500_000))
            .fold(f64::INFINITY, f64::min)
    };
    let bare = best(&mut scenarios[0].run[0].1);
    let (floor_scenario, compared) = scenarios[1..].split_last_mut().expect("a floor");
    let floor = best(&mut floor_scenario.run[0].1) - bare;
    println!("\nadded cost per request over the bare no-op service ({bare:.0} ns):");
    let mut governor_api_key = f64::NAN;
    for scenario in compared {
        let mut added = scenario
            .run
            .iter_mut()
            .map(|(name, run)| (*name, best(run) - bare));
        let (_, ours) = added.next().expect("hotlimit");
        let (_, theirs) = added.next().expect("tower_governor");
        if scenario.group == "layer_api_key" {
            governor_api_key = theirs;
        }
        println!(
            "  {:<18} hotlimit {ours:>5.0} ns   tower_governor {theirs:>5.0} ns   ratio {:.2}",
            scenario.group.trim_start_matches("layer_"),
            ours / theirs
        );
        for (name, cost) in added {
            println!(
                "  {:<18} {name} {cost:>5.0} ns   ratio {:.2}",
                "",
                cost / theirs
            );
        }
    }
    println!(
        "  {:<18} {floor:>5.0} ns: a header read and a bucket charge, no layer ({:.2} of \
         tower_governor's api_key cost)",
        "floor",
        floor / governor_api_key
    );
}
