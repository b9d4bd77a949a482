//! Bounded memory: idle eviction as the limiter goes, the key cap and its overflow policies.

use hotlimit::{CheckError, KeyedRateLimiter, ManualClock, Overflow, Quota};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn quota() -> Quota {
    Quota::per_second(10).unwrap()
}

#[test]
fn a_flood_of_new_keys_is_evicted_without_being_asked() {
    let clock = ManualClock::new();
    let ttl = Duration::from_secs(1);
    let limiter = KeyedRateLimiter::<u64, _>::builder(quota())
        .clock(clock.clone())
        .idle_ttl(ttl)
        .build();

    // 100,000 new keys a second for 5 s, each used once. A key is evictable 1.1 s after its
    // request (0.1 s to refill, then the TTL), so about 110,000 are live at once; sweeping a
    // 512-key slice per 256 inserts leaves evictable keys for half a round on average
    // (measured peak: about 1.5 times the live keys).
    let mut peak = 0;
    for key in 0..500_000u64 {
        clock.set(Duration::from_micros(10 * key));
        assert!(limiter.check_key(&key).is_ok());
        peak = peak.max(limiter.len());
    }
    assert!(peak <= 220_000, "peak of {peak} keys");
    assert!(
        peak >= 110_000,
        "peak of {peak} keys: evicted before the TTL"
    );
}

#[test]
fn the_key_cap_is_never_exceeded_under_concurrent_inserts() {
    let clock = ManualClock::new();
    let limiter = Arc::new(
        KeyedRateLimiter::<u64, _>::builder(quota())
            .clock(clock)
            .max_keys(1_000, Overflow::Refuse)
            .build(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let (admitted, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    // A watcher samples the count while eight threads insert 4,000 distinct keys in all.
    let watcher = {
        let (limiter, done) = (limiter.clone(), done.clone());
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(limiter.len());
            }
            peak
        })
    };
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (limiter, admitted, refused) = (limiter.clone(), admitted.clone(), refused.clone());
            std::thread::spawn(move || {
                for key in (t * 500)..(t + 1) * 500 {
                    match limiter.check_key(&key) {
                        Ok(_) => admitted.fetch_add(1, Ordering::Relaxed),
                        Err(CheckError::TooManyKeys(e)) if e.max_keys == 1_000 => {
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(other) => panic!("unexpected {other:?}"),
                    };
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);

    assert!(watcher.join().unwrap() <= 1_000);
    assert_eq!(limiter.len(), 1_000);
    assert_eq!(admitted.load(Ordering::Relaxed), 1_000);
    assert_eq!(refused.load(Ordering::Relaxed), 3_000);
}

#[test]
fn refused_keys_get_room_once_idle_keys_leave() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(quota())
        .clock(clock.clone())
        .idle_ttl(Duration::ZERO)
        .max_keys(10, Overflow::Refuse)
        .build();
    for key in 0..10 {
        assert!(limiter.check_key(&key).is_ok());
    }
    assert!(matches!(
        limiter.check_key(&10),
        Err(CheckError::TooManyKeys(_))
    ));
    assert!(
        limiter.check_key(&3).is_ok(),
        "existing keys keep their buckets"
    );

    // Once the buckets are full again a sweep frees them, and new keys come in.
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.retain_recent(), 10);
    assert!(limiter.check_key(&10).is_ok());
}

#[test]
fn keys_beyond_the_cap_share_one_bucket() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(quota())
        .clock(clock)
        .max_keys(5, Overflow::Shared)
        .build();
    for key in 0..5 {
        assert!(limiter.check_key(&key).is_ok());
    }

    // A thousand new keys between them get one burst, not a thousand.
    let admitted = (1_000..2_000u64)
        .filter(|key| limiter.check_key(key).is_ok())
        .count();
    assert_eq!(admitted, 10);
    assert_eq!(limiter.len(), 5);
    assert_eq!(
        limiter.check_key(&0).unwrap().remaining(),
        8,
        "known keys are untouched"
    );
}

#[test]
fn the_most_idle_key_makes_room() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(quota())
        .clock(clock.clone())
        .max_keys(4, Overflow::EvictIdlest)
        .build();

    // Key 0 spends nothing more after its first request; the others drain their buckets.
    assert!(limiter.check_key(&0).is_ok());
    for key in 1..4 {
        while limiter.check_key(&key).is_ok() {}
    }
    assert!(limiter.check_key(&99).is_ok());
    assert_eq!(limiter.len(), 4);

    // The drained keys kept their (empty) buckets; key 0 was the one let go.
    for key in 1..4 {
        assert!(limiter.check_key(&key).is_err(), "key {key} lost its state");
    }
}

#[test]
fn an_evicted_key_behaves_exactly_like_an_idle_one() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let quota = Quota::per_second(5).unwrap().with_burst(3).unwrap();
    let clock = ManualClock::new();
    let evicting = KeyedRateLimiter::<u64, _>::builder(quota)
        .clock(clock.clone())
        .idle_ttl(Duration::ZERO)
        .build();
    let keeping = KeyedRateLimiter::<u64, _>::builder(quota)
        .clock(clock.clone())
        .idle_ttl(Duration::MAX)
        .build();

    let mut now = Duration::ZERO;
    for step in 0..20_000 {
        now += Duration::from_millis(rng.random_range(0..400));
        clock.set(now);
        let (key, cost) = (rng.random_range(0..8u64), rng.random_range(0..4));
        if step % 7 == 0 {
            evicting.retain_recent();
        }
        let a = evicting.check_key_n(&key, cost).map(|s| s.remaining());
        let b = keeping.check_key_n(&key, cost).map(|s| s.remaining());
        assert_eq!(a.is_ok(), b.is_ok(), "step {step}");
        assert_eq!(a.ok(), b.ok(), "step {step}");
    }
    assert!(evicting.len() < keeping.len() || keeping.len() <= 1);
}

#[test]
fn a_clock_that_jumps_years_ahead_keeps_exact_bursts() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::with_clock(quota(), clock.clone());
    for months in [0u64, 6, 24, 10 * 12, 100 * 12] {
        clock.set(Duration::from_secs(months * 30 * 86_400));
        let admitted = (0..100).filter(|_| limiter.check_key(&1).is_ok()).count();
        assert_eq!(admitted, 10, "after {months} months");
        assert!(limiter.check_key(&2).is_ok());
    }
}

#[test]
fn a_background_sweeper_evicts_idle_keys() {
    let clock = ManualClock::new();
    let limiter = Arc::new(
        KeyedRateLimiter::<u64, _>::builder(quota())
            .clock(clock.clone())
            .idle_ttl(Duration::ZERO)
            .build(),
    );
    for key in 0..1_000 {
        assert!(limiter.check_key(&key).is_ok());
    }
    clock.advance(Duration::from_secs(1));

    // No insert happens from here on: only the sweeper can empty the map.
    let sweeper = limiter.spawn_sweeper(Duration::from_micros(100)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !limiter.is_empty() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    drop(sweeper);
    assert_eq!(limiter.len(), 0);
}

#[test]
fn shrinking_keeps_every_bucket_as_it_was() {
    let clock = ManualClock::new();
    let mut limiter = KeyedRateLimiter::<String, _>::builder(quota())
        .clock(clock.clone())
        .idle_ttl(Duration::ZERO)
        .build();

    // A flood of keys that leave again, and a few that stay with partly spent buckets.
    for key in 0..20_000 {
        assert!(limiter.check_key(format!("flood-{key}").as_str()).is_ok());
    }
    clock.advance(Duration::from_secs(1));
    for key in 0..5 {
        assert!(limiter
            .check_key_n(format!("kept-{key}").as_str(), key + 1)
            .is_ok());
    }
    assert_eq!(limiter.retain_recent(), 20_000);

    limiter.shrink_to_fit();
    assert_eq!(limiter.len(), 5);
    for key in 0..5 {
        let left = limiter
            .check_key_n(format!("kept-{key}").as_str(), 0)
            .unwrap()
            .remaining();
        assert_eq!(left, 10 - (key + 1), "kept-{key}");
    }
    assert!(limiter.check_key("new").is_ok());
    assert_eq!(limiter.len(), 6);
}
