//! The hot path, hotlimit and governor side by side in one run, with the floors beside them.
//!
//! Every group holds a `hotlimit` function and its `governor` peer with the same quota, key type
//! and clock class; keyed groups add `governor_foldhash`, governor with hotlimit's hasher, so
//! that the map and the hasher can be told apart. `floor` holds what the hardware and the
//! building blocks cost alone. After a run, `python3 scripts/bench-ratios.py` prints the ratios.
//!
//! ```text
//! cargo bench --bench hot_path               # full run
//! cargo bench --bench hot_path -- --quick    # a quick one
//! ```

use std::hash::{BuildHasher, Hash};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};

/// Key counts for the keyed groups: the curve that the README's chart draws.
const KEY_COUNTS: [u64; 5] = [1, 100, 10_000, 100_000, 1_000_000];

/// A quota no benchmark loop can exhaust: every check is admitted.
fn open_quota() -> (hotlimit::Quota, governor::Quota) {
    let ours = hotlimit::Quota::per_second(1_000_000_000).unwrap();
    let theirs = governor::Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX);
    (ours, theirs)
}

/// A quota whose single token is spent up front: every check is refused.
fn closed_quota() -> (hotlimit::Quota, governor::Quota) {
    (
        hotlimit::Quota::per_hour(1).unwrap(),
        governor::Quota::per_hour(NonZeroU32::MIN),
    )
}

/// Random indices drawn before timing, so the generator is not measured.
fn random_keys(keys: u64) -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    (0..1 << 16).map(|_| rng.random_range(0..keys)).collect()
}

/// Cycles through `order`, so each iteration looks up the next pre-drawn key.
fn cycle<'a, T>(order: &'a [T]) -> impl FnMut() -> &'a T {
    let mut i = 0;
    move || {
        i = (i + 1) & (order.len() - 1);
        &order[i]
    }
}

/// The allowed and denied groups of one clock class, `suffix` naming the class.
fn direct_groups<C, G>(c: &mut Criterion, suffix: &str, ours: impl Fn() -> C, theirs: G)
where
    C: hotlimit::Clock,
    G: governor::clock::Clock + Clone,
    G::Instant: governor::clock::Reference,
{
    for (name, (quota, peer), spend) in [
        ("direct_allowed", open_quota(), false),
        ("direct_denied", closed_quota(), true),
    ] {
        let hot = hotlimit::RateLimiter::with_clock(quota, ours());
        let gov = governor::RateLimiter::direct_with_clock(peer, theirs.clone());
        if spend {
            let _ = (hot.check(), gov.check());
        }
        let mut group = c.benchmark_group(format!("{name}{suffix}"));
        group.bench_function("hotlimit", |b| b.iter(|| black_box(hot.check().is_ok())));
        group.bench_function("governor", |b| b.iter(|| black_box(gov.check().is_ok())));
        group.finish();
    }
}

fn direct(c: &mut Criterion) {
    let theirs = governor::clock::QuantaClock::default();
    direct_groups(c, "", hotlimit::QuantaClock::new, theirs);
}

fn direct_recent(c: &mut Criterion) {
    // governor's upkeep clock runs its quanta's upkeep thread; hotlimit's quanta is another
    // version with its own cached time, so it gets its own thread.
    let interval = Duration::from_millis(1);
    let _upkeep = quanta::Upkeep::new(interval)
        .start()
        .expect("an upkeep thread");
    let theirs = governor::clock::QuantaUpkeepClock::from_interval(interval).unwrap();
    direct_groups(c, "_recent", hotlimit::RecentClock::new, theirs);
}

/// One keyed group: each limiter filled with `keys`, then checked on random existing keys.
fn keyed_group<K, Q>(
    c: &mut Criterion,
    name: &str,
    keys: &[u64],
    make: impl Fn(u64) -> K,
    spend: bool,
) where
    K: Hash + Eq + Clone + Send + Sync + std::borrow::Borrow<Q> + 'static,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    let (ours, theirs) = if spend { closed_quota() } else { open_quota() };
    let mut group = c.benchmark_group(name);
    for &count in keys {
        let hot = hotlimit::KeyedRateLimiter::<K>::new(ours);
        let gov = governor::RateLimiter::keyed(theirs);
        let fold =
            governor::RateLimiter::dashmap_with_hasher(theirs, hotlimit::DefaultHasher::default());
        let all: Vec<K> = (0..count).map(&make).collect();
        for key in &all {
            let _ = (
                hot.check_key(key.borrow()),
                gov.check_key(key),
                fold.check_key(key),
            );
        }
        let order: Vec<K> = random_keys(count)
            .into_iter()
            .map(|i| all[i as usize].clone())
            .collect();
        drop(all);

        group.bench_with_input(BenchmarkId::new("hotlimit", count), &order, |b, order| {
            let mut next = cycle(order);
            b.iter(|| black_box(hot.check_key(next().borrow()).is_ok()))
        });
        group.bench_with_input(BenchmarkId::new("governor", count), &order, |b, order| {
            let mut next = cycle(order);
            b.iter(|| black_box(gov.check_key(next()).is_ok()))
        });
        group.bench_with_input(
            BenchmarkId::new("governor_foldhash", count),
            &order,
            |b, order| {
                let mut next = cycle(order);
                b.iter(|| black_box(fold.check_key(next()).is_ok()))
            },
        );
    }
    group.finish();
}

fn keyed(c: &mut Criterion) {
    keyed_group::<u64, u64>(c, "keyed_allowed", &KEY_COUNTS, |i| i, false);
    keyed_group::<u64, u64>(c, "keyed_denied", &[1, 10_000, 1_000_000], |i| i, true);

    // 16-byte keys, looked up by &str in hotlimit (governor takes &String).
    let key = |i: u64| format!("key-{i:012}");
    keyed_group::<String, str>(c, "keyed_allowed_string", &[1_000_000], key, false);
}

fn floors(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    let word = AtomicU64::new(0);
    group.bench_function("cas", |b| {
        b.iter(|| {
            let v = word.load(Ordering::Relaxed);
            black_box(word.compare_exchange_weak(v, v + 1, Ordering::Relaxed, Ordering::Relaxed))
        })
    });
    let clock = quanta::Clock::new();
    group.bench_function("quanta_raw", |b| b.iter(|| black_box(clock.raw())));
    let _upkeep = quanta::Upkeep::new(Duration::from_millis(1)).start();
    group.bench_function("quanta_recent", |b| b.iter(|| black_box(clock.recent())));

    let std_hasher = std::hash::RandomState::new();
    let fold = hotlimit::DefaultHasher::default();
    group.bench_function("siphash_u64", |b| {
        b.iter(|| black_box(std_hasher.hash_one(black_box(7u64))))
    });
    group.bench_function("foldhash_u64", |b| {
        b.iter(|| black_box(fold.hash_one(black_box(7u64))))
    });

    // The least a papaya-based keyed check can cost: a lookup, a clock read and a CAS on the
    // value, with nothing else. Beside `keyed_allowed`, it shows what the map itself costs.
    let clock = quanta::Clock::new();
    for count in [10_000u64, 1_000_000] {
        let order = random_keys(count);
        let map = papaya::HashMap::builder()
            .hasher(hotlimit::DefaultHasher::default())
            .resize_mode(papaya::ResizeMode::Blocking)
            .build();
        for key in 0..count {
            map.pin().insert(key, AtomicU64::new(0));
        }
        group.bench_with_input(
            BenchmarkId::new("papaya_get_clock_cas", count),
            &order,
            |b, order| {
                let mut next = cycle(order);
                b.iter(|| {
                    let map = map.pin();
                    let word = map.get(next()).expect("a key");
                    let now = clock.raw();
                    let v = word.load(Ordering::Relaxed);
                    black_box(word.compare_exchange_weak(
                        v,
                        v.max(now) + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ))
                })
            },
        );
    }

    for count in [1_000u64, 1_000_000] {
        let order = random_keys(count);
        let std_map = papaya::HashMap::builder()
            .hasher(std::hash::RandomState::new())
            .build();
        let fold_map = papaya::HashMap::builder()
            .hasher(hotlimit::DefaultHasher::default())
            .build();
        for key in 0..count {
            std_map.pin().insert(key, AtomicU64::new(0));
            fold_map.pin().insert(key, AtomicU64::new(0));
        }
        group.bench_with_input(
            BenchmarkId::new("papaya_get_siphash", count),
            &order,
            |b, order| {
                let mut next = cycle(order);
                b.iter(|| black_box(std_map.pin().get(next()).is_some()))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("papaya_get_foldhash", count),
            &order,
            |b, order| {
                let mut next = cycle(order);
                b.iter(|| black_box(fold_map.pin().get(next()).is_some()))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, direct, direct_recent, keyed, floors);
criterion_main!(benches);
