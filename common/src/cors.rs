//! Cross-origin access from browsers (`--cors-origin ORIGIN[,ORIGIN…]`): which page
//! origins may read the answers. A listed origin is echoed in
//! `Access-Control-Allow-Origin` with `Vary: Origin` and `Access-Control-Allow-Credentials:
//! true` (so `EventSource(url, {withCredentials: true})` and `fetch(…, {credentials:
//! "include"})` work); `*` alone allows any origin without credentials (the CORS rules
//! forbid both together); an unlisted origin gets no CORS headers, so its page cannot read
//! the answer. The axum routes get a `tower-http` layer (preflights included); the
//! frontend's fast path asks [`Origins::allow`] and writes the same headers itself.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The allowed origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origins {
    /// No cross-origin access (no CORS headers at all).
    #[default]
    None,
    /// `*`: any origin, without credentials.
    Any,
    /// These origins, echoed, with credentials.
    List(Vec<String>),
}

impl Origins {
    /// Parses the flag's values (already split at commas). Each origin is
    /// `scheme://host[:port]`, as browsers send it in `Origin`: no path, no trailing
    /// slash. An empty list is no CORS; `*` must stand alone.
    pub fn parse(values: &[String]) -> Result<Origins, String> {
        let values: Vec<&str> = values
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Ok(Origins::None);
        }
        if values.contains(&"*") {
            if values.len() > 1 {
                return Err("\"*\" allows any origin and cannot be combined with others".into());
            }
            return Ok(Origins::Any);
        }
        let mut list = Vec::with_capacity(values.len());
        for v in values {
            let host = v
                .strip_prefix("https://")
                .or_else(|| v.strip_prefix("http://"));
            let bare =
                host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ']));
            if !bare || v.parse::<axum::http::Uri>().is_err() {
                return Err(format!(
                    "{v:?} is not an origin: expected http(s)://host[:port], no path or trailing slash"
                ));
            }
            list.push(v.to_ascii_lowercase());
        }
        Ok(Origins::List(list))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow<'a>(&'a self, origin: Option<&'a [u8]>) -> Option<&'a str> {
        match self {
            Origins::None => None,
            Origins::Any => Some("*"),
            Origins::List(list) => {
                let origin = std::str::from_utf8(origin?).ok()?;
                listed(list, origin).then_some(origin)
            }
        }
    }

    /// The CORS response headers for a request from `origin` (each line ends in CRLF),
    /// for a hand-written response head; empty when not allowed.
    pub fn head_lines(&self, origin: Option<&[u8]>) -> String {
        match (self, self.allow(origin)) {
            (Origins::None, _) => String::new(),
            (Origins::Any, _) => "Access-Control-Allow-Origin: *\r\n".into(),
            (Origins::List(_), None) => "Vary: Origin\r\n".into(),
            (Origins::List(_), Some(o)) => format!(
                "Access-Control-Allow-Origin: {o}\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
            ),
        }
    }

    /// `router` with CORS: preflights answered and the headers added for `methods`, the
    /// request headers `allow_headers`, and `Retry-After` readable by scripts. An answer
    /// to an unlisted origin keeps none of the `Access-Control-*` headers (`tower-http`
    /// adds the others, e.g. `-Allow-Credentials`, even without an allowed origin).
    pub fn apply(
        &self,
        router: axum::Router,
        methods: &[Method],
        allow_headers: &[HeaderName],
    ) -> axum::Router {
        match self.layer(methods, allow_headers) {
            None => router,
            Some(layer) => router
                .layer(layer)
                .layer(axum::middleware::map_response(strip_unallowed)),
        }
    }

    /// The `tower-http` layer of [`Origins::apply`]; `None` for [`Origins::None`].
    pub fn layer(&self, methods: &[Method], allow_headers: &[HeaderName]) -> Option<CorsLayer> {
        let base = CorsLayer::new()
            .allow_methods(methods.to_vec())
            .allow_headers(allow_headers.to_vec())
            .expose_headers([header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE);
        match self {
            Origins::None => None,
            Origins::Any => Some(base.allow_origin(AllowOrigin::any())),
            Origins::List(list) => {
                // A list of exact origins, so credentials are allowed (and the origin is
                // echoed, with `Vary: Origin`). Matched as the fast path's streams match
                // them ([`listed`]): a preflight and the stream it precedes never disagree.
                let list = list.clone();
                let allowed = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                    origin.to_str().is_ok_and(|o| listed(&list, o))
                });
                Some(base.allow_origin(allowed).allow_credentials(true))
            }
        }
    }
}

/// Whether `origin` is one of `list` (stored lowercase): scheme and host compare without
/// regard to ASCII case, as origins do (RFC 6454 serialises them lowercase, so a
/// browser's `Origin` matches however the flag was written).
fn listed(list: &[String], origin: &str) -> bool {
    list.iter().any(|o| o.eq_ignore_ascii_case(origin))
}

/// Removes every `Access-Control-*` header from an answer without an allowed origin.
async fn strip_unallowed(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let names: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in names {
            headers.remove(name);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parsing() {
        assert_eq!(Origins::parse(&[]), Ok(Origins::None));
        assert_eq!(Origins::parse(&list(&["*"])), Ok(Origins::Any));
        assert_eq!(
            Origins::parse(&list(&["https://a.example", " http://localhost:3000"])),
            Ok(Origins::List(list(&[
                "https://a.example",
                "http://localhost:3000"
            ])))
        );
        for bad in [
            &["*", "https://a.example"][..],
            &["https://a.example/"],
            &["https://a.example/path"],
            &["a.example"],
            &["ftp://a.example"],
            &["https://user@a.example"],
            &["https://a.example?x"],
        ] {
            assert!(Origins::parse(&list(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers() {
        let o = Origins::parse(&list(&["https://a.example"])).unwrap();
        assert_eq!(
            o.allow(Some(b"https://a.example")),
            Some("https://a.example")
        );
        assert_eq!(o.allow(Some(b"https://b.example")), None);
        assert_eq!(
            o.allow(Some(b"HTTPS://A.example")),
            Some("HTTPS://A.example"),
            "origins compare without regard to case"
        );
        assert_eq!(o.allow(None), None);
        assert!(
            o.head_lines(Some(b"https://a.example"))
                .contains("Access-Control-Allow-Credentials: true\r\n")
        );
        assert_eq!(
            o.head_lines(Some(b"https://evil.example")),
            "Vary: Origin\r\n"
        );
        assert_eq!(Origins::None.head_lines(Some(b"https://a.example")), "");
        assert_eq!(
            Origins::Any.head_lines(None),
            "Access-Control-Allow-Origin: *\r\n"
        );
    }
}
