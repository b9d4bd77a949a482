//! A check on a key that exists allocates nothing.

use hotlimit::{KeyedRateLimiter, ManualClock, Quota, RateLimiter};
use std::time::Duration;

fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn a_hit_on_an_existing_string_key_allocates_nothing() {
    let clock = ManualClock::new();
    let limiter =
        KeyedRateLimiter::<String, _>::with_clock(Quota::per_second(100).unwrap(), clock.clone());
    let keys: Vec<String> = (0..1_000).map(|i| format!("api-key-{i}")).collect();
    for key in &keys {
        limiter.check_key(key.as_str()).unwrap();
    }

    // Admitted and refused checks alike, borrowing `&str`.
    let count = allocations(|| {
        for round in 0..300 {
            for key in &keys {
                let _ = limiter.check_key(key.as_str());
            }
            if round % 100 == 0 {
                clock.advance(Duration::from_millis(10));
            }
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn a_hit_on_an_existing_integer_key_allocates_nothing() {
    let limiter = KeyedRateLimiter::<u64>::new(Quota::per_second(1_000).unwrap());
    for key in 0..10_000u64 {
        limiter.check_key(&key).unwrap();
    }
    let count = allocations(|| {
        for key in 0..100_000u64 {
            let _ = limiter.check_key_n(&(key % 10_000), 2);
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn the_direct_limiter_allocates_nothing() {
    let limiter = RateLimiter::new(Quota::per_second(1_000).unwrap());
    let count = allocations(|| {
        for _ in 0..100_000 {
            let _ = limiter.check();
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn a_new_key_does_allocate() {
    // The counter sees allocations at all: a miss stores the key and its bucket.
    let limiter = KeyedRateLimiter::<String>::new(Quota::per_second(1).unwrap());
    assert!(allocations(|| assert!(limiter.check_key("new").is_ok())) > 0);
}

/// Through the HTTP layer with its header families off, a passed request on a known key costs
/// no allocation of the layer's own (two quotas, the all-or-nothing path included).
#[cfg(feature = "http")]
#[test]
fn a_passed_request_through_the_layer_allocates_nothing_without_headers() {
    use core::future::Future;
    use core::task::{Context, Poll, Waker};
    use hotlimit::http::{Policy, RateLimitLayer};
    use http::{Request, Response};
    use tower::{Layer, Service};

    let policy = Policy::builder("quiet")
        .quota("1000000/s".parse().unwrap())
        .quota("100000000/h".parse().unwrap())
        .draft_headers(false)
        .legacy_headers(false)
        .build()
        .unwrap();
    let layer = RateLimitLayer::from_policy_with_clock(policy, ManualClock::new());
    let noop = tower::service_fn(|_: Request<()>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(())))
    });
    let mut service = layer.layer(noop);
    let request = || {
        Request::builder()
            .header("x-api-key", "known-key")
            .body(())
            .unwrap()
    };
    let mut call = |request| {
        let mut cx = Context::from_waker(Waker::noop());
        let future = core::pin::pin!(service.call(request));
        matches!(future.poll(&mut cx), Poll::Ready(Ok(r)) if r.status() == 200)
    };
    assert!(call(request()));

    let requests: Vec<_> = (0..1_000).map(|_| request()).collect();
    let count = allocations(|| {
        for request in requests {
            assert!(call(request));
        }
    });
    assert_eq!(count, 0);
}
