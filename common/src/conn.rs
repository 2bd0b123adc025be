//! Connections that cannot be held hostage, for both services' HTTP servers: a cap on
//! open connections per process (beyond it a short `503` JSON answer with
//! `Retry-After`, then close, instead of accept errors once the open-files limit is
//! reached), and hyper's HTTP/1 settings with a timer, so a client must send a whole
//! request head within the head timeout; and the same bound on request bodies.
//!
//! hyper (1.x) has one timer for this, `header_read_timeout`, which starts when the
//! connection starts waiting for a request head: on a new connection and again after
//! each response on a keep-alive connection. So the head timeout (10 s) also bounds how
//! long a keep-alive connection may sit idle between requests (within the contract's
//! 60 s).
//!
//! The body has the same bound: [`Service`] gives every request a [`BodyDeadline`] (a
//! connection's first request: the head timeout from the moment it was accepted, so
//! head and body together arrive within it; a later request on a keep-alive
//! connection: the head timeout from its head), and [`RequestBody`], the one way
//! handlers read a body, stops reading there (`408`, and hyper closes the connection,
//! since the body was not consumed). A handler that refuses a request from its head
//! (a bad token, a `Content-Length` over the limit, a wrong content type) answers
//! without reading the body at all; hyper then closes the connection unless the body
//! was already there to drain.
//!
//! Written here rather than with tower-http's `RequestBodyTimeoutLayer`: its timer
//! restarts on every frame of the body, so a byte a second keeps it alive for ever;
//! `TimeoutLayer` bounds the whole handler instead, which would also cut a write that
//! rides out a JetStream leader election. The deadline here is fixed per request.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioTimer;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::ApiError;

/// Default cap on open connections per process, below the 20,000 open-files limit of
/// our hosts (NATS connections, files and refusals need some too).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_000;
/// Default time a client has to send a whole request head.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Refusals (503 answers) being written at once; beyond it a connection is just closed.
const MAX_REFUSING: usize = 256;
/// How long a refusal may take to write, and to wait for the client to close.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Admits connections while fewer than `max` are open.
#[derive(Clone)]
pub struct Gate {
    open: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    max: usize,
}

impl Gate {
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            max,
        }
    }

    /// The connection and its place (hold it while the connection is open), or `None`:
    /// the process is full, and the connection is answered `503` and closed in the
    /// background.
    pub fn admit(&self, tcp: TcpStream) -> Option<(TcpStream, OwnedSemaphorePermit)> {
        match self.open.clone().try_acquire_owned() {
            Ok(permit) => Some((tcp, permit)),
            Err(_) => {
                metrics::counter!("connections_refused_total").increment(1);
                if let Ok(refusing) = self.refusing.clone().try_acquire_owned() {
                    let max = self.max;
                    tokio::spawn(async move {
                        refuse(tcp, max).await;
                        drop(refusing);
                    });
                }
                None
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.open.available_permits()
    }
}

/// Answers `503` with a JSON error and `Retry-After`, then closes (after the client
/// closed or a moment: closing with its request unread would reset the connection
/// before the client read the answer).
async fn refuse(mut tcp: TcpStream, max: usize) {
    let body = serde_json::json!({
        "error": format!("this server has reached its connection limit ({max}); retry later")
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// hyper's HTTP/1 server settings: a timer and the head timeout (see the module docs).
pub fn http1(head_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    builder
}

/// When a request's body must have arrived whole (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline {
    pub at: Instant,
    /// The head timeout, for the error message.
    pub timeout: Duration,
}

impl BodyDeadline {
    /// `timeout` from now.
    fn from_now(timeout: Duration) -> Self {
        BodyDeadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }
}

/// The hyper service of one connection: the router, each request given its
/// [`BodyDeadline`] (see the module docs).
pub struct Service {
    router: TowerToHyperService<axum::Router>,
    head_timeout: Duration,
    /// The first request's deadline: the head timeout from the accept.
    first: Cell<Option<Instant>>,
}

impl Service {
    /// `accepted`: when the connection was accepted.
    pub fn new(router: axum::Router, accepted: Instant, head_timeout: Duration) -> Self {
        Service {
            router: TowerToHyperService::new(router),
            head_timeout,
            first: Cell::new(Some(accepted + head_timeout)),
        }
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Service {
    type Response = <TowerToHyperService<axum::Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Response;
    type Error = <TowerToHyperService<axum::Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Error;
    type Future = <TowerToHyperService<axum::Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Future;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        let deadline = match self.first.take() {
            Some(at) => BodyDeadline {
                at,
                timeout: self.head_timeout,
            },
            None => BodyDeadline::from_now(self.head_timeout),
        };
        request.extensions_mut().insert(deadline);
        self.router.call(request)
    }
}

/// A request's body, not yet read (an extractor: put it last). Read it with
/// [`RequestBody::read`] after the checks that need only the head.
pub struct RequestBody {
    body: Body,
    content_length: Option<u64>,
    deadline: BodyDeadline,
}

impl<S: Send + Sync> FromRequest<S> for RequestBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let content_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        // Without the extension (a router called in-process, as in unit tests): the
        // default head timeout from now.
        let deadline = parts
            .extensions
            .get::<BodyDeadline>()
            .copied()
            .unwrap_or_else(|| BodyDeadline::from_now(DEFAULT_HEAD_TIMEOUT));
        Ok(RequestBody {
            body,
            content_length,
            deadline,
        })
    }
}

impl RequestBody {
    /// A body with no deadline worth speaking of (tests).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        RequestBody {
            content_length: Some(bytes.len() as u64),
            body: Body::from(bytes),
            deadline: BodyDeadline::from_now(DEFAULT_HEAD_TIMEOUT),
        }
    }

    /// `413` if the `Content-Length` says the body is over `limit` bytes: known from
    /// the head, before a byte of the body is read.
    pub fn check_length(&self, limit: usize) -> Result<(), ApiError> {
        match self.content_length {
            Some(n) if n > limit as u64 => Err(ApiError::TooLarge(limit)),
            _ => Ok(()),
        }
    }

    /// The whole body: `413` over `limit` bytes (by its `Content-Length`, or as it
    /// arrives), `408` if it has not arrived by the request's deadline, `400` if the
    /// client broke off.
    pub async fn read(self, limit: usize) -> Result<Bytes, ApiError> {
        self.check_length(limit)?;
        let collect = Limited::new(self.body, limit).collect();
        match tokio::time::timeout_at(self.deadline.at, collect).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(ApiError::TooLarge(limit))
            }
            Ok(Err(_)) => Err(ApiError::BadRequest("cannot read the request body".into())),
            Err(_) => {
                metrics::counter!("http_body_timeouts_total").increment(1);
                Err(ApiError::RequestTimeout(self.deadline.timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body whose bytes never come, announced as `length` bytes, due in `timeout`.
    fn never(length: u64, timeout: Duration) -> RequestBody {
        let pending = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        RequestBody {
            body: Body::from_stream(pending),
            content_length: Some(length),
            deadline: BodyDeadline::from_now(timeout),
        }
    }

    #[tokio::test]
    async fn a_body_that_never_comes_is_cut_at_its_deadline() {
        let started = Instant::now();
        let e = never(100, Duration::from_millis(200)).read(4096).await;
        assert_eq!(e.unwrap_err().status(), 408);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(190) && took < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_length_over_the_limit_is_refused_before_reading() {
        let started = Instant::now();
        let e = never(1 << 20, Duration::from_secs(10)).read(4096).await;
        assert_eq!(e.unwrap_err().status(), 413);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_without_a_length_is_refused_as_it_arrives() {
        let mut body = RequestBody::from_bytes(vec![b'x'; 5000]);
        body.content_length = None;
        assert_eq!(body.read(4096).await.unwrap_err().status(), 413);
        let body = RequestBody::from_bytes(&b"{}"[..]);
        assert_eq!(&body.read(4096).await.unwrap()[..], b"{}");
    }
}
