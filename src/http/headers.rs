//! The rate-limit header fields, in the syntax of the IETF draft
//! `draft-ietf-httpapi-ratelimit-headers-11`, plus the legacy `X-RateLimit-*` fields.
//!
//! ```text
//! RateLimit-Policy: "api.0";q=10;w=1, "api.1";q=1000;w=3600
//! RateLimit: "api.0";r=9;t=1, "api.1";r=999;t=4
//! X-RateLimit-Limit: 10
//! X-RateLimit-Remaining: 9
//! X-RateLimit-Reset: 1
//! ```
//!
//! Both draft fields are structured-field lists with one item per quota: the quota's name as a
//! string, with integer parameters. Every count of seconds is rounded up, so a client that
//! waits as long as a header says never comes back early.

use bytes::Bytes;
use core::hash::BuildHasher;
use core::time::Duration;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::policy::Config;
use super::tiers::{Report, Tier, Usage};
use super::values::{decimal_len, number, push_number};

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The field that marks a request shadow mode would have refused.
pub const RATELIMIT_SHADOW: HeaderName = HeaderName::from_static("ratelimit-shadow");

/// The rate-limit fields of one response, formatted before the inner service runs.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// The tier's fixed values are borrowed for the process: copying them is copying a pointer.
    policy: Option<&'static HeaderValue>,
    ratelimit: Option<HeaderValue>,
    limit: Option<&'static HeaderValue>,
    /// Numbers are kept as numbers until written, and which of them to write in `flags`
    /// rather than in an `Option` each: the response future carries these fields.
    remaining: u64,
    reset: u64,
    retry_after: u64,
    flags: u8,
}

/// `X-RateLimit-Remaining` and `X-RateLimit-Reset` are set.
const USAGE: u8 = 1;
/// `Retry-After` is set.
const RETRY: u8 = 2;
/// The request is marked with `RateLimit-Shadow`.
const SHADOW: u8 = 4;

impl Fields {
    /// The fields for `tier` of `config`, with the buckets' state when there is a `report`.
    ///
    /// The legacy fields report quota `focus`, or the one with the fewest tokens left.
    #[inline]
    pub(crate) fn new<C>(
        config: &Config,
        tier: &Tier<C>,
        report: Option<&Report>,
        focus: Option<usize>,
        key: &[u8],
    ) -> Self {
        let mut fields = Fields::default();
        if config.draft_headers {
            fields.policy = Some(tier.policy);
        }
        let Some(report) = report else {
            if config.legacy_headers {
                fields.limit = Some(tier.limits[focus.unwrap_or(0)]);
            }
            return fields;
        };
        let usages = report.usages();

        if config.draft_headers {
            fields.ratelimit = Some(ratelimit(&tier.sf_names, usages, config, key));
        }
        if config.legacy_headers {
            let least = (0..usages.len()).min_by_key(|&i| usages[i].remaining);
            let i = focus.or(least).unwrap_or(0);
            fields.limit = Some(tier.limits[i]);
            fields.remaining = usages[i].remaining;
            fields.reset = usages[i].reset;
            fields.flags |= USAGE;
        }
        fields
    }

    /// Adds `Retry-After: wait` (whole seconds, rounded up, at least 1).
    pub(crate) fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = retry_after_secs(wait);
        self.flags |= RETRY;
        self
    }

    /// Marks a request that shadow mode let through.
    pub(crate) fn shadow_denied(mut self) -> Self {
        self.flags |= SHADOW;
        self
    }

    /// Adds the fields to `headers`. The draft fields are lists, so they are appended to any
    /// an inner service set; the others are replaced.
    pub(crate) fn write(self, headers: &mut HeaderMap) {
        // One reservation rather than a regrowth per field, and none for no fields.
        let fixed = [
            self.policy.is_some(),
            self.ratelimit.is_some(),
            self.limit.is_some(),
        ];
        let count = fixed.into_iter().filter(|&present| present).count()
            + 2 * usize::from(self.flags & USAGE != 0)
            + (self.flags & (RETRY | SHADOW)).count_ones() as usize;
        if count == 0 {
            return;
        }
        headers.reserve(count);

        if let Some(value) = self.policy {
            headers.append(RATELIMIT_POLICY, value.clone());
        }
        if let Some(value) = self.ratelimit {
            headers.append(RATELIMIT, value);
        }
        if let Some(value) = self.limit {
            headers.insert(X_RATELIMIT_LIMIT, value.clone());
        }
        if self.flags & USAGE != 0 {
            headers.insert(X_RATELIMIT_REMAINING, number(self.remaining));
            headers.insert(X_RATELIMIT_RESET, number(self.reset));
        }
        if self.flags & RETRY != 0 {
            headers.insert(RETRY_AFTER, number(self.retry_after));
        }
        if self.flags & SHADOW != 0 {
            headers.insert(RATELIMIT_SHADOW, HeaderValue::from_static("denied"));
        }
    }
}

pub(crate) use crate::outcome::{ceil_secs, retry_after_secs};

/// The `RateLimit` field: each quota's name with `r` (tokens left) and `t` (seconds until
/// full), and `pk` when the policy sends it.
///
/// Written by hand into a buffer of the exact length, so the value costs one allocation.
fn ratelimit(names: &[String], usages: &[Usage], config: &Config, key: &[u8]) -> HeaderValue {
    let pk = config.partition_key.then(|| partition_key(key));
    let pk_len = pk.as_ref().map_or(0, |pk| ";pk=::".len() + pk.len());
    let len = names
        .iter()
        .zip(usages)
        .map(|(name, usage)| {
            let numbers = decimal_len(usage.remaining) + decimal_len(usage.reset);
            name.len() + ";r=;t=".len() + numbers + pk_len
        })
        .sum::<usize>()
        + ", ".len() * usages.len().saturating_sub(1);

    let mut value = Vec::with_capacity(len);
    for (i, (name, usage)) in names.iter().zip(usages).enumerate() {
        if i > 0 {
            value.extend_from_slice(b", ");
        }
        value.extend_from_slice(name.as_bytes());
        value.extend_from_slice(b";r=");
        push_number(&mut value, usage.remaining);
        value.extend_from_slice(b";t=");
        push_number(&mut value, usage.reset);
        if let Some(pk) = &pk {
            value.extend_from_slice(b";pk=:");
            value.extend_from_slice(pk.as_bytes());
            value.push(b':');
        }
    }
    debug_assert_eq!(value.len(), len);

    // The exact capacity lets the buffer become the value's storage without a copy.
    HeaderValue::from_maybe_shared(Bytes::from(value))
        .expect("names are checked to be printable ASCII")
}

/// `text` as a structured-field string (RFC 8941, section 3.3.3), or `None` if it holds a
/// character such a string cannot carry.
pub(crate) fn sf_string(text: &str) -> Option<String> {
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

/// The partition key: base64 of a fixed 64-bit digest of the key, so it is stable across
/// restarts and never reveals the key.
fn partition_key(key: &[u8]) -> String {
    let digest = foldhash::fast::FixedState::with_seed(0x686f_746c_696d_6974).hash_one(key);
    base64(&digest.to_be_bytes())
}

/// Standard base64 with padding (RFC 4648, section 4), as structured-field byte sequences use.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn base64_matches_the_rfc_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(partition_key(b"k").len(), 12);
        assert_ne!(partition_key(b"k"), partition_key(b"l"));
    }
}
