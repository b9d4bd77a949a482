//! With the `metrics` feature, the layer's counts reach the `metrics` facade.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hotlimit::http::{Policy, RateLimitLayer};
use hotlimit::ManualClock;
use http::{Request, Response};
use http_body_util::Full;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::{service_fn, Layer, ServiceExt};

/// A recorder keeping each counter by its labels, `policy/outcome`.
#[derive(Default)]
struct Counts(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counts {
    fn get(&self, label: &str) -> u64 {
        let counts = self.0.lock().unwrap();
        counts.get(label).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        assert_eq!(key.name(), "hotlimit_requests_total");
        let labels: Vec<&str> = key.labels().map(|l| l.value()).collect();
        let counter = Arc::new(AtomicU64::new(0));
        let mut counts = self.0.lock().unwrap();
        counts.insert(labels.join("/"), Arc::clone(&counter));
        Counter::from_arc(counter)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn counts_reach_the_facade() {
    let counts = Counts::default();
    let policy = Policy::builder("m")
        .quota("2/min".parse().unwrap())
        .build()
        .unwrap();
    let layer = metrics::with_local_recorder(&counts, || {
        RateLimitLayer::from_policy_with_clock(policy, ManualClock::new())
    });

    let ok = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    for key in ["a", "a", "a", ""] {
        let request = Request::builder()
            .header("x-api-key", key)
            .body(Full::default())
            .unwrap();
        layer.layer(ok).oneshot(request).await.unwrap();
    }

    assert_eq!(counts.get("m/allowed"), 2);
    assert_eq!(counts.get("m/denied"), 1);
    assert_eq!(counts.get("m/key_error"), 1);
    assert_eq!(counts.get("m/shadow_denied"), 0);
    let stats = layer.stats();
    assert_eq!((stats.allowed, stats.denied, stats.key_errors), (2, 1, 1));
}
