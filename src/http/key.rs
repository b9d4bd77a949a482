//! Which bucket a request draws from: the `X-API-Key` header.

use http::header::{HeaderMap, HeaderName};

/// The header that carries the client's API key.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The longest API key accepted, in bytes; a longer one is refused with `401`.
///
/// Every key the layer accepts gets a bucket, so the cap bounds what one request can make the
/// limiter store.
pub const MAX_KEY_LEN: usize = 256;

/// Why a request has no usable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// No header, or an empty one.
    Missing,
    /// Longer than [`MAX_KEY_LEN`].
    TooLong,
    /// Bytes that are not UTF-8.
    NotUtf8,
}

impl KeyError {
    /// A sentence for the client.
    pub(crate) fn message(self) -> &'static str {
        match self {
            KeyError::Missing => "send your API key in the X-API-Key header",
            KeyError::TooLong => "the X-API-Key header is longer than the 256 bytes allowed",
            KeyError::NotUtf8 => "the X-API-Key header is not valid UTF-8",
        }
    }
}

/// The request's API key, borrowed from its headers (the first `X-API-Key` if there are many).
pub(crate) fn api_key(headers: &HeaderMap) -> Result<&str, KeyError> {
    let bytes = headers
        .get(API_KEY_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();

    // Check the cheap things first; the length also bounds the UTF-8 check.
    if bytes.is_empty() {
        return Err(KeyError::Missing);
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong);
    }

    std::str::from_utf8(bytes).map_err(|_| KeyError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key_of(value: &[u8]) -> Result<String, KeyError> {
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, HeaderValue::from_bytes(value).unwrap());
        api_key(&headers).map(str::to_owned)
    }

    #[test]
    fn reads_the_key() {
        assert_eq!(key_of(b"abc").as_deref(), Ok("abc"));
        assert_eq!(key_of("clé".as_bytes()).as_deref(), Ok("clé"));
        assert_eq!(
            key_of(&[b'k'; MAX_KEY_LEN]).map(|k| k.len()),
            Ok(MAX_KEY_LEN)
        );
    }

    #[test]
    fn refuses_unusable_keys() {
        assert_eq!(api_key(&HeaderMap::new()), Err(KeyError::Missing));
        assert_eq!(key_of(b""), Err(KeyError::Missing));
        assert_eq!(key_of(&[b'k'; MAX_KEY_LEN + 1]), Err(KeyError::TooLong));
        assert_eq!(key_of(b"\xff\xfe"), Err(KeyError::NotUtf8));
    }
}
