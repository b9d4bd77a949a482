//! Reading a response's header fields in tests, for hyper's and reqwest's responses alike.

use http::HeaderMap;

/// A response with header fields.
pub trait WithHeaders {
    fn header_map(&self) -> &HeaderMap;
}

impl<B> WithHeaders for http::Response<B> {
    fn header_map(&self) -> &HeaderMap {
        self.headers()
    }
}

impl WithHeaders for reqwest::Response {
    fn header_map(&self) -> &HeaderMap {
        self.headers()
    }
}

/// The text of header `name`; panics, naming it, if the response has none.
pub fn header<'a>(response: &'a impl WithHeaders, name: &str) -> &'a str {
    let value = response.header_map().get(name);
    value
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}
