//! A TCP proxy for tests: forwards a local port to a target, can add latency to each
//! direction, and can cut every connection (and refuse new ones) until healed. It stands
//! between NATS servers (or a client and a server) to inject failures without `tc`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub struct Proxy {
    pub port: u16,
    cut: watch::Sender<bool>,
    delay_ms: Arc<AtomicU64>,
    _stop: watch::Sender<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let (cut, cut_rx) = watch::channel(false);
        let (stop, mut stop_rx) = watch::channel(());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            loop {
                let (inbound, _) = tokio::select! {
                    _ = stop_rx.changed() => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                if *cut_rx.borrow() {
                    drop(inbound); // refused while cut
                    continue;
                }
                let (cut_rx, delay) = (cut_rx.clone(), delay.clone());
                tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        pipe(inbound, outbound, cut_rx, delay).await;
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            delay_ms,
            _stop: stop,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Closes every connection and refuses new ones until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }

    /// Adds `delay` to each direction (one-way latency) for data sent from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }
}

async fn pipe(a: TcpStream, b: TcpStream, cut: watch::Receiver<bool>, delay: Arc<AtomicU64>) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let up = tokio::spawn(direction(ar, bw, cut.clone(), delay.clone()));
    let down = tokio::spawn(direction(br, aw, cut, delay));
    let _ = tokio::join!(up, down);
}

/// Copies one direction; each chunk is released `delay` after it was read, preserving
/// order (a queue with a release time, not a sleep per chunk in the reader).
async fn direction(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    delay: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(1024);
    let mut cut_w = cut.clone();
    let writer = tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                _ = cut_w.wait_for(|c| *c) => break,
                item = rx.recv() => item,
            };
            let Some((at, chunk)) = item else { break };
            tokio::time::sleep_until(at).await;
            if *cut_w.borrow() || to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            _ = cut.wait_for(|c| *c) => break,
            n = from.read(&mut buf) => match n { Ok(0) | Err(_) => break, Ok(n) => n },
        };
        let at = tokio::time::Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
        if tx.send((at, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
