//! The rate-limit header fields, in the syntax of the IETF draft
//! `draft-ietf-httpapi-ratelimit-headers-11`, plus the legacy `X-RateLimit-*` pair.
//!
//! ```text
//! RateLimit-Policy: "default";q=100;w=60
//! RateLimit: "default";r=42;t=35
//! X-RateLimit-Limit: 100
//! X-RateLimit-Remaining: 42
//! Retry-After: 1
//! ```
//!
//! Both draft fields are structured-field lists of one item: the policy name as a string, with
//! integer parameters. Every count of seconds is rounded up, so a client that waits as long as
//! a header says never comes back early.

use core::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::{Denied, Quota, Snapshot};

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

/// The state of one key's bucket that the headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Whole tokens left.
    pub(crate) remaining: u64,
    /// The time until the bucket is full again.
    pub(crate) reset_after: Duration,
}

impl From<&Snapshot> for Usage {
    fn from(snapshot: &Snapshot) -> Self {
        Usage {
            remaining: snapshot.remaining(),
            reset_after: snapshot.reset_after(),
        }
    }
}

impl From<&Denied> for Usage {
    fn from(denied: &Denied) -> Self {
        Usage {
            remaining: denied.remaining(),
            reset_after: denied.reset_after(),
        }
    }
}

/// A named quota, with the header values that never change formatted once.
#[derive(Debug)]
pub(crate) struct Policy {
    /// The name as a structured-field string, quotes included.
    name: String,
    quota: Quota,
    /// `RateLimit-Policy`.
    policy: HeaderValue,
    /// `X-RateLimit-Limit`.
    limit: HeaderValue,
}

impl Policy {
    /// The policy `name` for `quota`.
    ///
    /// # Panics
    ///
    /// If `name` holds a character outside printable ASCII, which a structured-field string
    /// cannot carry.
    pub(crate) fn new(name: &str, quota: Quota) -> Self {
        let name = sf_string(name).unwrap_or_else(|| {
            panic!("a rate-limit policy name must be printable ASCII, got {name:?}")
        });
        let policy = format!("{name};q={};w={}", quota.count(), ceil_secs(quota.period()));

        Policy {
            policy: header_value(policy),
            limit: HeaderValue::from(quota.count()),
            name,
            quota,
        }
    }

    pub(crate) fn quota(&self) -> Quota {
        self.quota
    }

    /// Adds the policy's fields to `headers`, and the bucket's state when there is a bucket.
    ///
    /// The draft fields are lists, so they are appended to any an inner service set; the
    /// legacy fields are replaced.
    pub(crate) fn write(&self, headers: &mut HeaderMap, usage: Option<Usage>) {
        headers.append(RATELIMIT_POLICY, self.policy.clone());
        headers.insert(X_RATELIMIT_LIMIT, self.limit.clone());

        if let Some(usage) = usage {
            let t = ceil_secs(usage.reset_after);
            let limit = format!("{};r={};t={t}", self.name, usage.remaining);
            headers.append(RATELIMIT, header_value(limit));
            headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(usage.remaining));
        }
    }
}

/// Sets `Retry-After` to `wait` in whole seconds.
pub(crate) fn write_retry_after(headers: &mut HeaderMap, wait: Duration) {
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(wait)));
}

/// Whole seconds, rounded up: 0.3 s is 1, 1.0 s is 1, 1.2 s is 2.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// The wait to announce in `Retry-After`: rounded up, and at least one second, since a client
/// told 0 would retry at once.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

/// `text` as a structured-field string (RFC 8941, section 3.3.3), or `None` if it holds a
/// character such a string cannot carry.
fn sf_string(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if !(' '..='~').contains(&c) {
            return None;
        }
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A header value from text made of a checked policy name, punctuation and digits.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("policy names are checked to be printable ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(ms(300)), 1);
        assert_eq!(ceil_secs(ms(1000)), 1);
        assert_eq!(ceil_secs(ms(1200)), 2);
        assert_eq!(ceil_secs(Duration::from_nanos(60_000_000_001)), 61);
        assert_eq!(ceil_secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn retry_after_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_nanos(1)), 1);
        assert_eq!(retry_after_secs(ms(300)), 1);
        assert_eq!(retry_after_secs(ms(1000)), 1);
        assert_eq!(retry_after_secs(ms(1200)), 2);
    }

    #[test]
    fn formats_the_draft_fields() {
        let policy = Policy::new("default", Quota::per_minute(100).unwrap());
        let mut headers = HeaderMap::new();
        let usage = Usage {
            remaining: 42,
            reset_after: ms(34_200),
        };
        policy.write(&mut headers, Some(usage));

        assert_eq!(headers["ratelimit-policy"], "\"default\";q=100;w=60");
        assert_eq!(headers["ratelimit"], "\"default\";r=42;t=35");
        assert_eq!(headers["x-ratelimit-limit"], "100");
        assert_eq!(headers["x-ratelimit-remaining"], "42");
    }

    #[test]
    fn windows_round_up_and_are_never_zero() {
        let q = |s: &str| s.parse::<Quota>().unwrap();
        let w = |quota| Policy::new("p", quota).policy;
        assert_eq!(w(q("5/1500ms")), "\"p\";q=5;w=2");
        assert_eq!(w(q("1/1ms")), "\"p\";q=1;w=1");
        assert_eq!(w(q("7/d")), "\"p\";q=7;w=86400");
    }

    #[test]
    fn without_a_bucket_only_the_policy_is_written() {
        let policy = Policy::new("default", Quota::per_second(3).unwrap());
        let mut headers = HeaderMap::new();
        policy.write(&mut headers, None);

        assert_eq!(headers.len(), 2);
        assert_eq!(headers["ratelimit-policy"], "\"default\";q=3;w=1");
        assert_eq!(headers["x-ratelimit-limit"], "3");
    }

    #[test]
    fn policy_names_are_escaped() {
        assert_eq!(sf_string("a b").as_deref(), Some("\"a b\""));
        assert_eq!(
            sf_string(r#"say "hi"\"#).as_deref(),
            Some(r#""say \"hi\"\\""#)
        );
        assert_eq!(sf_string("tab\t"), None);
        assert_eq!(sf_string("é"), None);
    }

    #[test]
    #[should_panic(expected = "printable ASCII")]
    fn rejects_names_a_header_cannot_carry() {
        Policy::new("line\nbreak", Quota::per_second(1).unwrap());
    }
}
