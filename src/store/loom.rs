//! The store under loom: papaya's synchronisation, and only that, on loom atomics.
//!
//! Loom cannot see papaya's atomics, so this store stands in for it. It keeps to papaya's
//! contract as `sharded.rs` relies on it, and gives no more happens-before edges than papaya
//! does, so that the models can catch a missing ordering in the code around the map:
//!
//! - each key has a slot, one loom `AtomicUsize` holding its entry (`0` for none, `i + 1` for
//!   the `i`-th bucket ever inserted). `get` and the iteration load it with Acquire (papaya
//!   loads meta and entry with Acquire); `try_insert` and `remove_if` are CASes on it, Release
//!   on success and Acquire on failure, like papaya's `insert_at` and `update_at`, except that
//!   the insert CAS also acquires: papaya's insert probes past the key's removed entry with
//!   Acquire loads before it reaches an empty slot, and here both are the one value `0`;
//! - the bookkeeping around the slots (which slot a key has, the buckets ever inserted) is in
//!   `std` mutexes that loom does not see, so they add no edges. No loom operation runs while
//!   one is held, so loom never switches threads inside them;
//! - `get`, `try_insert` and `remove_if` are separate steps, as in papaya: a request can see a
//!   miss, be preempted, and insert after other threads have inserted and removed the key;
//! - the key count and the reservation around inserts are the same code as in `sharded.rs`.
//!
//! A model may use at most [`SLOTS`] distinct keys.

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Lookup;
use crate::bucket::{Bucket, TOMBSTONE, UNSET};
use crate::sync::{fence, AtomicUsize, Ordering};

/// Distinct keys a model may use.
const SLOTS: usize = 4;

pub(crate) struct Store<K, S> {
    /// Each key's slot: 0 for none, `i + 1` for `buckets[i]`. Created up front, by the thread
    /// that builds the limiter, so that every model thread's access happens after it.
    slots: Box<[AtomicUsize]>,
    /// Which slot each key has (bookkeeping, invisible to loom).
    keys: Mutex<HashMap<K, usize, S>>,
    /// Every bucket ever inserted or tried, by index (bookkeeping, invisible to loom).
    buckets: Mutex<Vec<Arc<Bucket>>>,
    max_keys: usize,
    /// Entries, counted by the store itself, exactly as in `sharded.rs`.
    len: AtomicUsize,
    /// A fault for the negative controls: no Acquire fence after a tombstone.
    pub(crate) skip_fence: bool,
}

impl<K, S> Store<K, S>
where
    K: Hash + Eq,
    S: BuildHasher + Clone,
{
    pub(crate) fn new(hasher: S, _shards: usize, max_keys: usize) -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicUsize::new(0)).collect(),
            keys: Mutex::new(HashMap::with_hasher(hasher)),
            buckets: Mutex::new(Vec::new()),
            max_keys,
            len: AtomicUsize::new(0),
            skip_fence: false,
        }
    }

    /// The slot of `key`, given one on first sight.
    fn slot<Q>(&self, key: &Q) -> &AtomicUsize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut keys = self.keys.lock().unwrap();
        let next = keys.len();
        let index = match keys.get(key) {
            Some(&index) => index,
            None => {
                assert!(next < SLOTS, "a loom model may use at most {SLOTS} keys");
                keys.insert(key.to_owned(), next);
                next
            }
        };
        &self.slots[index]
    }

    fn bucket(&self, entry: usize) -> Arc<Bucket> {
        Arc::clone(&self.buckets.lock().unwrap()[entry - 1])
    }

    /// papaya's `get`.
    fn get(&self, slot: &AtomicUsize) -> Option<Arc<Bucket>> {
        match slot.load(Ordering::Acquire) {
            0 => None,
            entry => Some(self.bucket(entry)),
        }
    }

    /// papaya's `try_insert`: `Ok` with the new bucket, or `Err` with the one already there.
    fn try_insert(&self, slot: &AtomicUsize, bucket: Bucket) -> Result<Arc<Bucket>, Arc<Bucket>> {
        let bucket = Arc::new(bucket);
        let entry = {
            let mut buckets = self.buckets.lock().unwrap();
            buckets.push(Arc::clone(&bucket));
            buckets.len()
        };
        loop {
            // AcqRel: papaya's insert CAS is Release, but it reaches an empty slot only after
            // probing past the key's removed entry with Acquire loads (a removed entry never
            // turns empty again). Here the removed entry and the empty slot are one value, so
            // the CAS itself carries that Acquire; on a never-used slot it reads the initial 0
            // and acquires nothing, as papaya's CAS on a fresh slot does.
            match slot.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(bucket),
                Err(0) => continue,
                Err(current) => return Err(self.bucket(current)),
            }
        }
    }

    /// papaya's `remove_if` with "is still `bucket`" as the condition; whether it removed.
    fn remove_if_same(&self, slot: &AtomicUsize, bucket: &Arc<Bucket>) -> bool {
        let mut entry = slot.load(Ordering::Acquire);
        loop {
            if entry == 0 || !Arc::ptr_eq(&self.bucket(entry), bucket) {
                return false;
            }
            match slot.compare_exchange(entry, 0, Ordering::Release, Ordering::Acquire) {
                Ok(_) => return true,
                Err(current) => entry = current,
            }
        }
    }

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
        let slot = self.slot(key);
        loop {
            let (bucket, inserted) = match self.get(slot) {
                Some(bucket) => (bucket, false),
                None => match self.insert(slot, &fresh) {
                    Some(found) => found,
                    None => return Lookup::Full,
                },
            };

            loop {
                if let Some(result) = f(&bucket) {
                    return if inserted {
                        Lookup::Inserted(result)
                    } else {
                        Lookup::Found(result)
                    };
                }
                match bucket.load() {
                    TOMBSTONE => break,
                    UNSET => bucket.init(fresh()),
                    _ => {}
                }
            }

            if !self.skip_fence {
                fence(Ordering::Acquire);
            }
            self.unlink(slot, &bucket);
        }
    }

    fn insert(&self, slot: &AtomicUsize, fresh: impl Fn() -> u64) -> Option<(Arc<Bucket>, bool)> {
        let reserve = |len: usize| (len < self.max_keys).then_some(len + 1);
        if self
            .len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, reserve)
            .is_err()
        {
            return None;
        }

        match self.try_insert(slot, Bucket::unset()) {
            Ok(bucket) => {
                bucket.init(fresh());
                Some((bucket, true))
            }
            Err(current) => {
                self.len.fetch_sub(1, Ordering::Relaxed);
                Some((current, false))
            }
        }
    }

    fn unlink(&self, slot: &AtomicUsize, bucket: &Arc<Bucket>) -> bool {
        let removed = self.remove_if_same(slot, bucket);
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// The entries as papaya's iterator would give them: each slot loaded with Acquire.
    fn entries(&self) -> Vec<(&AtomicUsize, Arc<Bucket>)> {
        let used = self.keys.lock().unwrap().len();
        self.slots[..used]
            .iter()
            .filter_map(|slot| self.get(slot).map(|bucket| (slot, bucket)))
            .collect()
    }

    pub(crate) fn slice_due(&self) -> bool {
        false
    }

    pub(crate) fn sweep_slice(&self, dead: impl FnMut(&Bucket) -> bool) -> (usize, usize) {
        let mut visited = 0;
        let evicted = self.sweep(dead, &mut visited);
        (visited, evicted)
    }

    /// One: a slice here sweeps every key.
    pub(crate) fn slices_per_round(&self) -> usize {
        1
    }

    pub(crate) fn sweep_all(&self, dead: impl FnMut(&Bucket) -> bool) -> usize {
        self.sweep(dead, &mut 0)
    }

    fn sweep(&self, mut dead: impl FnMut(&Bucket) -> bool, visited: &mut usize) -> usize {
        let mut evicted = 0;
        for (slot, bucket) in self.entries() {
            *visited += 1;
            if (dead(&bucket) || bucket.is_tombstone()) && self.unlink(slot, &bucket) {
                evicted += 1;
            }
        }
        evicted
    }

    pub(crate) fn evict_idlest(&self, _sample: usize) -> bool {
        let idlest = self
            .entries()
            .into_iter()
            .map(|(slot, bucket)| (bucket.load(), slot, bucket))
            .min_by_key(|(word, _, _)| *word);
        match idlest {
            Some((word, slot, bucket)) => bucket.try_evict_from(word) && self.unlink(slot, &bucket),
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The entries in the map, counted one by one (for the models' final checks).
    pub(crate) fn count_entries(&self) -> usize {
        self.entries().len()
    }

    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }
}
