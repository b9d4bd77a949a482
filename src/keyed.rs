//! One bucket per key: [`KeyedRateLimiter`].

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crate::clock::{Clock, QuantaClock};
use crate::direct::{attempt, cost_of};
use crate::outcome::{CheckError, Denied, Snapshot};
use crate::store::Store;
use crate::timeline::{Timeline, STEP};
use crate::Quota;

/// The map's default hasher: [foldhash](https://docs.rs/foldhash)'s fast hasher, with a random
/// seed per limiter.
///
/// Keys often come from clients (API keys, addresses), so the seed is random: a client cannot
/// compute colliding keys offline. foldhash is not a cryptographic function, though; a service
/// that fears an attacker probing for collisions through response timing can pass
/// [`std::hash::RandomState`] (SipHash, several times slower on short keys) to
/// [`KeyedRateLimiter::with_clock_and_hasher`].
pub type DefaultHasher = foldhash::fast::RandomState;

/// A token bucket per key, in a lock-free concurrent map.
///
/// Each key starts with a full bucket. A check on a key that exists borrows the key, allocates
/// nothing, reads the clock once and does one compare-and-swap on the key's word.
///
/// # Examples
///
/// ```
/// use hotlimit::{KeyedRateLimiter, Quota};
///
/// let limiter = KeyedRateLimiter::<String>::new(Quota::per_minute(2)?);
/// assert!(limiter.check_key("alice").is_ok());
/// assert!(limiter.check_key("alice").is_ok());
/// assert!(limiter.check_key("alice").is_err());
/// assert!(limiter.check_key("bob").is_ok());
/// assert_eq!(limiter.len(), 2);
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
pub struct KeyedRateLimiter<K, C = QuantaClock, S = DefaultHasher> {
    store: Store<K, S>,
    quota: Quota,
    time: Timeline<C>,
}

impl<K: Hash + Eq> KeyedRateLimiter<K> {
    /// A limiter on the default [`QuantaClock`] with the [`DefaultHasher`].
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, QuantaClock::new())
    }
}

impl<K: Hash + Eq, C: Clock> KeyedRateLimiter<K, C> {
    /// A limiter on `clock` with the [`DefaultHasher`].
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self::with_clock_and_hasher(quota, clock, DefaultHasher::default())
    }
}

impl<K, C, S> KeyedRateLimiter<K, C, S>
where
    K: Hash + Eq,
    C: Clock,
    S: BuildHasher,
{
    /// A limiter on `clock` whose map hashes keys with `hasher`.
    pub fn with_clock_and_hasher(quota: Quota, clock: C, hasher: S) -> Self {
        Self {
            store: Store::new(hasher),
            quota,
            time: Timeline::new(clock),
        }
    }

    /// Takes one token from `key`'s bucket if it has one.
    ///
    /// The key is borrowed: a `KeyedRateLimiter<String>` takes a `&str`.
    ///
    /// # Errors
    ///
    /// [`Denied`] when the bucket is empty; it says when to retry.
    #[inline]
    pub fn check_key<Q>(&self, key: &Q) -> Result<Snapshot, Denied>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.acquire(key, self.quota.unit())
    }

    /// Takes `n` tokens from `key`'s bucket if it holds `n`; takes none otherwise.
    ///
    /// `n == 0` takes nothing and reports the bucket as it is.
    ///
    /// # Errors
    ///
    /// [`CheckError::InsufficientCapacity`] when `n` exceeds the burst (waiting cannot help),
    /// [`CheckError::Denied`] when there are fewer than `n` tokens now.
    #[inline]
    pub fn check_key_n<Q>(&self, key: &Q, n: u64) -> Result<Snapshot, CheckError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let cost = cost_of(self.quota, n)?;
        Ok(self.acquire(key, cost)?)
    }

    /// Evicts every key whose bucket is full again, so it is no different from a new key.
    ///
    /// Safe to call while other threads check keys: a bucket is evicted only by a
    /// compare-and-swap from its full, idle word, so an admission that lands first keeps it, and
    /// one that comes after makes a fresh bucket (see the crate's eviction notes). Returns how
    /// many keys it removed.
    pub fn retain_recent(&self) -> usize {
        self.retain_recent_at(self.time.now())
    }

    /// [`retain_recent`](Self::retain_recent) at a time already read (the loom models pass it).
    pub(crate) fn retain_recent_at(&self, now_ns: u64) -> usize {
        // A bucket full a whole watermark step ago is full for any reading a request may still
        // use, so replacing it by a fresh one changes no decision.
        let idle_since = self.quota.units_at(now_ns.saturating_sub(STEP));
        self.store.evict(|bucket| bucket.try_evict(idle_since))
    }

    /// The number of keys that have a bucket.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no key has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The quota every key follows.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        self.time.clock()
    }

    #[inline]
    fn acquire<Q>(&self, key: &Q, cost: u64) -> Result<Snapshot, Denied>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.acquire_at(key, cost, self.time.now())
    }

    /// [`acquire`](Self::acquire) at a time already read (the loom models pass it in).
    #[inline]
    pub(crate) fn acquire_at<Q>(&self, key: &Q, cost: u64, now_ns: u64) -> Result<Snapshot, Denied>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = self.quota.units_at(now_ns);
        self.store
            .with_bucket(key, |bucket| attempt(bucket, self.quota, cost, now_ns, now))
    }
}

impl<K, C, S> fmt::Debug for KeyedRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}
