//! What a check answers when Redis cannot decide.

use crate::Quota;

/// What a check answers when Redis cannot be reached in time, or answers with an error.
///
/// Every such request counts in
/// [`fallback_decisions`](super::RedisRateLimiter::fallback_decisions); each failed call to
/// Redis also counts in [`backend_errors`](super::RedisRateLimiter::backend_errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Refuse: [`RedisCheckError::Unavailable`](super::RedisCheckError::Unavailable). Nothing
    /// passes that Redis did not admit. The default.
    #[default]
    FailClosed,
    /// Admit, with [`Source::FailOpen`](super::Source::FailOpen): the service stays up and
    /// unlimited while Redis is down.
    FailOpen,
    /// Decide with a bucket per key kept on this node alone, with this quota: each node then
    /// admits up to that quota by itself, so `N` nodes admit up to `N` times it in total. The
    /// local buckets start full when the first failure happens and are kept (not reset) across
    /// outages. A cost is checked against the shared quota's burst; one above this quota's
    /// burst but within the shared one's is refused as `InsufficientCapacity` during an outage.
    LocalFallback(Quota),
}
