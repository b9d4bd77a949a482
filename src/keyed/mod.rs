//! One bucket per key: [`KeyedRateLimiter`].

mod builder;
mod sweeper;

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::time::Duration;

use crate::bucket::{Bucket, Verdict};
use crate::clock::{Clock, QuantaClock};
use crate::direct::{attempt, cost_of};
use crate::outcome::{CheckError, Denied, Snapshot, TooManyKeys};
use crate::store::{Lookup, Store};
use crate::sync::{AtomicU64, Ordering};
use crate::timeline::{Timeline, STEP};
use crate::Quota;

pub use self::builder::{KeyedBuilder, Overflow};
pub use self::sweeper::Sweeper;

/// What [`KeyedRateLimiter::check_key_n_then`] came to.
#[derive(Debug)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) enum Then<T, E> {
    /// Admitted, and `then` passed: the bucket after the admission, and `then`'s value.
    Passed(Snapshot, T),
    /// Refused; `then` did not run and nothing was charged.
    Refused(CheckError),
    /// Admitted, but `then` failed: the charge was given back unless another request moved the
    /// bucket meanwhile (then it stands, see `Bucket::refund`); the bucket after that.
    Undone(Snapshot, E),
}

/// The map's default hasher: [foldhash](https://docs.rs/foldhash)'s fast hasher, with a random
/// seed per limiter.
///
/// Keys often come from clients (API keys, addresses), so the seed is random: a client cannot
/// compute colliding keys offline. foldhash is not a cryptographic function, though; a service
/// that fears an attacker probing for collisions through response timing can pass
/// [`std::hash::RandomState`] (SipHash, several times slower on short keys) to
/// [`KeyedBuilder::hasher`].
pub type DefaultHasher = foldhash::fast::RandomState;

/// What one [`KeyedRateLimiter::sweep_slice`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swept {
    /// Keys looked at.
    pub visited: usize,
    /// Keys evicted.
    pub evicted: usize,
}

/// How many buckets [`Overflow::EvictIdlest`] compares to pick the one to evict.
const IDLEST_SAMPLE: usize = 32;

/// A token bucket per key, in a lock-free concurrent map.
///
/// Each key starts with a full bucket. A check on a key that exists borrows the key, allocates
/// nothing, reads the clock once and does one compare-and-swap on the key's word.
///
/// # Memory
///
/// Keys whose bucket has been full for the [idle TTL](KeyedBuilder::idle_ttl) (60 s unless set)
/// are evicted as the limiter goes: once every 256 new keys (refused ones included), the request
/// that inserts one sweeps the next slice of 512 keys, so a round over all keys takes about half
/// as many inserts as there are keys. No background thread is needed and no request pays for
/// more than one slice; [`spawn_sweeper`] adds a thread for those who want one. An evicted key is
/// indistinguishable from one never seen, so eviction changes no decision. A hard cap on the
/// number of keys, with a choice of what happens to new keys beyond it, is
/// [`KeyedBuilder::max_keys`].
///
/// [`spawn_sweeper`]: KeyedRateLimiter::spawn_sweeper
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
    /// How long a bucket stays after it is full again, in nanoseconds.
    idle_ttl: u64,
    overflow: Overflow,
    /// The bucket that new keys share beyond the cap under [`Overflow::Shared`].
    shared: Bucket,
    /// The eviction horizon: every idle sweep so far evicted only buckets whose word was at most
    /// this. New buckets start here rather than at zero, so that a request holding a reading
    /// older than an eviction finds a new bucket no fuller than the one evicted.
    horizon: AtomicU64,
    /// A fault for the loom negative controls: new buckets start at 0, ignoring the horizon.
    #[cfg(hotlimit_loom)]
    pub(crate) fresh_at_zero: bool,
}

impl<K: Hash + Eq + Send + 'static> KeyedRateLimiter<K> {
    /// A limiter on the default [`QuantaClock`] with the [`DefaultHasher`].
    pub fn new(quota: Quota) -> Self {
        Self::builder(quota).build()
    }

    /// A builder for a limiter with a chosen clock, hasher, idle TTL or key limit.
    pub fn builder(quota: Quota) -> KeyedBuilder<K> {
        KeyedBuilder::new(quota)
    }
}

impl<K: Hash + Eq + Send + 'static, C: Clock> KeyedRateLimiter<K, C> {
    /// A limiter on `clock` with the [`DefaultHasher`].
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        KeyedBuilder::new(quota).clock(clock).build()
    }
}

impl<K, C, S> KeyedRateLimiter<K, C, S>
where
    K: Hash + Eq + Send + 'static,
    C: Clock,
    S: BuildHasher + Clone,
{
    /// A limiter on `clock` whose map hashes keys with `hasher`.
    pub fn with_clock_and_hasher(quota: Quota, clock: C, hasher: S) -> Self {
        KeyedBuilder::new(quota).clock(clock).hasher(hasher).build()
    }
}

impl<K, C, S> KeyedRateLimiter<K, C, S>
where
    K: Hash + Eq,
    C: Clock,
    S: BuildHasher + Clone,
{
    /// Takes one token from `key`'s bucket if it has one.
    ///
    /// The key is borrowed: a `KeyedRateLimiter<String>` takes a `&str`.
    ///
    /// # Errors
    ///
    /// [`CheckError::Denied`] when the bucket is empty (it says when to retry);
    /// [`CheckError::TooManyKeys`] for a new key when the limiter is full of keys and refuses
    /// new ones ([`Overflow::Refuse`]).
    #[inline]
    pub fn check_key<Q>(&self, key: &Q) -> Result<Snapshot, CheckError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.acquire_at(key, self.quota.unit(), self.time.now())
    }

    /// Takes `n` tokens from `key`'s bucket if it holds `n`; takes none otherwise.
    ///
    /// `n == 0` takes nothing and reports the bucket as it is; on a key with no bucket yet it
    /// makes one (full), which counts towards the key limit like any new key.
    ///
    /// # Errors
    ///
    /// [`CheckError::InsufficientCapacity`] when `n` exceeds the burst (waiting cannot help),
    /// and otherwise as [`check_key`](Self::check_key).
    #[inline]
    pub fn check_key_n<Q>(&self, key: &Q, n: u64) -> Result<Snapshot, CheckError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let cost = cost_of(self.quota, n)?;
        self.acquire_at(key, cost, self.time.now())
    }

    /// Evicts every key whose bucket has been full for the idle TTL; returns how many.
    ///
    /// Safe to call while other threads check keys: a bucket is evicted only by a
    /// compare-and-swap from its full, idle word, so an admission that lands first keeps it, and
    /// one that comes after makes a fresh bucket. This visits every key; the limiter's own
    /// sweeping visits one slice of a few hundred keys at a time.
    pub fn retain_recent(&self) -> usize {
        self.retain_recent_at(self.time.now())
    }

    /// Sweeps the next slice of keys (a few hundred) as an inserting request would.
    pub fn sweep_slice(&self) -> Swept {
        let (visited, evicted) = self.sweep_slice_at(self.time.now());
        Swept { visited, evicted }
    }

    /// The number of keys that have a bucket.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no key has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives the map's table memory back after a flood of keys has been evicted.
    ///
    /// papaya halves a table only when an insert finds it full and at most an eighth live, so
    /// after many keys have come and gone and the limiter goes quiet, the evicted keys and
    /// buckets are freed but the tables stay at their largest size (a pointer and a byte per
    /// slot). This rebuilds them at the size of the keys still there,
    /// each with its bucket exactly as it was. It needs exclusive access (`&mut self`): on a
    /// shared limiter, use it where you can take the limiter back, such as `Arc::get_mut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use hotlimit::{KeyedRateLimiter, Quota};
    ///
    /// let mut limiter = KeyedRateLimiter::<u64>::new(Quota::per_second(10)?);
    /// for key in 0..1_000 {
    ///     let _ = limiter.check_key(&key);
    /// }
    /// limiter.shrink_to_fit();
    /// assert_eq!(limiter.len(), 1_000);
    /// # Ok::<(), hotlimit::QuotaError>(())
    /// ```
    #[cfg(not(hotlimit_loom))]
    pub fn shrink_to_fit(&mut self)
    where
        K: Clone + Send + 'static,
    {
        self.store.shrink_to_fit();
    }

    /// The key limit ([`usize::MAX`] when there is none).
    pub fn max_keys(&self) -> usize {
        self.store.max_keys()
    }

    /// The quota every key follows.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// How long a key stays after its bucket is full again.
    pub fn idle_ttl(&self) -> Duration {
        Duration::from_nanos(self.idle_ttl)
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        self.time.clock()
    }

    /// A check of `cost` units at a time already read (the loom models pass it in).
    #[inline]
    pub(crate) fn acquire_at<Q>(
        &self,
        key: &Q,
        cost: u64,
        now_ns: u64,
    ) -> Result<Snapshot, CheckError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = self.quota.units_at(now_ns);

        // Carry only the bucket's word through the lookup; build the answer once, at the end.
        let run = |bucket: &Bucket| match bucket.decide(now, cost, self.quota.tau()) {
            Verdict::Admitted(tat) => Some(Ok(tat)),
            Verdict::Denied(tat) => Some(Err(tat)),
            Verdict::Evicted => None,
        };
        match self.with_live_bucket(key, now_ns, run)? {
            Ok(tat) => Ok(Snapshot::new(self.quota, tat, now_ns, now)),
            Err(tat) => Err(Denied::new(self.quota, tat, cost, now_ns, now).into()),
        }
    }

    /// Takes `n` tokens from `key`'s bucket, then runs `then` while still holding that bucket;
    /// if `then` fails, the tokens go back to that same bucket.
    ///
    /// This is how a request checked against several limiters is all-or-nothing: each
    /// limiter's `then` checks the next one, and a refusal further down undoes the charges made
    /// so far. See [`Bucket::refund`] for why the undo is exact when nothing else touched the
    /// bucket, and keeps the charge otherwise. `then` runs at most once, and only after an
    /// admission.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn check_key_n_then<Q, T, E>(
        &self,
        key: &Q,
        n: u64,
        then: impl FnOnce(&Snapshot) -> Result<T, E>,
    ) -> Then<T, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let cost = match cost_of(self.quota, n) {
            Ok(cost) => cost,
            Err(error) => return Then::Refused(error.into()),
        };
        let now_ns = self.time.now();
        let now = self.quota.units_at(now_ns);

        // On the live bucket: admit, run `then`, and refund this same bucket if it fails.
        let mut then = Some(then);
        let run = |bucket: &Bucket| {
            let snapshot = match attempt(bucket, self.quota, cost, now_ns, now)? {
                Ok(snapshot) => snapshot,
                Err(denied) => return Some(Then::Refused(denied.into())),
            };
            let then = then.take().expect("an admission ends the lookup");
            Some(match then(&snapshot) {
                Ok(value) => Then::Passed(snapshot, value),
                Err(error) if cost == 0 => Then::Undone(snapshot, error),
                Err(error) if bucket.refund(snapshot.word(), cost) => {
                    let word = snapshot.word() - cost;
                    Then::Undone(Snapshot::new(self.quota, word, now_ns, now), error)
                }
                // Another request moved the word: the charge stands (see `Bucket::refund`).
                Err(error) => Then::Undone(snapshot, error),
            })
        };

        match self.with_live_bucket(key, now_ns, run) {
            Ok(outcome) => outcome,
            Err(too_many) => Then::Refused(too_many.into()),
        }
    }

    /// Runs `run` on `key`'s live bucket, making one if needed, or on the bucket the overflow
    /// policy picks when the limiter is full of keys.
    ///
    /// `run` answers `None` when it found a tombstone; it then runs again on the replacement.
    #[inline]
    fn with_live_bucket<Q, R>(
        &self,
        key: &Q,
        now_ns: u64,
        mut run: impl FnMut(&Bucket) -> Option<R>,
    ) -> Result<R, TooManyKeys>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.store.with_bucket(key, || self.fresh_word(), &mut run) {
            Lookup::Found(result) => Ok(result),
            Lookup::Inserted(result) => {
                self.after_insert(now_ns);
                Ok(result)
            }
            Lookup::Full => self.overflow(key, now_ns, run),
        }
    }

    /// A new key found the limiter full of keys: the overflow policy decides.
    #[cold]
    fn overflow<Q, R>(
        &self,
        key: &Q,
        now_ns: u64,
        mut run: impl FnMut(&Bucket) -> Option<R>,
    ) -> Result<R, TooManyKeys>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Refused inserts count towards sweeping too, so idle keys keep leaving under a flood.
        self.after_insert(now_ns);

        let too_many = TooManyKeys {
            max_keys: self.store.max_keys(),
        };
        match self.overflow {
            Overflow::Refuse => Err(too_many),
            Overflow::Shared => match run(&self.shared) {
                Some(result) => Ok(result),
                None => unreachable!("the shared overflow bucket is never evicted"),
            },
            Overflow::EvictIdlest => {
                // Make room once; if racing inserts take it first, refuse rather than loop.
                if !self.store.evict_idlest(IDLEST_SAMPLE) {
                    return Err(too_many);
                }
                match self.store.with_bucket(key, || self.fresh_word(), run) {
                    Lookup::Found(result) | Lookup::Inserted(result) => Ok(result),
                    Lookup::Full => Err(too_many),
                }
            }
        }
    }

    /// Sweeps a slice when enough keys have been inserted since the last one.
    fn after_insert(&self, now_ns: u64) {
        if self.store.slice_due() {
            self.sweep_slice_at(now_ns);
        }
    }

    /// The word a new bucket starts with.
    #[inline]
    fn fresh_word(&self) -> u64 {
        #[cfg(hotlimit_loom)]
        if self.fresh_at_zero {
            return 0;
        }
        // Relaxed: this runs after the bucket's insert (the store inserts new buckets unset),
        // and the insert happens after the removal of the key's previous bucket (papaya's
        // Acquire probe of the removed entry). That removal came after the kill, in the
        // sweeper's order or after the Acquire fence of the request that found the tombstone,
        // and the kill (Release) after the horizon was raised: so it is visible here.
        self.horizon.load(Ordering::Relaxed)
    }

    /// Raises the eviction horizon for a sweep at `now_ns`; returns the word below which a
    /// bucket has been full for the idle TTL and may go.
    fn raise_horizon(&self, now_ns: u64) -> u64 {
        // Full a whole watermark step before the TTL began: full for any reading a request uses
        // within that step. Older readings are covered by the horizon itself.
        let idle_since = now_ns.saturating_sub(STEP).saturating_sub(self.idle_ttl);
        let idle_since = self.quota.units_at(idle_since);

        // Relaxed: published to requests by the Release of each kill that follows.
        self.horizon.fetch_max(idle_since, Ordering::Relaxed);
        idle_since
    }

    /// Sweeps about one round of every key, slice after slice (each claims its own range, so
    /// requests that sweep meanwhile do other keys).
    pub(crate) fn sweep_round(&self) {
        for _ in 0..self.store.slices_per_round() {
            self.sweep_slice();
        }
    }

    /// One slice at a time already read; returns the keys visited and evicted.
    pub(crate) fn sweep_slice_at(&self, now_ns: u64) -> (usize, usize) {
        let idle_since = self.raise_horizon(now_ns);
        self.store
            .sweep_slice(|bucket| bucket.try_evict(idle_since))
    }

    /// [`retain_recent`](Self::retain_recent) at a time already read (the loom models pass it).
    pub(crate) fn retain_recent_at(&self, now_ns: u64) -> usize {
        let idle_since = self.raise_horizon(now_ns);
        self.store.sweep_all(|bucket| bucket.try_evict(idle_since))
    }
}

#[cfg(hotlimit_loom)]
impl<K, C, S> KeyedRateLimiter<K, C, S>
where
    K: Hash + Eq,
    S: BuildHasher + Clone,
{
    /// Breaks the limiter on purpose, for the loom negative controls: new buckets start at 0
    /// rather than at the horizon, and/or no Acquire fence follows a tombstone.
    pub(crate) fn inject_faults(&mut self, fresh_at_zero: bool, skip_fence: bool) {
        self.fresh_at_zero = fresh_at_zero;
        self.store.skip_fence = skip_fence;
    }

    /// The entries in the map, counted one by one.
    pub(crate) fn count_entries(&self) -> usize {
        self.store.count_entries()
    }
}

impl<K, C, S> fmt::Debug for KeyedRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.quota)
            .field("idle_ttl", &Duration::from_nanos(self.idle_ttl))
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(hotlimit_loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;

    type Limiter = KeyedRateLimiter<String, ManualClock>;

    fn limiter(quota: &str, clock: &ManualClock) -> Limiter {
        KeyedRateLimiter::with_clock(quota.parse().unwrap(), clock.clone())
    }

    /// Checks `key` against `outer` then `inner`, all or nothing; true when both admitted it.
    fn both(outer: &Limiter, inner: &Limiter, key: &str) -> bool {
        let outcome = outer.check_key_n_then(key, 1, |_| match inner.check_key(key) {
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        });
        matches!(outcome, Then::Passed(..))
    }

    #[test]
    fn a_refusal_further_down_charges_nothing() {
        // C19: 2/min and 1/s; the second request at t = 0 is refused by the 1/s limit.
        let clock = ManualClock::new();
        clock.set(Duration::from_secs(100));
        let (minute, second) = (limiter("2/min", &clock), limiter("1/s", &clock));

        assert!(both(&minute, &second, "k"));
        assert!(!both(&minute, &second, "k"));
        assert_eq!(minute.check_key_n("k", 0).unwrap().remaining(), 1);

        clock.advance(Duration::from_millis(1_500));
        assert!(both(&minute, &second, "k"));
        assert_eq!(minute.check_key_n("k", 0).unwrap().remaining(), 0);
    }

    #[test]
    fn undone_reports_the_bucket_after_the_refund() {
        let clock = ManualClock::new();
        let minute = limiter("2/min", &clock);
        match minute.check_key_n_then("k", 1, |snapshot| Err::<(), _>(snapshot.remaining())) {
            Then::Undone(snapshot, during) => {
                assert_eq!(during, 1);
                assert_eq!(snapshot.remaining(), 2);
            }
            other => panic!("expected an undo, got {other:?}"),
        }
        assert!(matches!(
            minute.check_key_n_then("k", 3, |_| Ok::<(), ()>(())),
            Then::Refused(CheckError::InsufficientCapacity(_))
        ));
    }

    #[test]
    fn refunds_under_contention_leave_exactly_what_was_admitted() {
        // Four threads race at one instant against 3/min then 1/s: exactly one request passes,
        // and no refund credits the minute quota beyond what it would hold without the others.
        let clock = ManualClock::new();
        clock.set(Duration::from_secs(100));
        for _ in 0..200 {
            let (minute, second) = (limiter("3/min", &clock), limiter("1/s", &clock));
            let passed: usize = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| (0..5).filter(|_| both(&minute, &second, "k")).count()))
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).sum()
            });
            // Refunds raced by other charges keep theirs: never more than the two tokens the
            // minute quota would hold had only the passed request come.
            assert_eq!(passed, 1);
            assert!(minute.check_key_n("k", 0).unwrap().remaining() <= 2);
        }
    }
}
