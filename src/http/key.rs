//! Which bucket a request draws from: [`KeyExtractor`] turns a request into a [`Key`].

use core::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName};
use http::{Extensions, Method, Request, Uri};

use super::forwarded::TrustedProxies;
use super::net::{canonical, mask};

/// The header that carries the client's API key.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The longest key accepted, in bytes; a longer one is refused as if it were missing.
///
/// Every key the layer accepts gets a bucket, so the cap bounds what one request can make the
/// limiter store.
pub const MAX_KEY_LEN: usize = 256;

/// The IPv6 prefix that address-based keys group clients by unless told otherwise: one `/64`
/// is usually one subscriber, who can pick any of its 2^64 addresses.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// What a key extractor, a cost function or a tier selector sees of a request: everything but
/// its body.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target.
    pub uri: &'a Uri,
    /// The header fields.
    pub headers: &'a HeaderMap,
    /// The extensions, where servers put the peer's address.
    pub extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn new<B>(request: &'a Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }
}

/// The identity of a client: bytes naming its bucket, borrowed from the request when possible.
///
/// # Examples
///
/// ```
/// use hotlimit::http::Key;
///
/// assert_eq!(Key::from("alice").as_bytes(), b"alice");
/// assert_eq!(Key::from(String::from("bob")).as_bytes(), b"bob");
/// assert_eq!(Key::from(std::net::Ipv4Addr::new(192, 0, 2, 1)).as_bytes(), [192, 0, 2, 1]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key<'a>(Repr<'a>);

#[derive(Clone, PartialEq, Eq)]
enum Repr<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    /// An address's octets, without an allocation.
    Ip {
        octets: [u8; 16],
        len: u8,
    },
}

impl<'a> Key<'a> {
    /// A key borrowing `bytes`.
    pub fn borrowed(bytes: &'a [u8]) -> Self {
        Key(Repr::Borrowed(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Borrowed(bytes) => bytes,
            Repr::Owned(bytes) => bytes,
            Repr::Ip { octets, len } => &octets[..usize::from(*len)],
        }
    }

    /// An address key as one number: IPv6 as it is, IPv4 as the IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`), which no IPv6 key is, since the extractors turn such addresses
    /// into IPv4 ones first. `None` for a key that is not an address.
    #[inline]
    pub(crate) fn addr(&self) -> Option<u128> {
        match &self.0 {
            Repr::Ip { octets, len: 4 } => {
                let v4 = [octets[0], octets[1], octets[2], octets[3]];
                Some(u128::from(std::net::Ipv4Addr::from(v4).to_ipv6_mapped()))
            }
            Repr::Ip { octets, len: 16 } => Some(u128::from_be_bytes(*octets)),
            _ => None,
        }
    }
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(text: &'a str) -> Self {
        Key::borrowed(text.as_bytes())
    }
}

impl From<String> for Key<'_> {
    fn from(text: String) -> Self {
        Key(Repr::Owned(text.into_bytes()))
    }
}

impl From<Vec<u8>> for Key<'_> {
    fn from(bytes: Vec<u8>) -> Self {
        Key(Repr::Owned(bytes))
    }
}

impl From<IpAddr> for Key<'_> {
    /// The address's octets: 4 for IPv4, 16 for IPv6, so the two never collide.
    #[inline]
    fn from(ip: IpAddr) -> Self {
        let mut octets = [0; 16];
        let len = match ip {
            IpAddr::V4(v4) => {
                octets[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddr::V6(v6) => {
                octets = v6.octets();
                16
            }
        };
        Key(Repr::Ip { octets, len })
    }
}

impl From<std::net::Ipv4Addr> for Key<'_> {
    fn from(ip: std::net::Ipv4Addr) -> Self {
        Key::from(IpAddr::V4(ip))
    }
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys may be secrets (API keys): show their length only.
        f.debug_struct("Key")
            .field("len", &self.as_bytes().len())
            .finish()
    }
}

/// Why a request has no usable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// No header, or an empty one; or a custom extractor found nothing.
    Missing,
    /// Longer than [`MAX_KEY_LEN`].
    TooLong,
    /// A header key whose bytes are not UTF-8.
    NotUtf8,
    /// The server put no peer address in the request's extensions.
    NoPeerAddress,
}

/// A custom key function, as stored.
type KeyFn = dyn for<'a> Fn(&RequestHead<'a>) -> Option<Key<'a>> + Send + Sync;
/// A peer-address accessor, as stored.
type PeerFn = dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync;

/// How the layer finds a request's key.
///
/// | constructor                          | key                                                |
/// |--------------------------------------|----------------------------------------------------|
/// | [`api_key`](Self::api_key) (default) | the `X-API-Key` header                             |
/// | [`header`](Self::header)             | any header, as UTF-8 text                          |
/// | [`peer_ip`](Self::peer_ip)           | the connection's peer address                      |
/// | [`client_ip`](Self::client_ip)       | the client's address behind trusted proxies        |
/// | [`custom`](Self::custom)             | whatever a closure says                            |
///
/// Address keys group IPv6 clients by their `/64` ([`ipv6_prefix`](Self::ipv6_prefix)), and
/// a policy keyed by address keeps each address as a 128-bit number rather than as bytes: about
/// 67 resident bytes a client against 99 for a 16-byte string key (1M keys, `cargo bench
/// --bench memory`).
///
/// A request without a usable key never reaches a bucket: the layer answers it itself (`401`
/// for a header key that is missing or unusable, `400` otherwise; see
/// [`PolicyBuilder::key_error_status`](super::PolicyBuilder::key_error_status)).
///
/// # The peer address
///
/// [`peer_ip`](Self::peer_ip) looks in the request's extensions for a [`SocketAddr`], and with
/// the `axum` cargo feature (on by default) for axum's `ConnectInfo<SocketAddr>`, which
/// `Router::into_make_service_with_connect_info::<SocketAddr>()` adds. Other servers (tonic's
/// `TcpConnectInfo`, hyper's own loops) name it with [`peer_ip_with`](Self::peer_ip_with).
///
/// # Examples
///
/// ```
/// use hotlimit::http::{Key, KeyExtractor, TrustedProxies};
///
/// let by_user = KeyExtractor::header("x-user-id".parse()?);
/// let by_ip = KeyExtractor::peer_ip().ipv6_prefix(56);
/// let behind_lb = KeyExtractor::client_ip(TrustedProxies::networks(["10.0.0.0/8".parse()?]));
/// let by_tenant = KeyExtractor::custom(|head| {
///     head.uri.path().strip_prefix("/tenants/")?.split('/').next().map(Key::from)
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct KeyExtractor(Kind);

#[derive(Clone)]
enum Kind {
    Header(HeaderName),
    Ip {
        peer: Option<Arc<PeerFn>>,
        proxies: Option<TrustedProxies>,
        v4_prefix: u8,
        v6_prefix: u8,
    },
    Custom(Arc<KeyFn>),
}

impl KeyExtractor {
    /// The `X-API-Key` header ([`API_KEY_HEADER`]).
    pub fn api_key() -> Self {
        Self::header(API_KEY_HEADER)
    }

    /// The value of header `name`, which must be UTF-8, non-empty and at most [`MAX_KEY_LEN`]
    /// bytes; the first one if the request repeats it.
    pub fn header(name: HeaderName) -> Self {
        KeyExtractor(Kind::Header(name))
    }

    /// The address of the connection's peer (see [the peer address](#the-peer-address)).
    pub fn peer_ip() -> Self {
        Self::ip(None, None)
    }

    /// The peer address, read from the request's extensions by `peer`.
    ///
    /// ```
    /// use hotlimit::http::KeyExtractor;
    /// use std::net::{IpAddr, SocketAddr};
    ///
    /// #[derive(Clone)]
    /// struct RemoteAddr(SocketAddr);
    ///
    /// let by_peer = KeyExtractor::peer_ip_with(|ext| ext.get::<RemoteAddr>().map(|a| a.0.ip()));
    /// ```
    pub fn peer_ip_with<F>(peer: F) -> Self
    where
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        Self::ip(Some(Arc::new(peer)), None)
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
    /// address in the forwarding header that no trusted proxy wrote.
    pub fn client_ip(proxies: TrustedProxies) -> Self {
        Self::ip(None, Some(proxies))
    }

    /// Whatever `key` answers; `None` refuses the request as having no key.
    ///
    /// Keys longer than [`MAX_KEY_LEN`] bytes are refused, and empty ones count as missing.
    pub fn custom<F>(key: F) -> Self
    where
        F: for<'a> Fn(&RequestHead<'a>) -> Option<Key<'a>> + Send + Sync + 'static,
    {
        KeyExtractor(Kind::Custom(Arc::new(key)))
    }

    /// Groups IPv6 clients by their first `bits` bits ([`DEFAULT_IPV6_PREFIX`] unless set;
    /// `128` keys each address apart). Only address keys are grouped.
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        if let Kind::Ip { v6_prefix, .. } = &mut self.0 {
            *v6_prefix = bits.min(128);
        }
        self
    }

    /// Groups IPv4 clients by their first `bits` bits (32, each address apart, unless set).
    pub fn ipv4_prefix(mut self, bits: u8) -> Self {
        if let Kind::Ip { v4_prefix, .. } = &mut self.0 {
            *v4_prefix = bits.min(32);
        }
        self
    }

    /// Also accepts a peer accessor for [`client_ip`](Self::client_ip), like
    /// [`peer_ip_with`](Self::peer_ip_with).
    pub fn with_peer<F>(mut self, peer: F) -> Self
    where
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        if let Kind::Ip { peer: slot, .. } = &mut self.0 {
            *slot = Some(Arc::new(peer));
        }
        self
    }

    fn ip(peer: Option<Arc<PeerFn>>, proxies: Option<TrustedProxies>) -> Self {
        KeyExtractor(Kind::Ip {
            peer,
            proxies,
            v4_prefix: 32,
            v6_prefix: DEFAULT_IPV6_PREFIX,
        })
    }

    /// Whether every key this extractor makes is a client address.
    pub(crate) fn is_address(&self) -> bool {
        matches!(self.0, Kind::Ip { .. })
    }

    /// Whether a missing key is a missing credential (a header), for the status it gets.
    pub(crate) fn is_header(&self) -> bool {
        matches!(self.0, Kind::Header(_))
    }

    /// The header this extractor reads, if it reads one.
    pub(crate) fn header_name(&self) -> Option<&HeaderName> {
        match &self.0 {
            Kind::Header(name) => Some(name),
            _ => None,
        }
    }

    /// The request's key.
    #[inline]
    pub(crate) fn extract<'a>(&self, head: &RequestHead<'a>) -> Result<Key<'a>, KeyError> {
        let key = match &self.0 {
            Kind::Header(name) => return header_key(head.headers, name),
            Kind::Ip {
                peer,
                proxies,
                v4_prefix,
                v6_prefix,
            } => {
                let peer = match peer {
                    Some(peer) => peer(head.extensions),
                    None => default_peer(head.extensions),
                };
                let peer = canonical(peer.ok_or(KeyError::NoPeerAddress)?);
                let client = match proxies {
                    Some(proxies) => proxies.client(peer, head.headers),
                    None => peer,
                };
                let prefix = if client.is_ipv4() {
                    v4_prefix
                } else {
                    v6_prefix
                };
                return Ok(Key::from(mask(client, *prefix)));
            }
            Kind::Custom(key) => key(head).ok_or(KeyError::Missing)?,
        };
        check_len(key.as_bytes())?;
        Ok(key)
    }
}

impl Default for KeyExtractor {
    fn default() -> Self {
        Self::api_key()
    }
}

impl fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Header(name) => f.debug_tuple("Header").field(name).finish(),
            Kind::Ip {
                proxies,
                v4_prefix,
                v6_prefix,
                ..
            } => f
                .debug_struct("Ip")
                .field("proxies", proxies)
                .field("v4_prefix", v4_prefix)
                .field("v6_prefix", v6_prefix)
                .finish_non_exhaustive(),
            Kind::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The peer address servers put in the extensions.
#[inline]
fn default_peer(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The first `name` header, as a key.
#[inline]
fn header_key<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Key<'a>, KeyError> {
    let bytes = headers
        .get(name)
        .map(|value| value.as_bytes())
        .unwrap_or_default();

    // Check the cheap things first; the length also bounds the UTF-8 check.
    check_len(bytes)?;
    std::str::from_utf8(bytes).map_err(|_| KeyError::NotUtf8)?;
    Ok(Key::borrowed(bytes))
}

#[inline]
fn check_len(bytes: &[u8]) -> Result<(), KeyError> {
    match bytes.len() {
        0 => Err(KeyError::Missing),
        len if len > MAX_KEY_LEN => Err(KeyError::TooLong),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key_of(value: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut request = Request::new(());
        let value = HeaderValue::from_bytes(value).unwrap();
        request.headers_mut().insert(API_KEY_HEADER, value);
        let head = RequestHead::new(&request);
        KeyExtractor::api_key()
            .extract(&head)
            .map(|k| k.as_bytes().to_vec())
    }

    fn ip_key(extractor: &KeyExtractor, peer: &str) -> Result<Vec<u8>, KeyError> {
        let mut request = Request::new(());
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(peer);
        let head = RequestHead::new(&request);
        extractor.extract(&head).map(|k| k.as_bytes().to_vec())
    }

    #[test]
    fn reads_the_key() {
        assert_eq!(key_of(b"abc"), Ok(b"abc".to_vec()));
        assert_eq!(key_of("clé".as_bytes()), Ok("clé".as_bytes().to_vec()));
        assert_eq!(
            key_of(&[b'k'; MAX_KEY_LEN]).map(|k| k.len()),
            Ok(MAX_KEY_LEN)
        );
    }

    #[test]
    fn refuses_unusable_keys() {
        let request = Request::new(());
        let none = KeyExtractor::api_key().extract(&RequestHead::new(&request));
        assert_eq!(none, Err(KeyError::Missing));
        assert_eq!(key_of(b""), Err(KeyError::Missing));
        assert_eq!(key_of(&[b'k'; MAX_KEY_LEN + 1]), Err(KeyError::TooLong));
        assert_eq!(key_of(b"\xff\xfe"), Err(KeyError::NotUtf8));
    }

    #[test]
    fn groups_ipv6_by_prefix() {
        let by_ip = KeyExtractor::peer_ip();
        let a = ip_key(&by_ip, "[2001:db8:1:2:aaaa::1]:443").unwrap();
        let b = ip_key(&by_ip, "[2001:db8:1:2:bbbb::2]:443").unwrap();
        let c = ip_key(&by_ip, "[2001:db8:1:3::1]:443").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(ip_key(&by_ip, "192.0.2.7:1").unwrap(), [192, 0, 2, 7]);
        assert_eq!(
            ip_key(&by_ip, "[::ffff:192.0.2.7]:1").unwrap(),
            [192, 0, 2, 7]
        );

        let each = KeyExtractor::peer_ip().ipv6_prefix(128);
        let a = ip_key(&each, "[2001:db8:1:2:aaaa::1]:443").unwrap();
        let b = ip_key(&each, "[2001:db8:1:2:bbbb::2]:443").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn address_keys_are_numbers_that_keep_families_apart() {
        let v4 = Key::from(IpAddr::from([192, 0, 2, 1]));
        let mapped: std::net::Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(v4.addr(), Some(u128::from(mapped)));

        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(Key::from(v6).addr(), Some(0x2001_0db8_u128 << 96 | 1));
        assert_ne!(Key::from(v6).addr(), v4.addr());
        assert_eq!(Key::from("192.0.2.1").addr(), None);
    }

    #[test]
    fn a_missing_peer_is_an_error_not_a_panic() {
        let request = Request::new(());
        let head = RequestHead::new(&request);
        let got = KeyExtractor::peer_ip().extract(&head);
        assert_eq!(got, Err(KeyError::NoPeerAddress));
    }

    #[test]
    fn custom_keys_are_checked_too() {
        let long = KeyExtractor::custom(|_| Some(Key::from(vec![b'x'; MAX_KEY_LEN + 1])));
        let empty = KeyExtractor::custom(|_| Some(Key::from("")));
        let request = Request::new(());
        let head = RequestHead::new(&request);
        assert_eq!(long.extract(&head), Err(KeyError::TooLong));
        assert_eq!(empty.extract(&head), Err(KeyError::Missing));
    }
}
