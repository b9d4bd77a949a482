//! Checks per second of the Redis limiter against a local `redis-server` it starts itself,
//! with 1 and 64 checks in flight, each with and without leases.
//!
//! Run with `cargo bench --features redis --bench redis`. `HOTLIMIT_BENCH_SECS` sets the time
//! per case (default 3).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use hotlimit::redis::{RedisRateLimiter, Source};
use hotlimit::Quota;
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
            let t = runtime.block_on(measure(&server, lease, in_flight, run));
            let per_sec = (t.redis + t.local) as f64 / run.as_secs_f64();
            let mean = |ns: u64, n: u64| ns as f64 / 1e3 / n.max(1) as f64;
            println!(
                "{label:>17}, {in_flight:>2} in flight: {per_sec:>9.0} checks/s; \
                 {} via Redis, mean {:.1} us; {} from the lease, mean {:.2} us",
                t.redis,
                mean(t.redis_ns, t.redis),
                t.local,
                mean(t.local_ns, t.local),
            );
        }
    }
}

/// Checks done, and their total time, by where they were decided.
#[derive(Default)]
struct Tally {
    redis: u64,
    redis_ns: u64,
    local: u64,
    local_ns: u64,
}

/// Runs `in_flight` tasks checking their own keys until `run` has passed. Each task yields
/// after every check, so that a check answered from the lease does not keep the other tasks
/// from running.
async fn measure(
    server: &redis_server::RedisServer,
    lease: Option<u64>,
    in_flight: usize,
    run: Duration,
) -> Tally {
    // A quota no check exhausts: the bench measures the round trip, not denials.
    let quota = Quota::per_second(1_000_000_000).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut builder = RedisRateLimiter::builder(client, quota).budget(Duration::from_secs(5));
    if let Some(tokens) = lease {
        builder = builder.lease(tokens, Duration::from_millis(100));
    }
    let limiter = builder.build().unwrap();
    limiter.check_key("warm-up").await.unwrap();

    let deadline = Instant::now() + run;
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let key = format!("bench-{i}");
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let allowed = limiter.check_key(&key).await.expect("admitted");
                    let ns = start.elapsed().as_nanos() as u64;
                    if allowed.source() == Source::Redis {
                        (tally.redis, tally.redis_ns) = (tally.redis + 1, tally.redis_ns + ns);
                    } else {
                        (tally.local, tally.local_ns) = (tally.local + 1, tally.local_ns + ns);
                    }
                    tokio::task::yield_now().await;
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await.unwrap();
        total.redis += t.redis;
        total.redis_ns += t.redis_ns;
        total.local += t.local;
        total.local_ns += t.local_ns;
    }
    total
}
