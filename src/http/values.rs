//! Header values made without a reference count or, for small numbers, an allocation.
//!
//! Every response carries a tier's fixed fields (`RateLimit-Policy`, `X-RateLimit-Limit`) and
//! a few counts. A value built from a `String` shares one reference count among all the
//! responses that clone it, a cache line every request of every thread writes twice; a value
//! built from a `&'static str` is copied as a pointer and dropped for nothing. So the fixed
//! values live for the process, in a set that keeps one copy of each text, and counts below
//! [`SMALL`] come from one static table of their digits.
//!
//! The set is never emptied: it grows by a few dozen bytes for each policy text a process ever
//! builds (a name with its quotas), which is nothing for policies built at start-up and grows
//! with each new text for a process that keeps building policies with new names or quotas.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::HeaderValue;

/// Numbers below this come from [`DIGITS`].
const SMALL: u64 = 10_000;

/// The decimal digits of 0, 1, ..., `SMALL - 1`, one after the other.
static DIGITS: &str = match core::str::from_utf8(&digits()) {
    Ok(text) => text,
    Err(_) => panic!("digits are ASCII"),
};

/// How many digits `n` has, for `n < SMALL`.
const fn width(n: usize) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        _ => 4,
    }
}

/// Where `n`'s digits start in [`DIGITS`]: past every shorter number, then `n`'s rank among
/// those of its width.
const fn offset(n: usize) -> usize {
    match n {
        0..=9 => n,
        10..=99 => 10 + 2 * (n - 10),
        100..=999 => 190 + 3 * (n - 100),
        _ => 2_890 + 4 * (n - 1_000),
    }
}

/// The bytes of [`DIGITS`], computed when the crate is compiled.
const fn digits() -> [u8; offset(SMALL as usize)] {
    let mut out = [0; offset(SMALL as usize)];
    let mut n = 0;
    while n < SMALL as usize {
        let (at, mut rest, mut i) = (offset(n), n, width(n));
        while i > 0 {
            i -= 1;
            out[at + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        n += 1;
    }
    out
}

/// `n` in decimal, borrowed from the static table when it is small.
fn small_digits(n: u64) -> Option<&'static str> {
    if n >= SMALL {
        return None;
    }
    let n = n as usize;
    Some(&DIGITS[offset(n)..offset(n) + width(n)])
}

/// `n` as a header value; below [`SMALL`] without an allocation.
pub(crate) fn number(n: u64) -> HeaderValue {
    match small_digits(n) {
        Some(text) => HeaderValue::from_static(text),
        None => HeaderValue::from(n),
    }
}

/// How many digits `n` has in decimal.
pub(crate) fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Appends `n` in decimal to `out`.
pub(crate) fn push_number(out: &mut Vec<u8>, n: u64) {
    if let Some(text) = small_digits(n) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let mut buf = [0u8; 20];
    let (mut i, mut rest) = (buf.len(), n);
    while rest > 0 || i == buf.len() {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// A header value of `text` that lives for the process: one copy per distinct text, however
/// many policies use it, so the set grows only with the distinct policies a process builds.
///
/// `None` unless `text` is printable ASCII, which every fixed value the layer makes is.
pub(crate) fn fixed(text: &str) -> Option<&'static HeaderValue> {
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return None;
    }

    static VALUES: OnceLock<Mutex<HashMap<&'static str, &'static HeaderValue>>> = OnceLock::new();
    let values = VALUES.get_or_init(Default::default);
    // A panic elsewhere while the lock was held cannot leave the map half-changed: an entry is
    // inserted whole or not at all.
    let mut values = values.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&value) = values.get(text) {
        return Some(value);
    }
    let text: &'static str = Box::leak(text.into());
    let value: &'static HeaderValue = Box::leak(Box::new(HeaderValue::from_static(text)));
    values.insert(text, value);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers_come_from_the_table() {
        for n in [0, 1, 9, 10, 42, 99, 100, 999, 1_000, 3_600, 9_999] {
            assert_eq!(number(n).to_str().unwrap(), n.to_string());
        }
        for n in 0..SMALL {
            assert_eq!(small_digits(n), Some(n.to_string().as_str()));
        }
        assert_eq!(small_digits(SMALL), None);
    }

    #[test]
    fn large_numbers_are_formatted() {
        for n in [SMALL, 123_456, u64::MAX] {
            assert_eq!(number(n).to_str().unwrap(), n.to_string());
            let mut out = b"x".to_vec();
            push_number(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
        let mut out = Vec::new();
        push_number(&mut out, 0);
        assert_eq!(out, b"0");
        for n in [0, 9, 10, 99_999, 100_000, u64::MAX] {
            assert_eq!(decimal_len(n), n.to_string().len());
        }
    }

    #[test]
    fn fixed_values_are_kept_once() {
        let a = fixed("\"api\";q=10;w=1").unwrap();
        let b = fixed(&String::from("\"api\";q=10;w=1")).unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a, b));
        assert_eq!(a.clone().as_bytes().as_ptr(), a.as_bytes().as_ptr());
        assert!(fixed("bad\nvalue").is_none());
        assert!(fixed("caf\u{e9}").is_none());
    }
}
