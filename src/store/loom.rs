//! The store under loom: a loom mutex around a `HashMap` of `Arc`s, one shard.
//!
//! Same operations and the same protocol as the papaya store, so that the models exercise the
//! real bucket, the real tombstone and the real retry around them.

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};
use std::collections::HashMap;

use super::Lookup;
use crate::bucket::Bucket;
use crate::sync::{Arc, Mutex};

pub(crate) struct Store<K, S> {
    map: Mutex<HashMap<K, Arc<Bucket>, S>>,
    max_keys: usize,
}

impl<K, S> Store<K, S>
where
    K: Hash + Eq,
    S: BuildHasher + Clone,
{
    pub(crate) fn new(hasher: S, _shards: usize, max_keys: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::with_hasher(hasher)),
            max_keys,
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
        loop {
            // Find or insert under the lock, then use the bucket outside it, as papaya would.
            let (bucket, inserted) = {
                let mut map = self.map.lock().unwrap();
                match map.get(key) {
                    Some(bucket) => (bucket.clone(), false),
                    None if map.len() >= self.max_keys => return Lookup::Full,
                    None => {
                        let bucket = Arc::new(Bucket::starting_at(fresh()));
                        map.insert(key.to_owned(), bucket.clone());
                        (bucket, true)
                    }
                }
            };

            if let Some(result) = f(&bucket) {
                return if inserted {
                    Lookup::Inserted(result)
                } else {
                    Lookup::Found(result)
                };
            }

            self.unlink(&bucket);
        }
    }

    fn unlink(&self, bucket: &Arc<Bucket>) -> bool {
        let mut map = self.map.lock().unwrap();
        let before = map.len();
        map.retain(|_, current| !Arc::ptr_eq(current, bucket));
        before != map.len()
    }

    pub(crate) fn slice_due(&self) -> bool {
        false
    }

    pub(crate) fn sweep_slice(&self, dead: impl FnMut(&Bucket) -> bool) -> (usize, usize) {
        let visited = self.len();
        (visited, self.sweep_all(dead))
    }

    pub(crate) fn sweep_all(&self, mut dead: impl FnMut(&Bucket) -> bool) -> usize {
        let buckets: Vec<Arc<Bucket>> = self.map.lock().unwrap().values().cloned().collect();
        let mut evicted = 0;
        for bucket in buckets {
            if (dead(&bucket) || bucket.is_tombstone()) && self.unlink(&bucket) {
                evicted += 1;
            }
        }
        evicted
    }

    pub(crate) fn evict_idlest(&self, _sample: usize) -> bool {
        let buckets: Vec<Arc<Bucket>> = self.map.lock().unwrap().values().cloned().collect();
        let idlest = buckets
            .into_iter()
            .map(|bucket| (bucket.load(), bucket))
            .min_by_key(|(w, _)| *w);
        match idlest {
            Some((word, bucket)) => bucket.try_evict_from(word) && self.unlink(&bucket),
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }

    pub(crate) fn slice_len(&self) -> usize {
        self.len()
    }
}
