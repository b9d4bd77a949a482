//! Two threads at once: total checks per second, hotlimit against governor in one run.
//!
//! ```text
//! cargo bench --bench threads             # 3 rounds of 1 s per scenario and limiter
//! cargo bench --bench threads -- --quick  # 1 round of 0.3 s
//! ```
//!
//! Scenarios: both threads on one shared key; each thread on its own 1,000 keys; both on random
//! keys out of 1M. Every check is admitted (the quota cannot run dry). Prints the median of the
//! rounds in millions of checks per second, and hotlimit's throughput over each peer's.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

const THREADS: usize = 2;

/// A keyed limiter as the benchmark drives it.
trait Keyed: Sync {
    fn check(&self, key: &u64) -> bool;
}

impl Keyed for hotlimit::KeyedRateLimiter<u64> {
    fn check(&self, key: &u64) -> bool {
        self.check_key(key).is_ok()
    }
}

/// governor's keyed limiter on its dashmap store, with the hasher `S`.
type Governor<S> = governor::RateLimiter<
    u64,
    governor::state::keyed::DashMapStateStore<u64, S>,
    governor::clock::DefaultClock,
>;

impl<S: std::hash::BuildHasher + Clone + Send + Sync> Keyed for Governor<S> {
    fn check(&self, key: &u64) -> bool {
        self.check_key(key).is_ok()
    }
}

/// Runs `THREADS` threads on `limiter` for `time`, thread `t` cycling through `keys[t]`.
fn throughput(limiter: &dyn Keyed, keys: &[Vec<u64>], time: Duration) -> f64 {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let start = Barrier::new(THREADS + 1);
    let elapsed = std::thread::scope(|scope| {
        for own in keys {
            let (stop, total, start) = (&stop, &total, &start);
            scope.spawn(move || {
                start.wait();
                let mut done = 0u64;
                'run: loop {
                    for key in own.iter() {
                        black_box(limiter.check(key));
                    }
                    done += own.len() as u64;
                    if stop.load(Ordering::Relaxed) {
                        break 'run;
                    }
                }
                total.fetch_add(done, Ordering::Relaxed);
            });
        }
        start.wait();
        let began = Instant::now();
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        began.elapsed()
    });
    total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64() / 1e6
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn fill<K: Keyed + ?Sized>(limiter: &K, keys: &[Vec<u64>]) {
    for key in keys.iter().flatten() {
        limiter.check(key);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, time) = if quick {
        (1, Duration::from_millis(300))
    } else {
        (3, Duration::from_secs(1))
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);

    // Per scenario, the keys each thread cycles through (1,024 per thread, drawn up front).
    let scenarios: Vec<(&str, Vec<Vec<u64>>)> = vec![
        ("one shared key", vec![vec![0; 1024]; THREADS]),
        (
            "disjoint keys",
            (0..THREADS as u64)
                .map(|t| (t * 1024..(t + 1) * 1024).collect())
                .collect(),
        ),
        (
            "1M random keys",
            (0..THREADS)
                .map(|_| {
                    (0..1 << 16)
                        .map(|_| rng.random_range(0..1_000_000))
                        .collect()
                })
                .collect(),
        ),
    ];
    let all_keys: Vec<Vec<u64>> = vec![(0..1_000_000).collect()];

    let ours = hotlimit::Quota::per_second(1_000_000_000).unwrap();
    let theirs = governor::Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX);

    println!("{THREADS} threads, median of {rounds} round(s) of {time:?}; M checks/s in total");
    println!(
        "| scenario | hotlimit | governor | governor (foldhash) | vs governor | vs foldhash |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, keys) in &scenarios {
        let hot = hotlimit::KeyedRateLimiter::<u64>::new(ours);
        let gov = governor::RateLimiter::keyed(theirs);
        let fold =
            governor::RateLimiter::dashmap_with_hasher(theirs, hotlimit::DefaultHasher::default());
        let limiters: [&dyn Keyed; 3] = [&hot, &gov, &fold];
        for limiter in limiters {
            fill(limiter, &all_keys);
        }

        let mut results = [0.0; 3];
        for (result, limiter) in results.iter_mut().zip(limiters) {
            *result = median(
                (0..rounds)
                    .map(|_| throughput(limiter, keys, time))
                    .collect(),
            );
        }
        let [h, g, f] = results;
        println!(
            "| {name} | {h:.1} | {g:.1} | {f:.1} | {:.2}x | {:.2}x |",
            h / g,
            h / f
        );
    }
}
