//! The HTTP error type of both services: a status and a message safe for the client,
//! answered as `{"error": "…"}`. Internal causes are logged once and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is out of range.
    #[error("{0}")]
    BadRequest(String),
    /// 401: authentication is on and the token is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route.
    #[error("not found")]
    NotFound,
    /// 404: no such thing (e.g. a comment), with what was looked for.
    #[error("{0}")]
    NoSuch(String),
    /// 413: the body is larger than allowed.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 408: the request (head and body) did not arrive whole within the head timeout.
    #[error("the request did not arrive whole within {} s", .0.as_secs_f64())]
    RequestTimeout(std::time::Duration),
    /// 415: the body is not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 429: over the rate limit; retry after this many seconds.
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// 429: the video is in slow mode; the user may comment again after this many seconds.
    #[error("slow mode: one comment per {seconds} s on this video")]
    SlowMode { seconds: u64, retry_after_secs: u64 },
    /// 503: a dependency (NATS, JetStream) is unavailable or a capacity limit is reached.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// 500: a bug or an unexpected failure; the cause is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NoSuch(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::SlowMode { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds for a `Retry-After` header, for 429 and 503.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::SlowMode {
                retry_after_secs, ..
            }
            | ApiError::Unavailable {
                retry_after_secs, ..
            } => Some((*retry_after_secs).max(1)),
            _ => None,
        }
    }

    /// A 503 for a dependency that failed; `cause` is logged, not sent.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "{what} unavailable");
        ApiError::Unavailable {
            message: format!("{what} is unavailable, retry later"),
            retry_after_secs: 1,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Unauthorized(_) = &self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The longest plain-text error body [`json_rejections`] turns into JSON.
const MAX_REJECTION: usize = 4096;

/// Rewrites a plain-text client error (what axum's extractors and layers answer on their
/// own: a path that is not UTF-8, a body over a limit, JSON that does not parse) as the
/// API's `{"error": …}` with the same status and headers, so every error body of both
/// services is JSON. Apply with `axum::middleware::map_response(json_rejections)`.
pub async fn json_rejections(response: Response) -> Response {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REJECTION).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned()
    } else {
        text
    };
    let body = serde_json::to_vec(&serde_json::json!({ "error": text })).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod rejection_tests {
    use super::*;

    #[tokio::test]
    async fn a_plain_text_client_error_becomes_json_and_nothing_else_changes() {
        let plain = (
            axum::http::StatusCode::BAD_REQUEST,
            "Invalid URL: Invalid UTF-8 in `video`",
        )
            .into_response();
        let json = json_rejections(plain).await;
        assert_eq!(json.status(), 400);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(json.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "Invalid URL: Invalid UTF-8 in `video`");
        // JSON errors, successes and server errors pass as they are.
        let ok = (axum::http::StatusCode::OK, "fine").into_response();
        let ok = json_rejections(ok).await;
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let api = json_rejections(ApiError::TooLarge(4096).into_response()).await;
        assert_eq!(api.status(), 413);
        assert_eq!(api.headers()[header::CONTENT_TYPE], "application/json");
    }
}
