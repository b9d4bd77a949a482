//! The local fast path: tokens leased from Redis in small batches and spent in process.
//!
//! When a key's lease cannot pay for a request, the request asks Redis for up to `size` tokens
//! at once (at least its own cost, or it is refused as usual), spends its cost and keeps the
//! rest for the next requests on this node. At most one such refill per key is in flight on a
//! node; requests that find the lease short meanwhile ask Redis for just their own cost.
//!
//! # The bound on over-admission
//!
//! A refill happens only when the balance is below the request's cost `k`, and adds at most
//! `size` tokens of which `k` are spent at once, so a node never holds more than `size - 1`
//! unspent tokens. Every token a node spends was admitted by the shared bucket in Redis, just
//! earlier; so over any window, the requests admitted across `N` nodes are at most what the
//! quota admits over that window plus `N * (size - 1)` (the balances held when it opened).
//!
//! Unspent tokens expire `ttl` after the refill that brought them, so an idle node does not
//! keep them from the others past that; they are dropped, not given back.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use papaya::{HashMap, ResizeMode};

use crate::DefaultHasher;

/// Refills between two sweeps of expired leases.
const SWEEP_EVERY: u64 = 1024;

/// How long a lease whose TTL `Instant` cannot reach lives instead: a century.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The leases this node holds, one per key.
pub(crate) struct Leases {
    map: HashMap<String, Mutex<Lease>, DefaultHasher>,
    size: u64,
    ttl: Duration,
    refills: AtomicU64,
}

struct Lease {
    /// Tokens left to spend.
    balance: u64,
    /// When they stop being spendable.
    expires: Instant,
    /// A refill for this key is in flight.
    refilling: bool,
    /// Swept from the map: look the key up again.
    dead: bool,
}

/// What a request does after looking at its key's lease.
pub(crate) enum Take<'a> {
    /// The lease paid for it.
    Spent,
    /// Ask Redis for up to the lease size, then [`Refill::finish`].
    Refill(Refill<'a>),
    /// Another refill is in flight: ask Redis for the request's own cost.
    Plain,
}

impl Leases {
    pub(crate) fn new(size: u64, ttl: Duration) -> Self {
        let map = HashMap::builder()
            .hasher(DefaultHasher::default())
            .resize_mode(ResizeMode::Blocking)
            .build();
        Self {
            map,
            size,
            ttl,
            refills: AtomicU64::new(0),
        }
    }

    /// Tokens a refill asks for.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Pays `cost` from `key`'s lease, or says how to ask Redis.
    pub(crate) fn take<'a>(&'a self, key: &'a str, cost: u64) -> Take<'a> {
        let map = self.map.pin();
        loop {
            let slot = match map.get(key) {
                Some(slot) => slot,
                None => match map.try_insert(key.to_owned(), Mutex::new(Lease::empty())) {
                    Ok(slot) => slot,
                    Err(occupied) => occupied.current,
                },
            };
            let mut lease = lock(slot);
            if lease.dead {
                continue;
            }

            // Spend from a live lease.
            if lease.expires <= Instant::now() {
                lease.balance = 0;
            }
            if lease.balance >= cost {
                lease.balance -= cost;
                return Take::Spent;
            }

            // Short: this request refills, unless another already does.
            if lease.refilling {
                return Take::Plain;
            }
            lease.refilling = true;
            return Take::Refill(Refill {
                leases: self,
                key,
                done: false,
            });
        }
    }

    /// Drops leases that expired and have no refill in flight.
    fn sweep(&self) {
        let now = Instant::now();
        self.map.pin().retain(|_, slot| {
            let mut lease = lock(slot);
            let keep = lease.refilling || lease.expires > now;
            lease.dead = !keep;
            keep
        });
    }

    /// The number of keys with a lease entry (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A refill in flight for one key. Dropped without [`finish`](Refill::finish) (Redis failed,
/// or the request was cancelled), it lets the next request refill.
pub(crate) struct Refill<'a> {
    leases: &'a Leases,
    key: &'a str,
    done: bool,
}

impl Refill<'_> {
    /// Redis granted `granted` tokens, `cost` of them spent by the request that asked.
    pub(crate) fn finish(mut self, granted: u64, cost: u64) {
        self.done = true;
        self.release(|lease, now| {
            if lease.expires <= now {
                lease.balance = 0;
            }
            lease.balance += granted.saturating_sub(cost);
            // A TTL too long for the platform's `Instant` (`Duration::MAX`, say) never ends.
            lease.expires = now
                .checked_add(self.leases.ttl)
                .unwrap_or_else(|| now + FOREVER);
        });
        if self.leases.refills.fetch_add(1, Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.leases.sweep();
        }
    }

    fn release(&self, update: impl FnOnce(&mut Lease, Instant)) {
        // A lease with a refill in flight is never swept, so the key still maps to it.
        if let Some(slot) = self.leases.map.pin().get(self.key) {
            let mut lease = lock(slot);
            lease.refilling = false;
            update(&mut lease, Instant::now());
        }
    }
}

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.release(|_, _| {});
        }
    }
}

impl Lease {
    fn empty() -> Self {
        Self {
            balance: 0,
            expires: Instant::now(),
            refilling: false,
            dead: false,
        }
    }
}

/// Locks a lease; a panic elsewhere while holding it left plain numbers, still usable.
fn lock(slot: &Mutex<Lease>) -> MutexGuard<'_, Lease> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_a_refill_and_holds_at_most_size_minus_one() {
        let leases = Leases::new(5, Duration::from_secs(60));
        let Take::Refill(refill) = leases.take("k", 1) else {
            panic!("an empty lease refills")
        };
        assert!(matches!(leases.take("k", 1), Take::Plain));
        refill.finish(5, 1);
        for _ in 0..4 {
            assert!(matches!(leases.take("k", 1), Take::Spent));
        }
        assert!(matches!(leases.take("k", 1), Take::Refill(_)));
        // The dropped refill let the next request try again.
        assert!(matches!(leases.take("k", 1), Take::Refill(_)));
    }

    #[test]
    fn a_ttl_past_what_instant_holds_does_not_panic() {
        let leases = Leases::new(5, Duration::MAX);
        let Take::Refill(refill) = leases.take("k", 1) else {
            panic!("an empty lease refills")
        };
        refill.finish(5, 1);
        assert!(matches!(leases.take("k", 1), Take::Spent));
    }

    #[test]
    fn expired_tokens_are_not_spent_and_get_swept() {
        let leases = Leases::new(10, Duration::from_millis(5));
        let Take::Refill(refill) = leases.take("k", 1) else {
            panic!("an empty lease refills")
        };
        refill.finish(10, 1);
        std::thread::sleep(Duration::from_millis(10));
        let Take::Refill(refill) = leases.take("k", 1) else {
            panic!("an expired lease refills")
        };
        drop(refill);
        std::thread::sleep(Duration::from_millis(10));
        leases.sweep();
        assert_eq!(leases.len(), 0);
        assert!(matches!(leases.take("k", 1), Take::Refill(_)));
    }
}
