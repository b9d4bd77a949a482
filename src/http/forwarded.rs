//! The client's address behind reverse proxies: [`TrustedProxies`], reading `X-Forwarded-For`
//! or the RFC 7239 `Forwarded` header from the right, and only as far as trusted proxies wrote.
//!
//! Each proxy appends the address it received the request from. Entries to the left of the
//! last trusted proxy's were written by someone else, possibly the client, and prove nothing;
//! so the client is the right-most address that is not a trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, FORWARDED};

use super::net::{canonical, Cidr};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The most entries read from the right of a forwarding header; past them the last address
/// read stands for the client.
const MAX_HOPS: usize = 32;

/// Which header the proxies in front of the server append the client's address to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`; only the `for` parameter
    /// is read.
    Forwarded,
}

/// Which peers may say who the client is, and in which header.
///
/// A header from a peer that is not trusted is never read: the peer itself is the client.
///
/// # Examples
///
/// ```
/// use hotlimit::http::{ForwardedHeader, TrustedProxies};
///
/// // The load balancers live in 10.0.0.0/8 and write X-Forwarded-For.
/// let proxies = TrustedProxies::networks(["10.0.0.0/8".parse()?]);
/// // Exactly one proxy, whatever its address, writing `Forwarded`.
/// let one_hop = TrustedProxies::hops(1).header(ForwardedHeader::Forwarded);
/// # Ok::<(), hotlimit::http::CidrError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    trust: Trust,
    header: ForwardedHeader,
}

#[derive(Clone, Debug)]
enum Trust {
    Networks(Arc<[Cidr]>),
    Hops(usize),
}

impl TrustedProxies {
    /// Trusts peers, and entries, whose address is in one of `networks`.
    pub fn networks(networks: impl IntoIterator<Item = Cidr>) -> Self {
        TrustedProxies {
            trust: Trust::Networks(networks.into_iter().collect()),
            header: ForwardedHeader::default(),
        }
    }

    /// Trusts the `hops` proxies nearest the server, whatever their addresses: the client is
    /// the `hops`-th entry from the right. Use it only when every request reaches the server
    /// through those proxies; `0` trusts no header.
    pub fn hops(hops: usize) -> Self {
        TrustedProxies {
            trust: Trust::Hops(hops),
            header: ForwardedHeader::default(),
        }
    }

    /// Reads `header` (`X-Forwarded-For` unless set).
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The client's address for a request from `peer` with `headers`.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        match &self.trust {
            Trust::Networks(networks) => {
                let trusted = |ip: IpAddr| networks.iter().any(|net| net.contains(ip));
                if !trusted(peer) {
                    return peer;
                }

                // From the right: skip trusted proxies, stop at the first other address. An
                // entry that is not an address ends the walk at the last one known.
                let mut last = peer;
                let mut hops = 0;
                let mut entries = Entries::new(headers, self.header);
                while let Some(entry) = entries.next_from_right() {
                    hops += 1;
                    match entry {
                        Some(ip) if trusted(ip) && hops < MAX_HOPS => last = ip,
                        Some(ip) => return ip,
                        None => return last,
                    }
                }
                last
            }
            Trust::Hops(hops) => {
                // The entry `hops` from the right, or the left-most address if there are fewer.
                let mut last = peer;
                let mut entries = Entries::new(headers, self.header);
                for _ in 0..(*hops).min(MAX_HOPS) {
                    match entries.next_from_right() {
                        Some(Some(ip)) => last = ip,
                        Some(None) | None => break,
                    }
                }
                last
            }
        }
    }
}

/// The entries of every instance of a forwarding header, right to left.
struct Entries<'a> {
    values: http::header::ValueIter<'a, http::HeaderValue>,
    current: &'a [u8],
    kind: ForwardedHeader,
}

impl<'a> Entries<'a> {
    fn new(headers: &'a HeaderMap, kind: ForwardedHeader) -> Self {
        let name = match kind {
            ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
            ForwardedHeader::Forwarded => FORWARDED,
        };
        Entries {
            values: headers.get_all(name).into_iter(),
            current: &[],
            kind,
        }
    }

    /// The next entry: `Some(None)` for one that is not an address (`unknown`, garbage).
    fn next_from_right(&mut self) -> Option<Option<IpAddr>> {
        loop {
            if let Some((rest, entry)) = split_last(self.current) {
                self.current = rest;
                let entry = trim(entry);
                if entry.is_empty() {
                    // `a,,b` or a trailing comma: no hop wrote this.
                    continue;
                }
                return Some(match self.kind {
                    ForwardedHeader::XForwardedFor => node(entry),
                    ForwardedHeader::Forwarded => forwarded_for(entry).and_then(node),
                });
            }
            self.current = self.values.next_back()?.as_bytes();
        }
    }
}

/// Splits off the last comma-separated element, honouring quoted strings; `None` when empty.
///
/// Scans from the right and stops at the comma, so reading a whole header costs one pass.
fn split_last(list: &[u8]) -> Option<(&[u8], &[u8])> {
    if list.is_empty() {
        return None;
    }
    let mut quoted = false;
    for i in (0..list.len()).rev() {
        match list[i] {
            b'"' if i == 0 || list[i - 1] != b'\\' => quoted = !quoted,
            b',' if !quoted => return Some((&list[..i], &list[i + 1..])),
            _ => {}
        }
    }
    Some((&[], list))
}

/// The `for` parameter of one `Forwarded` element (`for=1.2.3.4;proto=https`), unquoted.
fn forwarded_for(element: &[u8]) -> Option<&[u8]> {
    element.split(|&b| b == b';').find_map(|pair| {
        let pair = trim(pair);
        let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
        if !name.eq_ignore_ascii_case(b"for") {
            return None;
        }
        let value = trim(&value[1..]);
        match value {
            [b'"', inner @ .., b'"'] => Some(inner),
            _ => Some(value),
        }
    })
}

/// An address as a proxy writes it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`
/// or `[2001:db8::1]:80`. `None` for `unknown`, obfuscated names and anything else.
fn node(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(name: &str, values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let name = HeaderName::try_from(name).unwrap();
        for value in values {
            headers.append(name.clone(), HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn behind_lb() -> TrustedProxies {
        TrustedProxies::networks(["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()])
    }

    #[test]
    fn takes_the_right_most_untrusted_address() {
        let proxies = behind_lb();
        let h = headers("x-forwarded-for", &[b"6.6.6.6, 1.2.3.4, 10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("1.2.3.4"));

        // Several header lines are one list, in order.
        let h = headers("x-forwarded-for", &[b"6.6.6.6", b"1.2.3.4,10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("1.2.3.4"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client() {
        let h = headers("x-forwarded-for", &[b"1.2.3.4"]);
        assert_eq!(behind_lb().client(ip("5.5.5.5"), &h), ip("5.5.5.5"));
        assert_eq!(
            TrustedProxies::hops(0).client(ip("5.5.5.5"), &h),
            ip("5.5.5.5")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_known_hop() {
        let proxies = behind_lb();
        for value in [
            &b"1.2.3.4, garbage"[..],
            b"\xff\xfe",
            b"unknown",
            b",,,",
            b"",
        ] {
            let h = headers("x-forwarded-for", &[value]);
            assert_eq!(
                proxies.client(ip("10.0.0.1"), &h),
                ip("10.0.0.1"),
                "{value:?}"
            );
        }
        // All hops trusted: the left-most one.
        let h = headers("x-forwarded-for", &[b"10.0.0.3, 10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.3"));
    }

    #[test]
    fn reads_ports_brackets_and_mapped_addresses() {
        let proxies = behind_lb();
        let cases: [(&[u8], &str); 4] = [
            (b"1.2.3.4:5678", "1.2.3.4"),
            (b"[2001:db8::1]:80", "2001:db8::1"),
            (b"2001:db8::2", "2001:db8::2"),
            (b"::ffff:1.2.3.4", "1.2.3.4"),
        ];
        for (value, want) in cases {
            let h = headers("x-forwarded-for", &[value]);
            assert_eq!(proxies.client(ip("::ffff:10.0.0.1"), &h), ip(want));
        }
    }

    #[test]
    fn reads_the_for_parameter_of_forwarded() {
        let proxies = behind_lb().header(ForwardedHeader::Forwarded);
        let value = br#"for=6.6.6.6, For="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.9"#;
        let h = headers("forwarded", &[value]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));

        // Quoted commas do not split elements; obfuscated and unknown nodes are not addresses.
        let h = headers("forwarded", &[br#"for="a,b";by=x, for=1.2.3.4"#]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        for value in [
            &b"for=_hidden"[..],
            b"for=unknown",
            b"proto=http",
            b"for",
            b"\"\"\"",
        ] {
            let h = headers("forwarded", &[value]);
            assert_eq!(
                proxies.client(ip("10.0.0.1"), &h),
                ip("10.0.0.1"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn counts_hops_from_the_right() {
        let h = headers("x-forwarded-for", &[b"6.6.6.6, 1.2.3.4, 10.9.9.9"]);
        assert_eq!(
            TrustedProxies::hops(1).client(ip("7.7.7.7"), &h),
            ip("10.9.9.9")
        );
        assert_eq!(
            TrustedProxies::hops(2).client(ip("7.7.7.7"), &h),
            ip("1.2.3.4")
        );
        assert_eq!(
            TrustedProxies::hops(9).client(ip("7.7.7.7"), &h),
            ip("6.6.6.6")
        );
        let none = HeaderMap::new();
        assert_eq!(
            TrustedProxies::hops(1).client(ip("7.7.7.7"), &none),
            ip("7.7.7.7")
        );
    }

    #[test]
    fn a_long_header_of_trusted_entries_is_read_only_so_far() {
        let long = "10.0.0.5,".repeat(10_000);
        let h = headers("x-forwarded-for", &[long.as_bytes()]);
        assert_eq!(behind_lb().client(ip("10.0.0.1"), &h), ip("10.0.0.5"));
    }
}
