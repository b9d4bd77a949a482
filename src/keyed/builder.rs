//! Building a [`KeyedRateLimiter`] with a chosen clock, hasher, idle TTL and key limit.

use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::time::Duration;

use super::{DefaultHasher, KeyedRateLimiter};
use crate::bucket::Bucket;
use crate::clock::{Clock, QuantaClock};
use crate::store::{Store, SHARDS};
use crate::sync::AtomicU64;
use crate::timeline::Timeline;
use crate::Quota;

/// What a [`KeyedRateLimiter`] at its key limit does with a key it has no bucket for.
///
/// | policy        | a new key beyond the limit                 | costs                        |
/// |---------------|--------------------------------------------|------------------------------|
/// | `Refuse`      | [`CheckError::TooManyKeys`]                | new clients wait for room    |
/// | `Shared`      | shares one overflow bucket with all others | new clients limited as one   |
/// | `EvictIdlest` | takes the slot of the most idle of 32 keys | that key's debt is forgotten |
///
/// Whatever the policy, keys that exist keep their buckets and idle keys keep leaving, so room
/// comes back as clients go quiet.
///
/// [`CheckError::TooManyKeys`]: crate::CheckError::TooManyKeys
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse new keys with a distinct error until idle keys leave.
    #[default]
    Refuse,
    /// Send new keys to one bucket that they all share, with the limiter's quota.
    Shared,
    /// Evict the most idle of a sample of keys, full or not, and give its slot to the new key.
    ///
    /// The evicted key's bucket is forgotten: if it was not full, that client gets a fresh
    /// burst the next time. Use it when serving new clients matters more than exact limits for
    /// quiet ones.
    EvictIdlest,
}

/// A builder for [`KeyedRateLimiter`], from [`KeyedRateLimiter::builder`].
///
/// # Examples
///
/// ```
/// use hotlimit::{KeyedRateLimiter, ManualClock, Overflow, Quota};
/// use std::time::Duration;
///
/// let limiter = KeyedRateLimiter::<u64>::builder(Quota::per_second(10)?)
///     .clock(ManualClock::new())
///     .idle_ttl(Duration::from_secs(30))
///     .max_keys(1_000_000, Overflow::Shared)
///     .build();
/// assert!(limiter.check_key(&7).is_ok());
/// # Ok::<(), hotlimit::QuotaError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct KeyedBuilder<K, C = QuantaClock, S = DefaultHasher> {
    quota: Quota,
    clock: C,
    hasher: S,
    idle_ttl: Duration,
    max_keys: usize,
    overflow: Overflow,
    key: PhantomData<fn(K)>,
}

impl<K> KeyedBuilder<K> {
    pub(crate) fn new(quota: Quota) -> Self {
        Self {
            quota,
            clock: QuantaClock::new(),
            hasher: DefaultHasher::default(),
            idle_ttl: Duration::from_secs(60),
            max_keys: usize::MAX,
            overflow: Overflow::Refuse,
            key: PhantomData,
        }
    }
}

impl<K, C, S> KeyedBuilder<K, C, S> {
    /// Reads time from `clock` instead of a [`QuantaClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedBuilder<K, C2, S> {
        KeyedBuilder {
            quota: self.quota,
            clock,
            hasher: self.hasher,
            idle_ttl: self.idle_ttl,
            max_keys: self.max_keys,
            overflow: self.overflow,
            key: PhantomData,
        }
    }

    /// Hashes keys with `hasher` instead of the [`DefaultHasher`].
    pub fn hasher<S2: BuildHasher + Clone>(self, hasher: S2) -> KeyedBuilder<K, C, S2> {
        KeyedBuilder {
            quota: self.quota,
            clock: self.clock,
            hasher,
            idle_ttl: self.idle_ttl,
            max_keys: self.max_keys,
            overflow: self.overflow,
            key: PhantomData,
        }
    }

    /// How long a key stays after its bucket is full again (60 s unless set).
    ///
    /// Zero evicts a key as soon as its bucket is full, which changes no decision but makes a
    /// client that comes back at the rate allocate its key again each time.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// Holds at most `max_keys` keys; `overflow` says what becomes of new keys beyond them.
    ///
    /// A limit of 0 keeps no key: every request goes to the overflow policy (and
    /// [`Overflow::EvictIdlest`] then refuses, having nothing to evict).
    ///
    /// Memory then stays bounded by the limit: under churn, about 50 to 70 bytes a key with
    /// `u64` keys, more with bigger keys (see the [known limits](crate#known-limits)).
    pub fn max_keys(mut self, max_keys: usize, overflow: Overflow) -> Self {
        self.max_keys = max_keys;
        self.overflow = overflow;
        self
    }
}

impl<K, C, S> KeyedBuilder<K, C, S>
where
    K: Hash + Eq + Send + 'static,
    C: Clock,
    S: BuildHasher + Clone,
{
    /// The limiter.
    pub fn build(self) -> KeyedRateLimiter<K, C, S> {
        let clock = self.clock;
        KeyedRateLimiter {
            store: Store::new(self.hasher, SHARDS, self.max_keys),
            quota: self.quota,
            time: Timeline::new(clock),
            idle_ttl: u64::try_from(self.idle_ttl.as_nanos()).unwrap_or(u64::MAX),
            overflow: self.overflow,
            shared: Bucket::full(),
            horizon: AtomicU64::new(0),
            #[cfg(hotlimit_loom)]
            fresh_at_zero: false,
        }
    }
}
