//! The map from keys to buckets, and the eviction protocol's side of it.
//!
//! Normally a [`papaya`] map; under `--cfg hotlimit_loom`, where loom cannot see papaya's
//! atomics, a loom mutex around a `HashMap` of `Arc`s with the same two operations, so that the
//! models run the real bucket and the real protocol around it.
//!
//! # The eviction protocol
//!
//! A map may drop an entry while a request still holds its bucket; a bucket that kept admitting
//! after that would hand out a second burst once a fresh bucket took its place. So a bucket is
//! never removed alive: the sweeper first turns it into a tombstone with a CAS on its word (only
//! from a full, idle word), and only then unlinks it. A request that finds a tombstone unlinks it
//! itself, if the map still holds that same bucket, and tries again on the bucket now in the map.
//! An admission and a kill are CASes on one word, so exactly one of them wins.

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use crate::bucket::Bucket;

#[cfg(not(hotlimit_loom))]
pub(crate) use self::papaya_store::Store;

#[cfg(hotlimit_loom)]
pub(crate) use self::loom_store::Store;

#[cfg(not(hotlimit_loom))]
mod papaya_store {
    use super::*;
    use papaya::{HashMap, ResizeMode};

    pub(crate) struct Store<K, S> {
        map: HashMap<K, Bucket, S>,
    }

    impl<K, S> Store<K, S>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        pub(crate) fn new(hasher: S) -> Self {
            // Blocking resizes: a lookup never has to help copy a table, and inserts through
            // `try_insert` finish the resize they start (DESIGN section 5).
            let map = HashMap::builder()
                .hasher(hasher)
                .resize_mode(ResizeMode::Blocking)
                .build();
            Self { map }
        }

        /// Runs `f` on the live bucket of `key`, inserting a full one if there is none.
        ///
        /// `f` answers `None` when it found the bucket evicted: that bucket is unlinked and `f`
        /// runs again on the one that replaces it.
        #[inline]
        pub(crate) fn with_bucket<Q, R>(
            &self,
            key: &Q,
            mut f: impl FnMut(&Bucket) -> Option<R>,
        ) -> R
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        {
            let map = self.map.pin();
            loop {
                // A hit borrows the key and allocates nothing; a miss inserts a full bucket, or
                // takes the one that a racing request inserted first.
                let bucket = match map.get(key) {
                    Some(bucket) => bucket,
                    None => match map.try_insert(key.to_owned(), Bucket::full()) {
                        Ok(bucket) => bucket,
                        Err(occupied) => occupied.current,
                    },
                };

                if let Some(result) = f(bucket) {
                    return result;
                }

                // A tombstone: unlink it unless another request already replaced it.
                let _ = map.remove_if(key, |_, current| core::ptr::eq(current, bucket));
            }
        }

        /// Evicts every bucket that `dead` turns into a tombstone, and unlinks tombstones.
        pub(crate) fn evict(&self, mut dead: impl FnMut(&Bucket) -> bool) -> usize {
            let map = self.map.pin();
            let mut evicted = 0;
            for (key, bucket) in map.iter() {
                let unlinked = (dead(bucket) || bucket.is_tombstone())
                    && map
                        .remove_if(key, |_, current| core::ptr::eq(current, bucket))
                        .is_ok();
                evicted += usize::from(unlinked);
            }
            evicted
        }

        pub(crate) fn len(&self) -> usize {
            self.map.len()
        }
    }
}

#[cfg(hotlimit_loom)]
mod loom_store {
    use super::*;
    use crate::sync::{Arc, Mutex};
    use std::collections::HashMap;

    pub(crate) struct Store<K, S> {
        map: Mutex<HashMap<K, Arc<Bucket>, S>>,
    }

    impl<K, S> Store<K, S>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        pub(crate) fn new(hasher: S) -> Self {
            Self {
                map: Mutex::new(HashMap::with_hasher(hasher)),
            }
        }

        pub(crate) fn with_bucket<Q, R>(
            &self,
            key: &Q,
            mut f: impl FnMut(&Bucket) -> Option<R>,
        ) -> R
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        {
            loop {
                let bucket = {
                    let mut map = self.map.lock().unwrap();
                    match map.get(key) {
                        Some(bucket) => bucket.clone(),
                        None => {
                            let bucket = Arc::new(Bucket::full());
                            map.insert(key.to_owned(), bucket.clone());
                            bucket
                        }
                    }
                };

                if let Some(result) = f(&bucket) {
                    return result;
                }

                let mut map = self.map.lock().unwrap();
                if map
                    .get(key)
                    .is_some_and(|current| Arc::ptr_eq(current, &bucket))
                {
                    map.remove(key);
                }
            }
        }

        pub(crate) fn evict(&self, mut dead: impl FnMut(&Bucket) -> bool) -> usize {
            let buckets: Vec<Arc<Bucket>> = self.map.lock().unwrap().values().cloned().collect();
            let mut evicted = 0;
            for bucket in buckets {
                if dead(&bucket) || bucket.is_tombstone() {
                    let mut map = self.map.lock().unwrap();
                    let before = map.len();
                    map.retain(|_, current| !Arc::ptr_eq(current, &bucket));
                    evicted += before - map.len();
                }
            }
            evicted
        }

        pub(crate) fn len(&self) -> usize {
            self.map.lock().unwrap().len()
        }
    }
}
