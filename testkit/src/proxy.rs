//! A TCP proxy for tests: forwards a local port to a target, can add latency to each
//! direction, and can cut every connection (and refuse new ones) until healed. It stands
//! between NATS servers (or a client and a server) to inject failures without `tc`, and
//! can count how often a byte pattern went through (e.g. a subject crossing a gateway).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub struct Proxy {
    pub port: u16,
    cut: watch::Sender<bool>,
    delay_ms: Arc<AtomicU64>,
    taps: Taps,
    _stop: watch::Sender<()>,
}

/// Patterns counted in the bytes sent from the proxy's clients to its target.
type Taps = Arc<Mutex<Vec<(Vec<u8>, Arc<AtomicU64>)>>>;

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let (cut, cut_rx) = watch::channel(false);
        let (stop, mut stop_rx) = watch::channel(());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        let taps: Taps = Arc::default();
        let proxy_taps = taps.clone();
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
                let (cut_rx, delay, taps) = (cut_rx.clone(), delay.clone(), proxy_taps.clone());
                tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        pipe(inbound, outbound, cut_rx, delay, taps).await;
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            delay_ms,
            taps,
            _stop: stop,
        }
    }

    /// Counts, from now on, the occurrences of `pattern` in the bytes the proxy forwards
    /// from its clients to its target (upstream), across chunk boundaries. For a gateway
    /// link, `b"RMSG APP live.v1."` counts the live messages of account APP that crossed.
    pub fn count_upstream(&self, pattern: &[u8]) -> Arc<AtomicU64> {
        assert!(!pattern.is_empty(), "an empty pattern counts nothing");
        let counter = Arc::new(AtomicU64::new(0));
        self.taps
            .lock()
            .unwrap()
            .push((pattern.to_vec(), counter.clone()));
        counter
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

async fn pipe(
    a: TcpStream,
    b: TcpStream,
    cut: watch::Receiver<bool>,
    delay: Arc<AtomicU64>,
    taps: Taps,
) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let up = tokio::spawn(direction(ar, bw, cut.clone(), delay.clone(), Some(taps)));
    let down = tokio::spawn(direction(br, aw, cut, delay, None));
    let _ = tokio::join!(up, down);
}

/// Counts the patterns in `chunk`; `tail` carries the end of the previous chunk so a
/// pattern split between two reads is counted once.
fn tap(taps: &Taps, tail: &mut Vec<u8>, chunk: &[u8]) {
    let taps = taps.lock().unwrap();
    if taps.is_empty() {
        return;
    }
    let longest = taps.iter().map(|(p, _)| p.len()).max().unwrap_or(1);
    let kept = tail.len();
    tail.extend_from_slice(chunk);
    for (pattern, counter) in taps.iter() {
        // Only matches that end inside the new chunk: the others were counted before.
        let n = tail
            .windows(pattern.len())
            .enumerate()
            .filter(|(i, w)| i + pattern.len() > kept && *w == pattern.as_slice())
            .count();
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    let keep = longest.saturating_sub(1).min(tail.len());
    tail.drain(..tail.len() - keep);
}

/// Copies one direction; each chunk is released `delay` after it was read, preserving
/// order (a queue with a release time, not a sleep per chunk in the reader).
async fn direction(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    delay: Arc<AtomicU64>,
    taps: Option<Taps>,
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
    let mut tail = Vec::new();
    loop {
        let n = tokio::select! {
            _ = cut.wait_for(|c| *c) => break,
            n = from.read(&mut buf) => match n { Ok(0) | Err(_) => break, Ok(n) => n },
        };
        if let Some(taps) = &taps {
            tap(taps, &mut tail, &buf[..n]);
        }
        let at = tokio::time::Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
        if tx.send((at, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_split_between_reads_are_counted_once() {
        let taps: Taps = Arc::default();
        let counter = Arc::new(AtomicU64::new(0));
        taps.lock()
            .unwrap()
            .push((b"RMSG APP live.".to_vec(), counter.clone()));
        let mut tail = Vec::new();
        let stream = b"PING\r\nRMSG APP live.v1.a\r\nxxRMSG APP live.v1.b RMSG APP store";
        for chunk in stream.chunks(5) {
            tap(&taps, &mut tail, chunk);
        }
        assert_eq!(counter.load(Ordering::Relaxed), 2);
        tap(&taps, &mut tail, b"RMSG APP live.RMSG APP live.");
        assert_eq!(counter.load(Ordering::Relaxed), 4);
    }
}
