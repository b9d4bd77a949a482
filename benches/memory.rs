//! Resident bytes per key after one million keys, hotlimit against governor.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Each measurement runs in a child process of its own, so that one limiter's freed memory does
//! not flatter the next: the child reads its resident set size (`/proc/self/statm`), inserts
//! 1,000,000 keys, reads it again and prints the difference per key.
//!
//! Keys: `u64`; 16-byte strings; and client addresses (IPv6 /64 prefixes), as the HTTP layer
//! keys a policy by address (a `u128`) and as tower_governor does (an `IpAddr`).

use std::num::NonZeroU32;
use std::process::Command;

#[path = "support/rss.rs"]
mod rss;
use rss::resident_bytes;

const KEYS: u64 = 1_000_000;

/// 16-byte string keys.
fn string_key(i: u64) -> String {
    format!("key-{i:012}")
}

/// The `i`th /64 prefix of 2001:db8::/32.
fn address(i: u64) -> u128 {
    0x2001_0db8 << 96 | u128::from(i) << 64
}

/// Inserts the keys into the named limiter and returns resident bytes per key.
fn measure(limiter: &str, keys: &str) -> f64 {
    let ours = hotlimit::Quota::per_second(1_000_000_000).unwrap();
    let theirs = governor::Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX);
    let before = resident_bytes();
    let after = match (limiter, keys) {
        ("hotlimit", "u64") => {
            let l = hotlimit::KeyedRateLimiter::<u64>::new(ours);
            (0..KEYS).for_each(|k| {
                let _ = l.check_key(&k);
            });
            resident_bytes()
        }
        ("hotlimit", "string") => {
            let l = hotlimit::KeyedRateLimiter::<String>::new(ours);
            (0..KEYS).for_each(|k| {
                let _ = l.check_key(string_key(k).as_str());
            });
            resident_bytes()
        }
        ("hotlimit", "address") => {
            let l = hotlimit::KeyedRateLimiter::<u128>::new(ours);
            (0..KEYS).for_each(|k| {
                let _ = l.check_key(&address(k));
            });
            resident_bytes()
        }
        ("governor", "u64") => {
            let l = governor::RateLimiter::keyed(theirs);
            (0..KEYS).for_each(|k| {
                let _ = l.check_key(&k);
            });
            resident_bytes()
        }
        ("governor", "string") => {
            let l = governor::RateLimiter::keyed(theirs);
            (0..KEYS).for_each(|k| {
                let _ = l.check_key(&string_key(k));
            });
            resident_bytes()
        }
        ("governor", "address") => {
            let l = governor::RateLimiter::keyed(theirs);
            (0..KEYS).for_each(|k| {
                let _ = l.check_key(&std::net::IpAddr::from(std::net::Ipv6Addr::from(address(
                    k,
                ))));
            });
            resident_bytes()
        }
        _ => panic!("unknown limiter {limiter} or key type {keys}"),
    };
    (after - before) as f64 / KEYS as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        println!("{}", measure(&args[at + 1], &args[at + 2]));
        return;
    }

    let exe = std::env::current_exe().expect("the bench binary");
    let child = |limiter: &str, keys: &str| -> f64 {
        let out = Command::new(&exe)
            .args(["--child", limiter, keys])
            .output()
            .expect("a child");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("bytes per key")
    };

    println!("resident bytes per key after {KEYS} keys");
    println!("| keys | hotlimit | governor | hotlimit / governor |");
    println!("|---|---:|---:|---:|");
    for keys in ["u64", "string", "address"] {
        let (h, g) = (child("hotlimit", keys), child("governor", keys));
        println!("| {keys} | {h:.1} | {g:.1} | {:.2} |", h / g);
    }
}
