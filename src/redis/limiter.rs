//! [`RedisRateLimiter`]: the shared buckets in Redis, the breaker and the policy around them.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::breaker::{Breaker, Pass};
use super::decision::{Allowed, BackendError, BuildError, RedisCheckError, Source};
use super::lease::{Leases, Take};
use super::policy::FailurePolicy;
use super::script::{self, Reply};
use super::units::Units;
use crate::outcome::InsufficientCapacity;
use crate::{KeyedRateLimiter, Quota};

/// A token bucket per key, kept in Redis and shared by every node that uses the same prefix.
///
/// Each check is one atomic script run in Redis, on the server's clock. See the
/// [module documentation](super) for the semantics, the failure policy, the breaker and leases.
/// Clones share one connection, breaker and set of counters.
///
/// # Examples
///
/// ```no_run
/// use hotlimit::redis::{FailurePolicy, RedisRateLimiter};
/// use hotlimit::Quota;
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let limiter = RedisRateLimiter::builder(client, Quota::per_second(100)?)
///     .prefix("api")
///     .failure_policy(FailurePolicy::LocalFallback(Quota::per_second(20)?))
///     .budget(Duration::from_millis(20))
///     .build()?;
/// match limiter.check_key("alice").await {
///     Ok(allowed) => println!("allowed by {:?}", allowed.source()),
///     Err(refused) => println!("refused: {refused}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    script: Script,
    quota: Quota,
    units: Units,
    prefix: String,
    budget: Duration,
    breaker: Breaker,
    fallback: Fallback,
    leases: Option<Leases>,
    backend_errors: AtomicU64,
    fallback_decisions: AtomicU64,
}

enum Fallback {
    Closed,
    Open,
    Local(Box<KeyedRateLimiter<String>>),
}

/// Settings for a [`RedisRateLimiter`]; from [`RedisRateLimiter::builder`].
#[derive(Debug)]
#[must_use]
pub struct RedisRateLimiterBuilder {
    client: redis::Client,
    quota: Quota,
    prefix: String,
    policy: FailurePolicy,
    budget: Duration,
    cooldown: Duration,
    lease: Option<(u64, Duration)>,
}

impl RedisRateLimiterBuilder {
    /// The prefix of every key: the bucket of `key` is the Redis key `{prefix:key}`, whose
    /// braces make it a hash tag for Redis Cluster. Default `"hotlimit"`. Limiters that share a
    /// prefix share buckets and must use the same quota.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// What to answer when Redis cannot decide. Default [`FailurePolicy::FailClosed`].
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The longest a check waits for Redis, connecting included. Default 50 ms.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// How long the breaker stays open after a failure before one check probes Redis again.
    /// Default 1 s.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Lease mode: take up to `tokens` at once from Redis and spend them in process, dropping
    /// what is left `ttl` after each refill. See the [module notes](super#leases) for the bound
    /// on over-admission (at most `tokens - 1` per node).
    pub fn lease(mut self, tokens: u64, ttl: Duration) -> Self {
        self.lease = Some((tokens, ttl));
        self
    }

    /// Builds the limiter. Connects lazily, on the first check.
    ///
    /// # Errors
    ///
    /// A quota too fine for the script's exact arithmetic, a lease of zero tokens or more than
    /// the burst, a zero budget, or no tokio runtime around the call.
    pub fn build(self) -> Result<RedisRateLimiter, BuildError> {
        let units = Units::new(self.quota).ok_or(BuildError::QuotaTooFine(self.quota))?;
        if let Some((lease, _)) = self.lease {
            if lease == 0 || lease > self.quota.burst() {
                return Err(BuildError::BadLease {
                    lease,
                    burst: self.quota.burst(),
                });
            }
        }
        if self.budget.is_zero() {
            return Err(BuildError::ZeroBudget);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BuildError::NoRuntime);
        }

        // Reconnect quickly and briefly: the budget bounds every wait anyway, and the breaker
        // keeps checks off a server that stays down.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.budget))
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(self.budget.max(Duration::from_millis(10)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(self.client, config)?;

        let fallback = match self.policy {
            FailurePolicy::FailClosed => Fallback::Closed,
            FailurePolicy::FailOpen => Fallback::Open,
            FailurePolicy::LocalFallback(quota) => {
                Fallback::Local(Box::new(KeyedRateLimiter::new(quota)))
            }
        };
        Ok(RedisRateLimiter {
            inner: Arc::new(Inner {
                conn,
                script: Script::new(script::SOURCE),
                quota: self.quota,
                units,
                prefix: self.prefix,
                budget: self.budget,
                breaker: Breaker::new(self.cooldown),
                fallback,
                leases: self.lease.map(|(size, ttl)| Leases::new(size, ttl)),
                backend_errors: AtomicU64::new(0),
                fallback_decisions: AtomicU64::new(0),
            }),
        })
    }
}

impl RedisRateLimiter {
    /// Settings for a limiter with `quota` on the Redis server that `client` names.
    pub fn builder(client: redis::Client, quota: Quota) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder {
            client,
            quota,
            prefix: "hotlimit".to_owned(),
            policy: FailurePolicy::FailClosed,
            budget: Duration::from_millis(50),
            cooldown: Duration::from_secs(1),
            lease: None,
        }
    }

    /// Takes one token from `key`'s bucket if it has one.
    ///
    /// # Errors
    ///
    /// As [`check_key_n`](RedisRateLimiter::check_key_n).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the token taken in Redis if the script already ran; it
    /// never admits more than the quota.
    pub async fn check_key(&self, key: &str) -> Result<Allowed, RedisCheckError> {
        self.check_key_n(key, 1).await
    }

    /// Takes `n` tokens from `key`'s bucket if it holds `n`; takes none otherwise.
    ///
    /// `n == 0` takes nothing and reports the bucket as it is.
    ///
    /// # Errors
    ///
    /// [`RedisCheckError::InsufficientCapacity`] when `n` exceeds the burst, before any network
    /// call; [`RedisCheckError::Denied`] when there are fewer than `n` tokens now;
    /// [`RedisCheckError::Unavailable`] when Redis cannot decide and the policy is
    /// [`FailurePolicy::FailClosed`].
    pub async fn check_key_n(&self, key: &str, n: u64) -> Result<Allowed, RedisCheckError> {
        let inner = &*self.inner;
        if n > inner.quota.burst() {
            return Err(InsufficientCapacity {
                cost: n,
                capacity: inner.quota.burst(),
            }
            .into());
        }

        // Lease mode: spend from this node's lease, or refill it on the way.
        if let (Some(leases), true) = (&inner.leases, n > 0) {
            match leases.take(key, n) {
                Take::Spent => return Ok(Allowed::new(Source::Lease, None)),
                Take::Refill(refill) => {
                    let reply = inner.ask(key, n, leases.size().max(n)).await;
                    if let Ok(Reply::Allowed { granted, .. }) = reply {
                        refill.finish(granted, n);
                    }
                    return inner.settle(key, n, reply);
                }
                Take::Plain => {}
            }
        }

        let reply = inner.ask(key, n, n).await;
        inner.settle(key, n, reply)
    }

    /// The quota every key follows.
    pub fn quota(&self) -> Quota {
        self.inner.quota
    }

    /// The Redis key that holds `key`'s bucket: `{prefix:key}`.
    pub fn redis_key(&self, key: &str) -> String {
        self.inner.redis_key(key)
    }

    /// Calls to Redis that failed: errors, timeouts and replies the script cannot have given.
    pub fn backend_errors(&self) -> u64 {
        self.inner.backend_errors.load(Relaxed)
    }

    /// Requests the [`FailurePolicy`] answered, whether after a failed call or straight away
    /// while the breaker was open.
    pub fn fallback_decisions(&self) -> u64 {
        self.inner.fallback_decisions.load(Relaxed)
    }

    /// Whether the breaker is open: checks skip Redis until a probe succeeds.
    pub fn breaker_open(&self) -> bool {
        self.inner.breaker.is_open()
    }
}

impl Inner {
    fn redis_key(&self, key: &str) -> String {
        format!("{{{}:{}}}", self.prefix, key)
    }

    /// Asks Redis, through the breaker, for `cost` tokens and up to `want`.
    async fn ask(&self, key: &str, cost: u64, want: u64) -> Result<Reply, BackendError> {
        let probe = match self.breaker.enter() {
            Pass::Skip => return Err(BackendError::BreakerOpen),
            Pass::Call => None,
            Pass::Probe(probe) => Some(probe),
        };

        let reply = self.call(key, cost, want).await;

        // Only an unreachable server trips the breaker; a server that answers, even with an
        // error about one key, is up.
        let reachable = match &reply {
            Ok(_) => true,
            Err(error) => !error.is_transport(),
        };
        match (probe, reachable) {
            (Some(probe), true) => probe.success(),
            (Some(probe), false) => probe.failure(),
            (None, true) if self.breaker.is_open() => self.breaker.success(),
            (None, true) => {}
            (None, false) => self.breaker.failure(),
        }
        reply
    }

    /// One script run, within the budget.
    async fn call(&self, key: &str, cost: u64, want: u64) -> Result<Reply, BackendError> {
        let u = self.units;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.redis_key(key))
            .arg(u.per_us)
            .arg(u.per_token)
            .arg(u.tau)
            .arg(u.cap_us)
            .arg(cost)
            .arg(want);

        let mut conn = self.conn.clone();
        let value = tokio::time::timeout(self.budget, invocation.invoke_async::<Value>(&mut conn))
            .await
            .map_err(|_| BackendError::Timeout(self.budget))??;
        script::parse(&value, u, cost, want).map_err(BackendError::BadReply)
    }

    /// Turns Redis's reply, or its failure, into the answer.
    fn settle(
        &self,
        key: &str,
        n: u64,
        reply: Result<Reply, BackendError>,
    ) -> Result<Allowed, RedisCheckError> {
        let error = match reply {
            Ok(Reply::Allowed { d, .. }) => {
                let snapshot = self.units.snapshot(self.quota, d);
                return Ok(Allowed::new(Source::Redis, Some(snapshot)));
            }
            Ok(Reply::Denied { d }) => {
                return Err(self.units.denied(self.quota, d, n).into());
            }
            Err(error) => error,
        };

        // Redis could not decide: the policy does.
        if !matches!(error, BackendError::BreakerOpen) {
            self.backend_errors.fetch_add(1, Relaxed);
        }
        self.fallback_decisions.fetch_add(1, Relaxed);
        match &self.fallback {
            Fallback::Closed => Err(RedisCheckError::Unavailable(error)),
            Fallback::Open => Ok(Allowed::new(Source::FailOpen, None)),
            Fallback::Local(local) => match local.check_key_n(key, n) {
                Ok(snapshot) => Ok(Allowed::new(Source::LocalFallback, Some(snapshot))),
                Err(crate::CheckError::Denied(denied)) => Err(denied.into()),
                Err(crate::CheckError::InsufficientCapacity(e)) => Err(e.into()),
                // The fallback limiter has no key cap; should one refuse, Redis's error stands.
                Err(_) => Err(RedisCheckError::Unavailable(error)),
            },
        }
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("quota", &self.inner.quota)
            .field("prefix", &self.inner.prefix)
            .field("budget", &self.inner.budget)
            .field("breaker_open", &self.inner.breaker.is_open())
            .finish_non_exhaustive()
    }
}
