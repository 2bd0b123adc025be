//! Connections that cannot be held hostage, for both services' HTTP servers: a cap on
//! open connections per process (beyond it a short `503` JSON answer with
//! `Retry-After`, then close, instead of accept errors once the open-files limit is
//! reached), and hyper's HTTP/1 settings with a timer, so a client must send a whole
//! request head within the head timeout.
//!
//! hyper (1.x) has one timer for this, `header_read_timeout`, which starts when the
//! connection starts waiting for a request head: on a new connection and again after
//! each response on a keep-alive connection. So the head timeout (10 s) also bounds how
//! long a keep-alive connection may sit idle between requests (within the contract's
//! 60 s).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
