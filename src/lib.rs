//! A lock-free token-bucket rate limiter for the hot path.
//!
//! - [`Quota`]: `n` tokens per period, with a burst (capacity) that defaults to `n`; built in
//!   code or read from strings such as `"100/min"`.
//! - [`RateLimiter`]: one bucket, for a whole service or one resource.
//! - [`KeyedRateLimiter`]: one bucket per key (an API key, a user, an address) in a concurrent
//!   map.
//! - [`ManualClock`]: time that moves only when a test says so.
//! - `http::RateLimitLayer`: a tower middleware for axum, hyper and tonic services, limiting
//!   each client (an API key, the peer or proxied client address, anything a closure finds) by
//!   a policy of one or more quotas, with tiers, shadow mode and the standard rate-limit headers
//!   (cargo feature `http`, on by default; `axum` reads axum's `ConnectInfo`, `metrics` exports
//!   the layer's counts).
//! - `redis::RedisRateLimiter`: the same quotas shared by many nodes through Redis, with a
//!   failure policy and an optional local fast path (cargo feature `redis`).
//!
//! A request of cost `k` passes when the bucket holds `k` tokens, and then takes them; a refused
//! request takes nothing. A bucket starts full.
//!
//! # Quick start
//!
//! ```
//! use hotlimit::{CheckError, KeyedRateLimiter, Quota};
//!
//! let limiter = KeyedRateLimiter::<String>::new("100/min".parse()?);
//! match limiter.check_key("api-key-1") {
//!     Ok(snapshot) => println!("allowed, {} left", snapshot.remaining()),
//!     Err(CheckError::Denied(denied)) => println!("retry in {:?}", denied.retry_after()),
//!     Err(other) => println!("refused: {other}"),
//! }
//! # Ok::<(), hotlimit::QuotaError>(())
//! ```
//!
//! # How a bucket works
//!
//! Each bucket is one `AtomicU64` holding its theoretical arrival time (the GCRA form of a token
//! bucket): the instant, in units of a fraction of one token's time, at which the bucket would be
//! full again. Tokens and timestamp are that one number, so a check is one clock read, one load,
//! a comparison and one compare-and-swap, with no lock and no allocation. A refusal that the
//! loaded word already proves writes nothing.
//!
//! # Memory ordering
//!
//! Checks use `Relaxed` atomics only: a bucket's word is its whole state and publishes no other
//! memory. A check synchronises with nothing else in your program.
//!
//! # Known limits
//!
//! - Time is counted from the limiter's creation in units of one to two nanoseconds for usual
//!   quotas; after about 146 years of uptime a limiter's time stops and buckets stop refilling.
//! - A quota finer than one token per nanosecond is refused at build time.
//! - With a burst of 1, a client paced exactly at the rate may be refused when its clock runs a
//!   nanosecond ahead of the limiter's; any burst of 2 or more absorbs that.
//! - Clock readings older than one the limiter has seen are lifted to the latest it has seen
//!   (to within 1 ms), so a clock stepped back stands still until it catches up. A clock stepped
//!   far forward and back likewise holds the limiter at the later time.
//! - [`QuantaClock`] is calibrated against the system's monotonic clock and may differ from it by
//!   tens of parts per million.
//! - [`KeyedRateLimiter`] evicts a key once its bucket has been full for the idle TTL, a
//!   slice at a time as new keys arrive; with no new keys, idle keys stay until a sweep
//!   ([`KeyedRateLimiter::retain_recent`], [`KeyedRateLimiter::spawn_sweeper`]). Without
//!   [`KeyedBuilder::max_keys`], memory is bounded by the rate of new keys times the refill time
//!   plus the TTL, not by a constant.
//! - papaya halves a table only when an insert finds it full and at most an eighth live: after
//!   a flood and then quiet, the evicted keys and buckets are freed but the tables keep their
//!   largest size (a pointer and a byte per slot) until
//!   [`KeyedRateLimiter::shrink_to_fit`], which needs exclusive access.
//! - Under churn each key costs its entry (32 bytes with a `u64` key) and 2 to about 4 slots of
//!   9 bytes in its shard's table (one of 64): papaya never reuses a removed key's slot, so
//!   churn makes it copy a table whenever they fill it, and a copy doubles a table that keys
//!   fill half of. A [`KeyedBuilder::max_keys`] whose 64th stays a little under half of a
//!   power-of-two table costs what as many keys that never leave cost: a 10M-key flood against
//!   a cap of 1M (15,625 keys a shard, 32,768 slots) peaked within 2 MiB of the resident memory
//!   of 1M keys that never leave, about 51 bytes a key (`cargo bench --bench flood`). A cap
//!   whose 64th fills more than half of its table gets tables twice that size under churn:
//!   budget 4 slots a key (a cap of 1.5M peaked at 85 MiB, within the 108 MiB of that budget:
//!   `cargo bench --bench flood -- --cap 1500000`).
//! - Past about 10k keys a keyed check costs what papaya's lookup costs: each entry is its own
//!   allocation, so a check on a key out of cache pays one more dependent miss than a map with
//!   inline buckets (see the README's benchmarks).
//! - papaya copies a shard's table in the request whose insert finds it full: that request, and
//!   inserts into the same shard meanwhile, wait for the copy, 1 to 2 ms for a shard of a 1M-key
//!   limiter on the 2-core development machine (the flood bench's "slowest check"). Sweeps are
//!   cut into slices of 512 keys, at most about 0.8 ms each there.
//! - With the `http` feature each distinct policy text (a policy's names and quotas) is kept for
//!   the life of the process, so that responses copy their fixed header values as pointers: a
//!   few dozen bytes a text, which grow only in a process that keeps building policies with new
//!   names or quotas.

#![warn(missing_docs)]

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod bucket;
mod clock;
mod direct;
mod gcra;
#[cfg(feature = "http")]
pub mod http;
mod keyed;
#[cfg(hotlimit_loom)]
#[doc(hidden)]
pub mod loom_api;
mod outcome;
mod quota;
mod quota_str;
#[cfg(feature = "redis")]
pub mod redis;
mod store;
mod sync;
mod timeline;

pub use clock::{Clock, ManualClock, QuantaClock, RecentClock};
pub use direct::RateLimiter;
pub use keyed::{DefaultHasher, KeyedBuilder, KeyedRateLimiter, Overflow, Sweeper, Swept};
pub use outcome::{CheckError, Denied, InsufficientCapacity, Snapshot, TooManyKeys};
pub use quota::{Quota, QuotaError, MAX_BURST, MAX_PERIOD};
