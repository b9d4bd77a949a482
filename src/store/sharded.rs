//! The store on papaya maps, split into shards so that eviction sweeps a bounded slice at a
//! time.

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};
use core::ptr;

use std::sync::Arc;

use papaya::{HashMap, LocalGuard, ResizeMode};
use seize::Collector;

use super::Lookup;
use crate::bucket::{Bucket, TOMBSTONE, UNSET};
use crate::sync::{fence, AtomicUsize, Ordering};

/// Keys visited by one sweep slice: what one unlucky request may pay for (about 0.2 ms at 1M
/// keys when it evicts them all, at most 0.4 to 0.8 ms, on the 2-core development machine:
/// `cargo bench --bench flood`).
const SLICE: usize = 512;

/// A miss sweeps a slice once this many inserts were tried since the last one: two keys
/// visited per insert.
///
/// Two, not one: a key that has become evictable waits for the sweep to come round, and a
/// round takes about `len / 2` inserts, so the map holds about 1.5 times its live keys under a
/// flood of new ones (tests/eviction.rs) instead of twice as many.
const INSERTS_PER_SLICE: usize = SLICE / 2;

type Map<K, S> = HashMap<K, Bucket, S>;

pub(crate) struct Store<K, S> {
    shards: Box<[Map<K, S>]>,
    /// The reclamation collector all shards share.
    collector: Arc<Collector>,
    /// Picks a key's shard from bits 32 and up of its hash: papaya indexes with the low bits and
    /// tags with the top seven, so a shard's keys stay spread over its table.
    hasher: S,
    shard_mask: u64,
    max_keys: usize,
    /// Entries in all shards, counted by the store itself (see the module notes).
    len: AtomicUsize,
    /// Slices swept so far: the next slice goes to shard `slices & shard_mask`, so that every
    /// shard sheds its idle keys at the same pace (see [`sweep_slice`](Store::sweep_slice)).
    slices: AtomicUsize,
    /// Per shard, where its next slice starts: the keys before it in iteration order.
    positions: Box<[AtomicUsize]>,
    /// Where [`evict_idlest`](Store::evict_idlest) samples next.
    sample_cursor: AtomicUsize,
    /// Inserts tried since the last slice was swept.
    pending: AtomicUsize,
}

impl<K, S> Store<K, S>
where
    K: Hash + Eq + Send + 'static,
    S: BuildHasher + Clone,
{
    /// A store of `shards` maps (a power of two) holding at most `max_keys` keys.
    pub(crate) fn new(hasher: S, shards: usize, max_keys: usize) -> Self {
        debug_assert!(shards.is_power_of_two() && shards <= 1 << 16);

        // Blocking resizes: a lookup never has to help copy a table, and inserts through
        // `try_insert` finish the resize they start (DESIGN section 5). One reclamation
        // collector for all shards: a check enters it through the same per-thread slot,
        // whichever shard it goes to (separate collectors cost about 4 ns a check at 10k keys).
        let collector = Arc::new(Collector::new());
        let shards = (0..shards)
            .map(|_| {
                let builder = HashMap::builder().hasher(hasher.clone());
                let builder = builder.shared_collector(Arc::clone(&collector));
                builder.resize_mode(ResizeMode::Blocking).build()
            })
            .collect::<Box<[_]>>();

        Self {
            collector,
            shard_mask: shards.len() as u64 - 1,
            positions: shards.iter().map(|_| AtomicUsize::new(0)).collect(),
            shards,
            hasher,
            max_keys,
            len: AtomicUsize::new(0),
            slices: AtomicUsize::new(0),
            sample_cursor: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
        }
    }

    /// Rebuilds every shard at the size of its live keys, leaving evicted ones behind.
    ///
    /// papaya halves a table only when an insert finds it full and mostly dead, so after a flood
    /// of keys and then quiet the tables stay at their largest. Exclusive access means no
    /// request holds a bucket: each bucket's word moves to the new table as it is, and the old
    /// tables are freed.
    pub(crate) fn shrink_to_fit(&mut self)
    where
        K: Clone,
    {
        let mut live = 0;
        for map in self.shards.iter_mut() {
            let old = map.pin();
            let words = old.iter().filter(|(_, bucket)| !bucket.is_tombstone());
            let words: Vec<(K, u64)> = words
                .map(|(key, bucket)| (key.clone(), bucket.load()))
                .collect();
            drop(old);

            let builder = HashMap::builder()
                .hasher(self.hasher.clone())
                .shared_collector(Arc::clone(&self.collector))
                .capacity(words.len());
            let fresh = builder.resize_mode(ResizeMode::Blocking).build();
            let pinned = fresh.pin();
            for (key, word) in words {
                pinned.insert(key, Bucket::starting_at(word));
                live += 1;
            }
            drop(pinned);
            *map = fresh;
        }
        *self.len.get_mut() = live;
    }
}

impl<K, S> Store<K, S>
where
    K: Hash + Eq,
    S: BuildHasher + Clone,
{
    #[inline]
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Map<K, S> {
        let index = (self.hasher.hash_one(key) >> 32) & self.shard_mask;
        &self.shards[index as usize]
    }

    /// Runs `f` on the live bucket of `key`, inserting one whose word is `fresh()` if there is
    /// none (read after the insert: see `insert`).
    ///
    /// `f` answers `None` when it found the bucket evicted: that bucket is unlinked and `f`
    /// runs again on the one that replaces it.
    #[inline]
    pub(crate) fn with_bucket<Q, R>(
        &self,
        key: &Q,
        fresh: impl Fn() -> u64,
        mut f: impl FnMut(&Bucket) -> Option<R>,
    ) -> Lookup<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let map = self.shard(key);
        let guard = map.guard();
        loop {
            // A hit borrows the key and allocates nothing.
            let (bucket, inserted) = match map.get(key, &guard) {
                Some(bucket) => (bucket, false),
                None => match self.insert(map, key, &fresh, &guard) {
                    Some(found) => found,
                    None => return Lookup::Full,
                },
            };

            loop {
                if let Some(result) = f(bucket) {
                    return if inserted {
                        Lookup::Inserted(result)
                    } else {
                        Lookup::Found(result)
                    };
                }
                // Inserted by a request that has not set it yet: set it here, from a horizon
                // read after the insert (see `insert`). A tombstone is final.
                match bucket.load() {
                    TOMBSTONE => break,
                    UNSET => bucket.init(fresh()),
                    _ => {}
                }
            }

            // A tombstone. Acquire pairs with the kill's Release, so `fresh` sees the horizon the
            // sweeper raised; then unlink it unless another request already replaced it.
            fence(Ordering::Acquire);
            self.unlink(map, key, bucket, &guard);
        }
    }

    /// Inserts a bucket for `key` in a slot reserved first, then sets its word to `fresh()`;
    /// `None` when no slot is left.
    ///
    /// The bucket goes in [`UNSET`] and its word is read only after the insert. A word read
    /// before it could predate the key's previous bucket: a request can miss, read the horizon,
    /// be descheduled while another inserts the key, uses it and a sweep evicts it, then insert
    /// a bucket below the evicted one's word, on which its stale reading is admitted. papaya's
    /// insert probes past the removed entry with Acquire loads, so it happens after the removal,
    /// and so after the horizon was raised; so does every request that meets the bucket while
    /// it is still unset (papaya's Release insert, Acquire get).
    #[cold]
    fn insert<'g, Q>(
        &self,
        map: &'g Map<K, S>,
        key: &Q,
        fresh: impl Fn() -> u64,
        guard: &'g LocalGuard<'_>,
    ) -> Option<(&'g Bucket, bool)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Relaxed: the count publishes nothing; the read-modify-write alone makes reservations
        // exclusive, and it never moves past the limit, even for a moment.
        let reserve = |len: usize| (len < self.max_keys).then_some(len + 1);
        if self
            .len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, reserve)
            .is_err()
        {
            return None;
        }

        // A racing request may have inserted the key meanwhile: use its bucket, free the slot.
        match map.try_insert(key.to_owned(), Bucket::unset(), guard) {
            Ok(bucket) => {
                bucket.init(fresh());
                Some((bucket, true))
            }
            Err(occupied) => {
                self.len.fetch_sub(1, Ordering::Relaxed);
                Some((occupied.current, false))
            }
        }
    }

    /// Removes `bucket` from `map` if the map still holds it under `key`.
    fn unlink<Q>(&self, map: &Map<K, S>, key: &Q, bucket: &Bucket, guard: &LocalGuard<'_>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = map.remove_if(key, |_, current| ptr::eq(current, bucket), guard);
        let removed = matches!(removed, Ok(Some(_)));
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Counts one tried insert; true when the caller should now sweep a slice.
    pub(crate) fn slice_due(&self) -> bool {
        // Relaxed: a heuristic counter; a lost race only moves a slice to another request.
        let pending = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
        pending >= INSERTS_PER_SLICE
            && self
                .pending
                .compare_exchange(pending, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Visits the next [`SLICE`] keys of the next shard: unlinks every bucket that `dead`
    /// kills, and every tombstone. Returns the keys visited and evicted.
    ///
    /// The shards take slices in turn, each from where its last one ended, so that all of them
    /// shed their idle keys at the same pace. Sweeping a whole shard before the next let the
    /// shards not swept for a while hold a round's worth of idle keys: under a flood against
    /// the key cap, up to 15% more than their share. papaya doubles a table whose keys fill
    /// half its slots when it copies it, and churn makes it copy (it never reuses a removed
    /// key's slot), so every table doubled (`cargo bench --bench flood`).
    ///
    /// papaya cannot start an iteration in the middle of a table, so the slice skips the keys
    /// before its position: a sequential scan of the table's slots, cheap next to the visits,
    /// which touch each key's bucket. Inserts, other removals and a resize move keys; the
    /// shard's position then visits some keys twice and others a round later, which is harmless.
    pub(crate) fn sweep_slice(&self, mut dead: impl FnMut(&Bucket) -> bool) -> (usize, usize) {
        // Relaxed, here and on the position: both only spread the work and publish nothing.
        let shard = self.slices.fetch_add(1, Ordering::Relaxed) & self.shard_mask as usize;
        let position = &self.positions[shard];

        // Claim the range, so that two sweeping requests visit different keys.
        let at = position.load(Ordering::Relaxed);
        let claimed = at + SLICE;
        if position
            .compare_exchange(at, claimed, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return (0, 0);
        }

        let map = &self.shards[shard];
        let guard = map.guard();
        let keys = map.iter(&guard).skip(at).take(SLICE);
        let (visited, evicted) = self.visit(map, keys, &guard, &mut dead);

        // The end of the shard: its next slice starts it again. Otherwise the keys this slice
        // evicted no longer count in the iteration, so the next slice starts that many places
        // earlier, where the first key it has not visited now is. Another slice may have moved
        // the position since: then it stays where that one put it.
        let next = if visited < SLICE {
            0
        } else {
            claimed - evicted
        };
        if next != claimed {
            let _ = position.compare_exchange(claimed, next, Ordering::Relaxed, Ordering::Relaxed);
        }
        (visited, evicted)
    }

    /// Slices enough for every shard to come round once from wherever its position is: a shard
    /// of `n` keys takes `n / SLICE + 1` slices, the last one short (or empty) and wrapping,
    /// and one more in case the shard shrank below its position, whose first slice then only
    /// finds the end.
    pub(crate) fn slices_per_round(&self) -> usize {
        let largest = self.shards.iter().map(HashMap::len).max().unwrap_or(0);
        self.shards.len() * (largest / SLICE + 2)
    }

    /// Sweeps every shard once.
    pub(crate) fn sweep_all(&self, mut dead: impl FnMut(&Bucket) -> bool) -> usize {
        self.shards
            .iter()
            .map(|map| self.sweep_shard(map, &mut dead).1)
            .sum()
    }

    fn sweep_shard(
        &self,
        map: &Map<K, S>,
        mut dead: impl FnMut(&Bucket) -> bool,
    ) -> (usize, usize) {
        let guard = map.guard();
        self.visit(map, map.iter(&guard), &guard, &mut dead)
    }

    /// Unlinks each of `keys` that `dead` kills, and each tombstone; returns the keys visited
    /// and unlinked.
    fn visit<'g>(
        &self,
        map: &Map<K, S>,
        keys: impl Iterator<Item = (&'g K, &'g Bucket)>,
        guard: &LocalGuard<'_>,
        dead: &mut impl FnMut(&Bucket) -> bool,
    ) -> (usize, usize)
    where
        K: 'g,
    {
        let (mut visited, mut evicted) = (0, 0);
        for (key, bucket) in keys {
            visited += 1;
            if (dead(bucket) || bucket.is_tombstone()) && self.unlink(map, key, bucket, guard) {
                evicted += 1;
            }
        }
        (visited, evicted)
    }

    /// Evicts the most idle of `sample` buckets, full or not, taken from the shards in turn.
    /// Returns whether it freed a slot.
    pub(crate) fn evict_idlest(&self, sample: usize) -> bool {
        // The bucket with the earliest word has the most tokens: it has been idle the longest.
        // Relaxed: the cursor only spreads the samples over the shards.
        let start = self.sample_cursor.fetch_add(1, Ordering::Relaxed);
        let mut idlest: Option<(u64, usize)> = None;
        let mut seen = 0;
        for step in 0..self.shards.len() {
            let index = (start + step) & self.shard_mask as usize;
            let map = &self.shards[index];
            for (_, bucket) in map.iter(&map.guard()).take(sample - seen) {
                let word = bucket.load();
                seen += 1;
                if idlest.is_none_or(|(least, _)| word < least) {
                    idlest = Some((word, index));
                }
            }
            if seen == sample {
                break;
            }
        }

        // The kill is a CAS from the word seen, so an admission since then keeps the bucket.
        // A tombstone sampled is dead already. Either way the slot is free once the bucket is
        // dead, whoever unlinks it: a request that finds the tombstone unlinks it too.
        let Some((word, index)) = idlest else {
            return false;
        };
        let map = &self.shards[index];
        let guard = map.guard();
        let found = map.iter(&guard).find(|(_, bucket)| bucket.load() == word);
        found.is_some_and(|(key, bucket)| {
            let dead = bucket.is_tombstone() || bucket.try_evict_from(word);
            if dead {
                self.unlink(map, key, bucket, &guard);
            }
            dead
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }
}
