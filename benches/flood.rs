//! Ten million distinct keys against a limiter capped at one million: memory stays bounded.
//!
//! ```text
//! cargo bench --bench flood                       # 10M keys, cap 1M
//! cargo bench --bench flood -- --quick            # 2M keys
//! cargo bench --bench flood -- --cap 1500000      # another cap
//! ```
//!
//! Keys arrive 20,000 a second of simulated time (a manual clock), each used once; the idle TTL
//! is 60 s, so about 1.2M keys would be live at once without the cap of 1M (with `--cap`, keys
//! arrive at the rate that would keep 1.2 times that cap live). Keys beyond the cap
//! share one overflow bucket. Every million keys the bench prints the resident set, the key
//! count and the slowest check so far. Then it measures the cost of a sweep per key, and in a
//! child process the resident bytes per key of the same limiter holding 1M keys that never
//! leave, to state the bound: cap times that per-key cost, plus the start and 8 MiB for what
//! the allocator keeps.
//!
//! Churn makes papaya copy a shard's table whenever removed keys' slots fill it (it never reuses
//! them), and the copy doubles the table if keys fill half of it. 1M keys that never leave grow
//! each of the 64 shards' tables to 32,768 slots, and a 64th of the cap, 15,625 keys, fills a
//! little under half of that. The limiter sweeps its shards in turn, so that none holds much
//! more than its share: the tables keep that size under churn and the bound holds. At a cap
//! whose 64th fills more than half of its table, the tables double under churn (see the crate's
//! known limits).
//!
//! The slowest check is one that copies its shard's table (papaya copies in the request that
//! finds the table full) or sweeps a slice, or one the machine preempted.

use std::process::Command;
use std::time::{Duration, Instant};

use hotlimit::{KeyedRateLimiter, ManualClock, Overflow, Quota};

#[path = "support/rss.rs"]
mod rss;
use rss::resident_bytes;

/// The key cap unless `--cap` says otherwise.
const CAP: usize = 1_000_000;

/// Resident bytes per key of the flooded limiter's configuration holding `cap` keys that are
/// never evicted.
fn per_key_without_eviction(cap: usize) -> f64 {
    let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_second(10).unwrap())
        .clock(ManualClock::new())
        .idle_ttl(Duration::MAX)
        .max_keys(cap, Overflow::Shared)
        .build();
    let before = resident_bytes();
    for key in 0..cap as u64 {
        let _ = limiter.check_key(&key);
    }
    (resident_bytes() - before) as f64 / cap as f64
}

/// The number after flag `name`, if given.
fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    Some(args.get(at + 1)?.parse().expect("a number after the flag"))
}

fn main() {
    let cap = arg("--cap").unwrap_or(CAP);
    if let Some(child_cap) = arg("--child") {
        println!("{}", per_key_without_eviction(child_cap));
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let total: u64 = if quick { 2_000_000 } else { 10_000_000 };
    // 60 s of arrivals would be 1.2 times the cap: 50 µs apart for a cap of 1M.
    let interval_ns = 50_000_000_000 / cap as u64;

    let exe = std::env::current_exe().expect("the bench binary");
    let out = Command::new(exe)
        .args(["--child", &cap.to_string()])
        .output()
        .expect("a child process");
    let per_key: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bytes per key");

    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_second(10).unwrap())
        .clock(clock.clone())
        .idle_ttl(Duration::from_secs(60))
        .max_keys(cap, Overflow::Shared)
        .build();
    let start = resident_bytes();

    let rate = 1e9 / interval_ns as f64;
    println!("{total} keys at {rate:.0}/s simulated, idle TTL 60 s, cap {cap} (Overflow::Shared)");
    println!("| keys sent | resident MiB | len | slowest check µs |");
    println!("|---:|---:|---:|---:|");
    let (mut peak_resident, mut peak_len, mut slowest) = (start, 0, Duration::ZERO);
    for key in 0..total {
        clock.set(Duration::from_nanos(interval_ns * key));
        let began = Instant::now();
        let _ = limiter.check_key(&key);
        slowest = slowest.max(began.elapsed());
        peak_len = peak_len.max(limiter.len());

        if (key + 1) % 1_000_000 == 0 {
            let resident = resident_bytes();
            peak_resident = peak_resident.max(resident);
            let mib = resident as f64 / (1 << 20) as f64;
            println!(
                "| {} | {mib:.0} | {} | {:.0} |",
                key + 1,
                limiter.len(),
                slowest.as_secs_f64() * 1e6
            );
        }
    }

    // Slices once every key is idle: what a request that sweeps may have to pay for.
    clock.advance(Duration::from_secs(3_600));
    let (mut swept, mut visited, mut longest) = (Duration::ZERO, 0, Duration::ZERO);
    while !limiter.is_empty() {
        let began = Instant::now();
        let slice = limiter.sweep_slice();
        let took = began.elapsed();
        (swept, visited, longest) = (swept + took, visited + slice.visited, longest.max(took));
    }

    // The constant: the resident set at the start plus 8 MiB that the allocator may keep.
    let bound = start as f64 + cap as f64 * per_key + 8.0 * (1 << 20) as f64;
    println!();
    println!(
        "peak len {peak_len} (cap {cap}); peak resident {:.0} MiB",
        peak_resident as f64 / (1 << 20) as f64
    );
    println!(
        "bound: start {:.0} MiB + cap x {per_key:.1} B/key + 8 MiB = {:.0} MiB: {}",
        start as f64 / (1 << 20) as f64,
        bound / (1 << 20) as f64,
        if (peak_resident as f64) <= bound {
            "held"
        } else {
            "EXCEEDED"
        }
    );
    // The budget the crate's known limits give for any cap under churn: a u64 key's 32-byte
    // entry and up to 4 table slots of 9 bytes.
    let budget = start as f64 + cap as f64 * (32.0 + 4.0 * 9.0) + 8.0 * (1 << 20) as f64;
    println!(
        "documented budget: start + cap x 68 B/key + 8 MiB = {:.0} MiB: {}",
        budget / (1 << 20) as f64,
        if (peak_resident as f64) <= budget {
            "held"
        } else {
            "EXCEEDED"
        }
    );
    println!(
        "sweep: {visited} keys in {:.1} ms, {:.1} ns per key; longest slice {:.0} µs",
        swept.as_secs_f64() * 1e3,
        swept.as_nanos() as f64 / visited.max(1) as f64,
        longest.as_secs_f64() * 1e6
    );
    assert!(peak_len <= cap, "the key cap was exceeded");
}
