//! Runs a model under a fixed preemption bound and reports how much loom explored.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Explores every execution of `model` with at most `bound` preemptions per execution, then
/// prints how many executions that took (also when the model fails, before passing the panic on).
pub fn explore<F>(name: &str, bound: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    // A std atomic: it counts executions from outside the model, so loom must not see it.
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);

    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);

    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            model();
        });
    }));

    println!(
        "{name}: {} executions at preemption bound {bound} in {:.2?}{}",
        executions.load(Ordering::Relaxed),
        start.elapsed(),
        if outcome.is_err() { " (failed)" } else { "" },
    );
    if let Err(panic) = outcome {
        panic::resume_unwind(panic);
    }
}

/// One second in nanoseconds; with a quota of one token per second a unit is one nanosecond.
pub const SEC: u64 = 1_000_000_000;

/// Checks the conformance bound on the readings of cost-1 admissions under a quota of one token
/// per second with capacity `burst`: over every window `[a, b]` of readings, at most
/// `burst + floor(b - a)` admissions (in seconds).
pub fn assert_conforms(admitted: &[u64], burst: u64) {
    let mut readings = admitted.to_vec();
    readings.sort_unstable();
    for (i, &a) in readings.iter().enumerate() {
        for (j, &b) in readings.iter().enumerate().skip(i) {
            let count = (j - i + 1) as u64;
            let bound = burst + (b - a) / SEC;
            assert!(
                count <= bound,
                "{count} admissions with readings in [{a}, {b}] ns, bound {bound}: {readings:?}"
            );
        }
    }
}

use hotlimit::loom_api::Keyed;
use hotlimit::Quota;

/// One token per second, capacity 1.
pub fn one_per_second() -> Quota {
    Quota::per_second(1).unwrap()
}

/// The stale reading across an eviction. Key 7 was admitted at 10 s (its word is 11 s) and has
/// sat full and idle; at 13 s a sweep evicts it while a request holding a reading of 10.5 s
/// (taken before it was descheduled) and a request at 13 s check the key. On the old bucket the
/// stale request is denied; a replacement bucket must deny it too. Asserts the conformance
/// bound on the readings of all admissions, and that the key count matches the map.
pub fn stale_reading_across_eviction(limiter: Keyed) {
    let limiter = loom::sync::Arc::new(limiter);
    assert!(limiter.check_n_at(7, 1, 10 * SEC).is_ok());
    let t = 13 * SEC;

    let sweeper = {
        let limiter = limiter.clone();
        loom::thread::spawn(move || limiter.retain_recent_at(t))
    };
    let checks: Vec<_> = [10 * SEC + SEC / 2, t]
        .into_iter()
        .map(|now| {
            let limiter = limiter.clone();
            loom::thread::spawn(move || limiter.check_n_at(7, 1, now).is_ok().then_some(now))
        })
        .collect();
    let mut admitted = vec![10 * SEC];
    admitted.extend(checks.into_iter().filter_map(|h| h.join().unwrap()));
    let evicted = sweeper.join().unwrap();

    assert_conforms(&admitted, 1);
    assert!(evicted <= 1);
    assert_eq!(limiter.len(), 1, "evicted {evicted}");
    assert_eq!(limiter.len(), limiter.entries());
}

/// The horizon read before the key's previous bucket existed. One thread admits key 7 at 10 s
/// and then sweeps at 13 s, evicting it; another checks key 7 with a reading of 10.5 s. If the
/// second one misses, reads the horizon, and is preempted until the first is done, the bucket
/// it inserts must still deny it. Asserts the conformance bound and the key count.
pub fn horizon_read_before_the_previous_bucket(limiter: Keyed) {
    let limiter = loom::sync::Arc::new(limiter);
    let first = {
        let limiter = limiter.clone();
        loom::thread::spawn(move || {
            let ok = limiter.check_n_at(7, 1, 10 * SEC).is_ok();
            limiter.retain_recent_at(13 * SEC);
            ok.then_some(10 * SEC)
        })
    };
    let stale = {
        let limiter = limiter.clone();
        let now = 10 * SEC + SEC / 2;
        loom::thread::spawn(move || limiter.check_n_at(7, 1, now).is_ok().then_some(now))
    };
    let admitted: Vec<u64> = [first, stale]
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .collect();

    assert_conforms(&admitted, 1);
    assert!(limiter.len() <= 1);
    assert_eq!(limiter.len(), limiter.entries());
}
