//! The distributed limiter against a real `redis-server`, started per test on a free loopback
//! port. Without a `redis-server` on `PATH` each test prints a note and passes, unless
//! `HOTLIMIT_REQUIRE_REDIS=1`.
//!
//! Redis keeps its own clock, so these tests cannot step time by hand: they compare decisions
//! where time barely matters (a burst spent at one instant) and use short real periods with
//! generous margins where it does.

#[path = "support/redis_server.rs"]
mod redis_server;

use hotlimit::redis::{BackendError, FailurePolicy, RedisCheckError, RedisRateLimiter, Source};
use hotlimit::{KeyedRateLimiter, ManualClock, Quota};
use redis_server::{start_or_skip, RedisServer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

macro_rules! server {
    () => {
        match start_or_skip(std::thread::current().name().unwrap_or("redis")) {
            Some(server) => server,
            None => return,
        }
    };
}

fn quota(count: u64, period: Duration, burst: u64) -> Quota {
    Quota::new(count, period)
        .unwrap()
        .with_burst(burst)
        .unwrap()
}

fn limiter(server: &RedisServer, quota: Quota) -> RedisRateLimiter {
    RedisRateLimiter::builder(redis::Client::open(server.url()).unwrap(), quota)
        .budget(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// The largest cost a quota may admit over a window of `window`: `C + n * d / P`.
fn conformance_bound(quota: Quota, window: Duration) -> u64 {
    let refill = window.as_nanos() * u128::from(quota.count()) / quota.period().as_nanos();
    quota.burst() + refill as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_matches_the_in_process_limiter() {
    let server = server!();
    let q = quota(5, Duration::from_secs(10), 5);
    let shared = limiter(&server, q);
    let local = KeyedRateLimiter::<String, _>::with_clock(q, ManualClock::new());

    let start = Instant::now();
    for cost in [1, 2, 1, 1, 1, 3, 0, 2] {
        let remote = shared.check_key_n("k", cost).await;
        let here = local.check_key_n("k", cost);
        match (&remote, &here) {
            (Ok(allowed), Ok(snapshot)) => {
                assert_eq!(allowed.source(), Source::Redis);
                let remote = allowed.snapshot().expect("a Redis decision has a snapshot");
                assert_eq!(remote.remaining(), snapshot.remaining(), "cost {cost}");
                assert!(remote.reset_after() <= snapshot.reset_after());
            }
            (Err(RedisCheckError::Denied(remote)), Err(hotlimit::CheckError::Denied(here))) => {
                // Redis's clock moved on a little since the first check; the in-process one
                // did not. The hint is otherwise exact.
                let drift = start.elapsed();
                assert!(remote.retry_after() <= here.retry_after(), "cost {cost}");
                assert!(
                    remote.retry_after() + drift >= here.retry_after(),
                    "cost {cost}"
                );
                assert_eq!(remote.remaining(), here.remaining());
            }
            _ => panic!("cost {cost}: Redis said {remote:?}, in process {here:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_above_capacity_never_touches_the_network() {
    // Nothing listens on this port; the check must not even try.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let limiter = RedisRateLimiter::builder(client, quota(5, Duration::from_secs(1), 5))
        .build()
        .unwrap();
    let error = limiter.check_key_n("k", 6).await.unwrap_err();
    assert!(matches!(error, RedisCheckError::InsufficientCapacity(e) if e.capacity == 5));
    assert_eq!(limiter.backend_errors(), 0);
    assert!(!limiter.breaker_open());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refills_after_the_hinted_wait() {
    let server = server!();
    // 10 per second: a token every 100 ms, at most 2 at once.
    let q = quota(10, Duration::from_secs(1), 2);
    let limiter = limiter(&server, q);

    // Spend the burst (a slow machine may see a token come back meanwhile).
    let mut tries = 0;
    let denied = loop {
        match limiter.check_key("k").await {
            Ok(_) => tries += 1,
            Err(RedisCheckError::Denied(denied)) => break denied,
            Err(other) => panic!("{other:?}"),
        }
        assert!(tries <= 10, "the bucket does not empty");
    };
    assert!(tries >= 2);
    let wait = denied.retry_after();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
    assert_eq!(denied.retry_after_secs(), 1);

    tokio::time::sleep(wait + Duration::from_millis(2)).await;
    assert!(limiter.check_key("k").await.is_ok());

    // Three token intervals refill the burst of 2, and no more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let mut admitted = 0;
    while limiter.check_key("k").await.is_ok() {
        admitted += 1;
        assert!(admitted <= 20, "the bucket does not empty");
    }
    let refilled = start.elapsed().as_millis() as u64 / 100 + 1;
    assert!(
        admitted >= 2 && admitted <= 2 + refilled,
        "admitted {admitted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_ttl_is_never_zero() {
    // C22: 3/s with capacity 1.
    let server = server!();
    let limiter = limiter(&server, quota(3, Duration::from_secs(1), 1));

    limiter.check_key_n("zero", 0).await.unwrap();
    assert_eq!(server.raw(&["PTTL", &limiter.redis_key("zero")]), ":-2\r\n");

    limiter.check_key("k").await.unwrap();
    let key = limiter.redis_key("k");
    assert_eq!(key, "{hotlimit:k}");
    let pttl: i64 = server.raw(&["PTTL", &key]).trim()[1..].parse().unwrap();
    assert!(pttl > 0 && pttl <= 334, "PTTL {pttl}");

    assert!(limiter.check_key("k").await.is_err());
    let pttl: i64 = server.raw(&["PTTL", &key]).trim()[1..].parse().unwrap();
    assert!(pttl > 0 && pttl <= 334, "PTTL after a denial {pttl}");
}

/// Hammers `key` from `tasks` tasks until `run` has passed; returns the admissions.
async fn hammer(limiter: RedisRateLimiter, key: &'static str, tasks: usize, run: Duration) -> u64 {
    let admitted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + run;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (limiter, admitted) = (limiter.clone(), admitted.clone());
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if limiter.check_key(key).await.is_ok() {
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    admitted.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_share_one_budget() {
    // C21: ten nodes, each with its own connection, share one 150/s key. The script reads the
    // server's clock, so whatever the nodes' clocks say cannot add tokens.
    let server = server!();
    let q = Quota::per_second(150).unwrap();
    let start = Instant::now();
    let runs: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(hammer(
                limiter(&server, q),
                "shared",
                3,
                Duration::from_secs(1),
            ))
        })
        .collect();
    let mut total = 0;
    for run in runs {
        total += run.await.unwrap();
    }
    let window = start.elapsed();
    let bound = conformance_bound(q, window);
    assert!(
        total <= bound,
        "admitted {total}, bound {bound} over {window:?}"
    );
    assert!(total >= 150, "admitted only {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_key() {
    let server = server!();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "process_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("HOTLIMIT_WORKER_REDIS", server.url())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let (mut total, mut first, mut last) = (0u64, u128::MAX, 0u128);
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("WORKER ").map(|(_, report)| report))
            .unwrap_or_else(|| panic!("no report in {stdout}"));
        let numbers: Vec<u128> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        total += numbers[0] as u64;
        first = first.min(numbers[1]);
        last = last.max(numbers[2]);
    }
    let window = Duration::from_micros((last - first) as u64);
    let bound = conformance_bound(worker_quota(), window);
    assert!(
        total <= bound,
        "admitted {total}, bound {bound} over {window:?}"
    );
    assert!(total >= worker_quota().burst(), "admitted only {total}");
}

fn worker_quota() -> Quota {
    quota(100, Duration::from_secs(1), 20)
}

/// Run by [`two_processes_share_one_key`] in a child process; does nothing otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_worker() {
    let Ok(url) = std::env::var("HOTLIMIT_WORKER_REDIS") else {
        return;
    };
    let client = redis::Client::open(url).unwrap();
    let limiter = RedisRateLimiter::builder(client, worker_quota())
        .budget(Duration::from_secs(2))
        .build()
        .unwrap();
    let micros = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros()
    };
    let start = micros();
    let admitted = hammer(limiter, "two-processes", 4, Duration::from_millis(700)).await;
    println!("WORKER {admitted} {start} {}", micros());
}

/// What 100 concurrent checks on one key answered, and the slowest one's time.
async fn burst_of_100(
    limiter: &RedisRateLimiter,
    key: &'static str,
) -> (Vec<Result<Source, RedisCheckError>>, Duration) {
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let result = limiter.check_key(key).await.map(|a| a.source());
                (result, start.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut slowest = Duration::ZERO;
    for handle in handles {
        let (result, took) = handle.await.unwrap();
        results.push(result);
        slowest = slowest.max(took);
    }
    (results, slowest)
}

const BUDGET: Duration = Duration::from_millis(300);
const COOLDOWN: Duration = Duration::from_secs(1);
/// Scheduling slack on a loaded two-core machine, on top of the budget.
const SLACK: Duration = Duration::from_millis(400);

/// C23: Redis dies mid-run. Returns the two bursts' answers: the first while the breaker is
/// still closed, the second once it is open. Then brings Redis back and checks recovery.
async fn outage(
    mut server: RedisServer,
    policy: FailurePolicy,
) -> [Vec<Result<Source, RedisCheckError>>; 2] {
    let client = redis::Client::open(server.url()).unwrap();
    let limiter = RedisRateLimiter::builder(client, Quota::per_minute(3).unwrap())
        .failure_policy(policy)
        .budget(BUDGET)
        .cooldown(COOLDOWN)
        .build()
        .unwrap();
    assert_eq!(
        limiter.check_key("warm").await.unwrap().source(),
        Source::Redis
    );

    server.kill();
    let (first, slowest) = burst_of_100(&limiter, "down").await;
    assert!(
        slowest <= BUDGET + SLACK,
        "{policy:?}: a check took {slowest:?}"
    );
    assert!(limiter.breaker_open());
    assert!(limiter.backend_errors() >= 1);

    // The breaker is open: nobody waits for Redis now.
    let start = Instant::now();
    let (second, _) = burst_of_100(&limiter, "down").await;
    assert!(
        start.elapsed() < BUDGET,
        "{policy:?}: took {:?}",
        start.elapsed()
    );
    assert_eq!(limiter.fallback_decisions(), 200);

    // Redis comes back: after the cool-down a probe closes the breaker.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(allowed) = limiter.check_key("back").await {
            if allowed.source() == Source::Redis {
                break;
            }
        }
        assert!(Instant::now() < deadline, "{policy:?}: no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!limiter.breaker_open());
    [first, second]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fail_closed_denies_everything() {
    let server = server!();
    for burst in outage(server, FailurePolicy::FailClosed).await {
        assert!(burst
            .iter()
            .all(|r| matches!(r, Err(RedisCheckError::Unavailable(_)))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fail_open_admits_everything() {
    let server = server!();
    for burst in outage(server, FailurePolicy::FailOpen).await {
        assert!(burst.iter().all(|r| matches!(r, Ok(Source::FailOpen))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_local_fallback_admits_the_local_quota() {
    let server = server!();
    let policy = FailurePolicy::LocalFallback(Quota::per_minute(3).unwrap());
    let [first, second] = outage(server, policy).await;
    let admitted = |burst: &[Result<Source, RedisCheckError>]| {
        burst
            .iter()
            .filter(|r| matches!(r, Ok(Source::LocalFallback)))
            .count()
    };
    assert_eq!(admitted(&first) + admitted(&second), 3);
    assert!(first.iter().chain(&second).all(|r| matches!(
        r,
        Ok(Source::LocalFallback) | Err(RedisCheckError::Denied(_))
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_costs_each_check_the_budget_at_most() {
    let server = server!();
    let client = redis::Client::open(server.url()).unwrap();
    let limiter = RedisRateLimiter::builder(client, Quota::per_second(10).unwrap())
        .budget(BUDGET)
        .cooldown(Duration::from_secs(60))
        .build()
        .unwrap();
    limiter.check_key("warm").await.unwrap();

    // SIGSTOP: the connection stays open and nothing answers.
    let pid = server.pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let (answers, slowest) = burst_of_100(&limiter, "hung").await;
    let _ = Command::new("kill").args(["-CONT", &pid]).status();

    assert!(slowest <= BUDGET + SLACK, "a check took {slowest:?}");
    assert!(answers.iter().all(|r| matches!(
        r,
        Err(RedisCheckError::Unavailable(
            BackendError::Timeout(_) | BackendError::BreakerOpen
        ))
    )));
    assert!(limiter.breaker_open());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_values_are_errors_not_panics() {
    let server = server!();
    let limiter = limiter(&server, Quota::per_second(10).unwrap());
    let key = |k| limiter.redis_key(k);

    server.raw(&["LPUSH", &key("list"), "x"]);
    server.raw(&["SET", &key("text"), "garbage"]);
    server.raw(&["SET", &key("huge"), "99999999999999999999:1"]);
    for bad in ["list", "text", "huge"] {
        let error = limiter.check_key(bad).await.unwrap_err();
        assert!(
            matches!(error, RedisCheckError::Unavailable(BackendError::Redis(_))),
            "{bad}: {error:?}"
        );
    }
    // The server answered: the breaker stays closed and other keys work.
    assert!(!limiter.breaker_open());
    assert_eq!(limiter.backend_errors(), 3);
    assert_eq!(
        limiter.check_key("fine").await.unwrap().source(),
        Source::Redis
    );
}

/// A fake server that answers every read with `reply` (then closes, if `close`).
fn fake_server(reply: &'static [u8], close: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(reply).is_err() || close {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_closed_connections_fall_back_without_panicking() {
    let replies: [(&[u8], bool); 5] = [
        (b"*3\r\n:1\r\n:99\r\n:0\r\n", false),
        (b"*3\r\n:0\r\n:0\r\n:0\r\n", false),
        (b"$5\r\nhello\r\n", false),
        (b"this is not RESP at all\r\n", true),
        (b"", true),
    ];
    for (reply, close) in replies {
        let port = fake_server(reply, close);
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let limiter = RedisRateLimiter::builder(client, Quota::per_second(10).unwrap())
            .failure_policy(FailurePolicy::FailOpen)
            .budget(BUDGET)
            .build()
            .unwrap();
        for _ in 0..3 {
            let start = Instant::now();
            let allowed = limiter.check_key("k").await.unwrap();
            assert_eq!(allowed.source(), Source::FailOpen, "{reply:?}");
            assert!(
                start.elapsed() <= BUDGET + SLACK,
                "{reply:?}: {:?}",
                start.elapsed()
            );
        }
        assert!(limiter.fallback_decisions() == 3);
    }
}

fn leasing(server: &RedisServer, q: Quota, lease: u64, ttl: Duration) -> RedisRateLimiter {
    RedisRateLimiter::builder(redis::Client::open(server.url()).unwrap(), q)
        .budget(Duration::from_secs(2))
        .lease(lease, ttl)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_spend_locally_within_the_bound() {
    let server = server!();
    // 20 per 100 s: no refill worth counting during the test.
    let q = quota(20, Duration::from_secs(100), 20);
    let a = leasing(&server, q, 5, Duration::from_secs(60));
    let b = leasing(&server, q, 5, Duration::from_secs(60));

    // The first check leases 5: one spent, four held on this node.
    let first = a.check_key("k").await.unwrap();
    assert_eq!(first.source(), Source::Redis);
    assert_eq!(first.snapshot().unwrap().remaining(), 15);
    assert_eq!(a.check_key("k").await.unwrap().source(), Source::Lease);

    // Node b takes everything Redis has left.
    let mut by_b = 0;
    while b.check_key("k").await.is_ok() {
        by_b += 1;
    }
    assert_eq!(by_b, 15);

    // Node a still spends what it holds, three more tokens (at most lease - 1 beyond what
    // Redis would now admit), then is refused by Redis.
    let mut by_a = 0;
    while let Ok(allowed) = a.check_key("k").await {
        assert_eq!(allowed.source(), Source::Lease);
        by_a += 1;
    }
    assert_eq!(by_a, 3);
    // Nothing was created: 20 in all.
    assert_eq!(2 + by_a + by_b, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_tokens_expire() {
    let server = server!();
    let q = quota(20, Duration::from_secs(100), 20);
    let a = leasing(&server, q, 5, Duration::from_millis(100));
    assert_eq!(a.check_key("k").await.unwrap().source(), Source::Redis);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The four held tokens lapsed: this check goes to Redis again.
    let again = a.check_key("k").await.unwrap();
    assert_eq!(again.source(), Source::Redis);
    assert_eq!(again.snapshot().unwrap().remaining(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_keep_concurrent_nodes_within_the_bound() {
    let server = server!();
    let q = quota(200, Duration::from_secs(1), 50);
    let lease = 8;
    let start = Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let node = leasing(&server, q, lease, Duration::from_millis(200));
            tokio::spawn(hammer(node, "leased", 4, Duration::from_millis(800)))
        })
        .collect();
    let mut total = 0;
    for run in runs {
        total += run.await.unwrap();
    }
    let window = start.elapsed();
    let bound = conformance_bound(q, window) + 3 * (lease - 1);
    assert!(
        total <= bound,
        "admitted {total}, bound {bound} over {window:?}"
    );
    assert!(total >= 50, "admitted only {total}");
}
