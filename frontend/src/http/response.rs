//! Every answer to a stream request, rendered once for both ways it can leave: as the
//! bytes of an HTTP/1.1 head the fast path writes to the socket, or as an axum
//! [`Response`]. The status, the headers and the JSON error body are decided here only,
//! so the two paths cannot drift apart.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use live_common::ApiError;

/// A status, its headers and a body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// The head of an event stream (its body follows, until the connection closes).
pub fn stream() -> Answer {
    Answer {
        status: StatusCode::OK,
        headers: vec![
            ("Content-Type", "text/event-stream".into()),
            ("Cache-Control", "no-cache".into()),
            // Tells nginx (and proxies that follow it) not to buffer the stream.
            ("X-Accel-Buffering", "no".into()),
        ],
        body: Bytes::new(),
    }
}

/// An error: its status, `{"error": …}`, `Retry-After` for 429 and 503,
/// `WWW-Authenticate` for 401. An internal cause is logged here, never sent.
pub fn error(e: &ApiError) -> Answer {
    if let ApiError::Internal(cause) = e {
        tracing::error!(%cause, "internal error");
    }
    let body = Bytes::from(serde_json::json!({ "error": e.to_string() }).to_string());
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Content-Length", body.len().to_string()),
    ];
    if let Some(secs) = e.retry_after_secs() {
        headers.push(("Retry-After", secs.to_string()));
    }
    if let ApiError::Unauthorized(_) = e {
        headers.push(("WWW-Authenticate", "Bearer".into()));
    }
    Answer {
        status: e.status(),
        headers,
        body,
    }
}

impl Answer {
    /// The HTTP/1.1 head for the fast path, which closes the connection after the
    /// answer; `extra` are more header lines, each ending in CRLF (the CORS ones).
    pub fn http1_head(&self, extra: &str) -> Bytes {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("")
        );
        for (name, value) in &self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("Connection: close\r\n");
        head.push_str(extra);
        head.push_str("\r\n");
        Bytes::from(head)
    }

    /// The answer for axum, with `body` (the stream) or, for `None`, its own body.
    pub fn into_response(self, body: Option<Body>) -> Response {
        let mut response = Response::new(body.unwrap_or_else(|| Body::from(self.body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if self.status == StatusCode::OK {
            headers.remove(header::CONTENT_LENGTH);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_head_has_status_json_and_retry_after() {
        let e = ApiError::Unavailable {
            message: "full".into(),
            retry_after_secs: 5,
        };
        let a = error(&e);
        let head = String::from_utf8(a.http1_head("Vary: Origin\r\n").to_vec()).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
             Content-Length: 16\r\nRetry-After: 5\r\nConnection: close\r\nVary: Origin\r\n\r\n"
        );
        assert_eq!(&a.body[..], br#"{"error":"full"}"#);
    }

    #[test]
    fn both_paths_render_the_same_answer() {
        let e = ApiError::Unauthorized("missing token".into());
        let fast = String::from_utf8(error(&e).http1_head("").to_vec()).unwrap();
        let axum = error(&e).into_response(None);
        assert_eq!(axum.status(), StatusCode::UNAUTHORIZED);
        for (name, value) in axum.headers() {
            let line = format!("{}: {}\r\n", name, value.to_str().unwrap()).to_lowercase();
            assert!(fast.to_lowercase().contains(&line), "{line} not in {fast}");
        }
        assert!(fast.contains("WWW-Authenticate: Bearer\r\n"));
        assert_eq!(axum.headers().len() + 1, fast.lines().count() - 2, "{fast}");
    }

    #[test]
    fn the_stream_head() {
        let head = String::from_utf8(stream().http1_head("").to_vec()).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
             X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
        );
    }
}
