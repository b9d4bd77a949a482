//! The same quotas across many nodes, kept in Redis (cargo feature `redis`).
//!
//! [`RedisRateLimiter`] keeps one token bucket per key in Redis, with the semantics of
//! [`KeyedRateLimiter`](crate::KeyedRateLimiter): a bucket starts full, a request of cost `k`
//! passes iff the bucket holds `k` tokens, a refusal takes nothing and says exactly when to
//! retry, and a cost above the burst is [`InsufficientCapacity`](crate::InsufficientCapacity)
//! before any network call. It needs a tokio runtime.
//!
//! ```no_run
//! use hotlimit::redis::RedisRateLimiter;
//! use hotlimit::Quota;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = redis::Client::open("redis://127.0.0.1:6379/")?;
//! let limiter = RedisRateLimiter::builder(client, "100/min".parse::<Quota>()?).build()?;
//! if let Err(refused) = limiter.check_key("api-key-1").await {
//!     println!("slow down: {refused}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # One check, one script
//!
//! Each check is one `EVALSHA` of a short Lua script on the bucket's key, through a
//! [`redis::aio::ConnectionManager`] (one multiplexed connection that pipelines concurrent
//! checks and reconnects by itself). The script reads the time with Redis `TIME`: every node
//! uses the server's clock, so nodes whose own clocks disagree share one budget exactly, and no
//! client ever sends a timestamp. It stores the bucket's theoretical arrival time, never lowers
//! one written from a later clock reading, and expires the key once the bucket would be full
//! again (at least 1 ms, so a key is never stored without a limit). Redis 5 or later is needed:
//! they replicate scripts by effects, which allows `TIME` before a write.
//!
//! Keys are `{prefix:key}`: the braces make the whole name a Redis Cluster hash tag, so the
//! script touches one slot. The limiter itself talks to one server (or a proxy in front of a
//! cluster) through the connection manager; it has no cluster client of its own yet.
//!
//! The runtime must have its time driver on (`enable_time` or `enable_all`, as
//! `#[tokio::main]` does): every call is bounded with a tokio timer.
//!
//! # Precision
//!
//! Lua numbers are doubles, so the script keeps every value an integer below `2^53`: per quota
//! it counts in units such that one microsecond and one token are both whole numbers of units
//! (for 3/s: 3 units per microsecond, 1,000,000 per token). Within that range its arithmetic is
//! exact rational token-bucket arithmetic on a clock read in whole microseconds (Redis `TIME`'s
//! resolution), with no drift however long a key lives. Where a token's time is a whole number
//! of nanoseconds the in-process bucket is exact too and both decide alike; otherwise the
//! in-process bucket rounds its clock down to its 1-2 ns unit and may refuse up to one unit
//! later at a boundary. Retry and reset hints are converted to the crate's
//! [`Snapshot`](crate::Snapshot) and [`Denied`](crate::Denied), rounded up to the quota's time
//! unit (1-2 ns). A quota whose
//! `2 * burst * P / g` reaches `2^53` (with `P` the period in ns and `g = gcd(1000 * n, P)`),
//! say 10 per century, is refused by [`RedisRateLimiterBuilder::build`].
//!
//! # When Redis fails
//!
//! Every call to Redis is bounded by the [budget](RedisRateLimiterBuilder::budget) (with
//! `tokio::time::timeout`). When a call fails for want of a server (I/O error, refused or
//! dropped connection, budget spent), the circuit breaker opens: for the
//! [cool-down](RedisRateLimiterBuilder::cooldown) checks do not wait for Redis at all, then one
//! check at a time probes it, and the first probe that gets an answer closes the breaker. So
//! while Redis is down, a check waits at most the budget, once, and after that not at all.
//!
//! Meanwhile the [`FailurePolicy`] answers: [`FailClosed`](FailurePolicy::FailClosed) refuses,
//! [`FailOpen`](FailurePolicy::FailOpen) admits, and
//! [`LocalFallback`](FailurePolicy::LocalFallback) decides with a bucket per key on this node.
//! It also answers a check that Redis answered with an error (a key holding another type, a
//! malformed bucket, a reply the script cannot give), without opening the breaker: the server
//! is up. [`RedisRateLimiter::backend_errors`] and [`RedisRateLimiter::fallback_decisions`]
//! count what happened.
//!
//! # Leases
//!
//! With [`lease`](RedisRateLimiterBuilder::lease), a node takes up to `L` tokens of a key in
//! one script run when the bucket holds them (at least the request's cost, or the request is
//! refused as usual) and spends the rest in process, with no round trip, until they run out or
//! expire. A node never holds more than `L - 1` unspent tokens of a key, and each was admitted
//! by the shared bucket, so over any window `N` nodes admit at most the quota's bound plus
//! `N * (L - 1)`. Leased tokens expire after the lease's time to live, so an idle node returns
//! the capacity to the others by letting it lapse.

mod breaker;
mod decision;
mod lease;
mod limiter;
mod policy;
mod script;
mod units;

pub use decision::{Allowed, BackendError, BuildError, RedisCheckError, Source};
pub use limiter::{RedisRateLimiter, RedisRateLimiterBuilder};
pub use policy::FailurePolicy;
