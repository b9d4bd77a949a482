//! The hot path, hotlimit and governor side by side in one run.
//!
//! Every group holds one `hotlimit` and one `governor` function with the same quota, key type
//! and clock class (quanta's TSC clock); `scripts/bench-ratios.py` prints hotlimit / governor
//! per group from criterion's results.
//!
//! `cargo bench --bench hot_path` for the full run, `cargo bench --bench hot_path -- --quick`
//! for a quick one.

use std::hint::black_box;
use std::num::NonZeroU32;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};

/// A quota no benchmark loop can exhaust: every check is admitted.
fn open_quota() -> (hotlimit::Quota, governor::Quota) {
    let ours = hotlimit::Quota::per_second(1_000_000_000).unwrap();
    let theirs = governor::Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX);
    (ours, theirs)
}

/// A quota whose single token is spent up front: every check is refused.
fn closed_quota() -> (hotlimit::Quota, governor::Quota) {
    let ours = hotlimit::Quota::per_hour(1).unwrap();
    let theirs = governor::Quota::per_hour(NonZeroU32::MIN);
    (ours, theirs)
}

fn direct(c: &mut Criterion) {
    let (ours, theirs) = open_quota();
    let hot = hotlimit::RateLimiter::new(ours);
    let gov = governor::RateLimiter::direct(theirs);
    let mut group = c.benchmark_group("direct_allowed");
    group.bench_function("hotlimit", |b| b.iter(|| black_box(hot.check().is_ok())));
    group.bench_function("governor", |b| b.iter(|| black_box(gov.check().is_ok())));
    group.finish();

    let (ours, theirs) = closed_quota();
    let hot = hotlimit::RateLimiter::new(ours);
    let gov = governor::RateLimiter::direct(theirs);
    let _ = (hot.check(), gov.check());
    let mut group = c.benchmark_group("direct_denied");
    group.bench_function("hotlimit", |b| b.iter(|| black_box(hot.check().is_ok())));
    group.bench_function("governor", |b| b.iter(|| black_box(gov.check().is_ok())));
    group.finish();
}

/// Random indices drawn before timing, so the generator is not measured.
fn random_keys(keys: u64, len: usize) -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    (0..len).map(|_| rng.random_range(0..keys)).collect()
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_allowed");
    for keys in [1u64, 10_000, 1_000_000] {
        let (ours, theirs) = open_quota();
        let hot = hotlimit::KeyedRateLimiter::<u64>::new(ours);
        let gov = governor::RateLimiter::keyed(theirs);
        for key in 0..keys {
            let _ = (hot.check_key(&key), gov.check_key(&key));
        }
        let order = random_keys(keys, 1 << 16);

        group.bench_with_input(BenchmarkId::new("hotlimit", keys), &order, |b, order| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (order.len() - 1);
                black_box(hot.check_key(&order[i]).is_ok())
            })
        });
        group.bench_with_input(BenchmarkId::new("governor", keys), &order, |b, order| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (order.len() - 1);
                black_box(gov.check_key(&order[i]).is_ok())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, direct, keyed);
criterion_main!(benches);
