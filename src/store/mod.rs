//! The map from keys to buckets, and the eviction protocol's side of it.
//!
//! Normally [`papaya`] maps, one per shard so that eviction can sweep the keys a slice at a time
//! (`sharded.rs`); under `--cfg hotlimit_loom`, where loom cannot see papaya's atomics, a loom
//! mutex around a `HashMap` of `Arc`s with the same operations (`loom.rs`), so that the models
//! run the real bucket and the real protocol around it.
//!
//! # The eviction protocol
//!
//! A map may drop an entry while a request still holds its bucket; a bucket that kept admitting
//! after that would hand out a second burst once a fresh bucket took its place. So a bucket is
//! never removed alive: the sweeper first turns it into a tombstone with a CAS on its word, and
//! only then unlinks it. A request that finds a tombstone unlinks it itself, if the map still
//! holds that same bucket, and tries again on the bucket now in the map. An admission and a kill
//! are CASes on one word, so exactly one of them wins.
//!
//! # The key limit
//!
//! The store counts its entries itself: a miss reserves a slot with a `fetch_add` before it
//! inserts, and gives it back if the limit is reached or another request inserted the key first.
//! So the count never exceeds the limit, whatever the interleaving.

#[cfg(hotlimit_loom)]
mod loom;
#[cfg(not(hotlimit_loom))]
mod sharded;

#[cfg(hotlimit_loom)]
pub(crate) use self::loom::Store;
#[cfg(not(hotlimit_loom))]
pub(crate) use self::sharded::Store;

/// The keyed map's shards: a key's shard comes from its hash, and sweeping walks them in turn.
pub(crate) const SHARDS: usize = 64;

/// Where a lookup found its bucket.
pub(crate) enum Lookup<R> {
    /// On a bucket that was already there.
    Found(R),
    /// On a bucket this lookup inserted.
    Inserted(R),
    /// Nowhere: the key is new and the store holds its maximum of keys.
    Full,
}
