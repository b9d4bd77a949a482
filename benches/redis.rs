//! Checks per second of the Redis limiter against a local `redis-server` it starts itself,
//! with 1 and 64 checks in flight, each with and without leases.
//!
//! Run with `cargo bench --features redis --bench redis`. `HOTLIMIT_BENCH_SECS` sets the time
//! per case (default 3).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use hotlimit::redis::{RedisRateLimiter, Source};
use hotlimit::Quota;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    if !redis_server::available() {
        eprintln!("skipping: redis-server not found");
        return;
    }
    let server = redis_server::RedisServer::start();
    let secs = std::env::var("HOTLIMIT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let run = Duration::from_secs(secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    println!("redis limiter, {secs} s per case, redis-server on loopback, 2 tokio workers");
    for (lease, label) in [(None, "EVALSHA per check"), (Some(100), "lease of 100")] {
        for in_flight in [1, 64] {
            let (checks, redis) = runtime.block_on(measure(&server, lease, in_flight, run));
            let per_sec = checks as f64 / run.as_secs_f64();
            let mean_us = run.as_secs_f64() * 1e6 * in_flight as f64 / checks as f64;
            println!(
                "{label:>18}, {in_flight:>2} in flight: {per_sec:>10.0} checks/s, \
                 mean {mean_us:>7.1} us/check, {redis} round trips"
            );
        }
    }
}

/// Runs `in_flight` tasks checking their own keys until `run` has passed; returns the checks
/// done and how many went to Redis.
async fn measure(
    server: &redis_server::RedisServer,
    lease: Option<u64>,
    in_flight: usize,
    run: Duration,
) -> (u64, u64) {
    // A quota no check exhausts: the bench measures the round trip, not denials.
    let quota = Quota::per_second(1_000_000_000).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut builder = RedisRateLimiter::builder(client, quota).budget(Duration::from_secs(5));
    if let Some(tokens) = lease {
        builder = builder.lease(tokens, Duration::from_millis(100));
    }
    let limiter = builder.build().unwrap();
    limiter.check_key("warm-up").await.unwrap();

    let (checks, redis) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + run;
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let (limiter, checks, redis) = (limiter.clone(), checks.clone(), redis.clone());
            tokio::spawn(async move {
                let key = format!("bench-{i}");
                let (mut n, mut r) = (0, 0);
                while Instant::now() < deadline {
                    let allowed = limiter.check_key(&key).await.expect("admitted");
                    n += 1;
                    r += u64::from(allowed.source() == Source::Redis);
                }
                checks.fetch_add(n, Ordering::Relaxed);
                redis.fetch_add(r, Ordering::Relaxed);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (
        checks.load(Ordering::Relaxed),
        redis.load(Ordering::Relaxed),
    )
}
