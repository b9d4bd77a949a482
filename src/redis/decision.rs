//! What a distributed check answers, and what can go wrong on the way.

use core::time::Duration;

use crate::outcome::{Denied, InsufficientCapacity, Snapshot};

/// Who decided to let a request through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The Redis script, against the shared bucket.
    Redis,
    /// This node's lease: tokens that Redis granted earlier, spent without a round trip.
    Lease,
    /// Redis could not be reached and the policy is [`FailOpen`](super::FailurePolicy::FailOpen).
    FailOpen,
    /// Redis could not be reached and this node's own bucket admitted the request
    /// ([`LocalFallback`](super::FailurePolicy::LocalFallback)).
    LocalFallback,
}

/// An admitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    source: Source,
    snapshot: Option<Snapshot>,
}

impl Allowed {
    pub(crate) fn new(source: Source, snapshot: Option<Snapshot>) -> Self {
        Self { source, snapshot }
    }

    /// Who admitted the request.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The bucket as the request left it, when a bucket was asked.
    ///
    /// From Redis: the shared bucket, with tokens other nodes hold in leases already taken out.
    /// From the local fallback: this node's bucket. `None` for a lease spend (no round trip, so
    /// no fresh view of the shared bucket) and for [`Source::FailOpen`].
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
}

/// Why a distributed check refused a request.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisCheckError {
    /// Not enough tokens now; see [`Denied::retry_after`]. From the shared bucket in Redis, or
    /// from this node's bucket under [`LocalFallback`](super::FailurePolicy::LocalFallback)
    /// while Redis cannot be reached.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// More than the capacity: never possible, and refused before any network call.
    #[error(transparent)]
    InsufficientCapacity(#[from] InsufficientCapacity),
    /// Redis could not decide and the policy is
    /// [`FailClosed`](super::FailurePolicy::FailClosed).
    #[error("rate limit backend unavailable: {0}")]
    Unavailable(BackendError),
}

impl RedisCheckError {
    /// The denial, when the request may pass later.
    pub fn as_denied(&self) -> Option<&Denied> {
        match self {
            RedisCheckError::Denied(denied) => Some(denied),
            _ => None,
        }
    }
}

/// Why Redis gave no decision.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No answer within the per-call budget.
    #[error("no answer from Redis within {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open after recent failures: Redis was not asked.
    #[error("Redis is marked down; waiting for the cool-down before trying again")]
    BreakerOpen,
    /// The client or the server reported an error (connection refused or closed, a key of the
    /// wrong type, a script error).
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// The server answered something the script cannot have answered.
    #[error("unexpected reply from Redis: {0}")]
    BadReply(String),
}

impl BackendError {
    /// Whether the error says Redis is unreachable (and so trips the breaker), rather than that
    /// one request or one key went wrong on a server that answers.
    pub(crate) fn is_transport(&self) -> bool {
        match self {
            BackendError::Timeout(_) | BackendError::BreakerOpen => true,
            BackendError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
            }
            BackendError::BadReply(_) => false,
        }
    }
}

/// Why a [`RedisRateLimiter`](super::RedisRateLimiter) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The quota's arithmetic does not fit the script's exact range (integers below `2^53`);
    /// see the [module notes](super#precision).
    #[error("the quota {0} is too fine for exact arithmetic in the Redis script")]
    QuotaTooFine(crate::Quota),
    /// A lease of zero tokens, or of more than the burst.
    #[error("a lease of {lease} tokens does not fit a burst of {burst}")]
    BadLease {
        /// The lease asked for.
        lease: u64,
        /// The quota's burst.
        burst: u64,
    },
    /// A per-call budget of zero.
    #[error("the per-call budget is zero")]
    ZeroBudget,
    /// Not called from inside a tokio runtime.
    #[error("a RedisRateLimiter must be built inside a tokio runtime")]
    NoRuntime,
    /// The Redis client refused the configuration.
    #[error("Redis client: {0}")]
    Redis(#[from] redis::RedisError),
}
