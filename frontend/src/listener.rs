//! The viewer-facing listener: every accepted connection gets `TCP_NODELAY`, a bounded
//! kernel send buffer and a write timeout. A socket that accepts no bytes for `--write-timeout` (a dead peer, a
//! half-open connection whose heartbeats go nowhere, a client that never reads) is
//! closed, which ends its stream and frees its place.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_io_timeout::TimeoutStream;

pub struct ViewerListener {
    inner: TcpListener,
    write_timeout: Duration,
    send_buffer: usize,
}

impl ViewerListener {
    /// `send_buffer` (bytes, 0 = the kernel's autotuning) caps the kernel memory a
    /// viewer that stops reading can hold.
    pub fn new(inner: TcpListener, write_timeout: Duration, send_buffer: usize) -> Self {
        Self {
            inner,
            write_timeout,
            send_buffer,
        }
    }
}

impl axum::serve::Listener for ViewerListener {
    type Io = Pin<Box<TimeoutStream<TcpStream>>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    if self.send_buffer > 0 {
                        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(self.send_buffer);
                    }
                    let mut io = TimeoutStream::new(tcp);
                    io.set_write_timeout(Some(self.write_timeout));
                    return (Box::pin(io), addr);
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    metrics::counter!("frontend_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
