//! `reference`: the least a broadcast server must do, the ceiling `scripts/bench.sh`
//! measures our fan-out against: no NATS, no storage, no auth, no replay.
//! `GET /v1/videos/{video}/events` streams (the frontend's path and headers) every body
//! posted with `POST /pub/{video}` (nchan's publisher location, so `loadgen --via nchan`
//! drives it) as `event: comment\nid: N\ndata: BODY\n\n`, with a heartbeat every 15 s.
//! A video is a `tokio::sync::broadcast` of frames encoded once (`Bytes`); a viewer is a
//! task writing every ready frame in one write, disconnected if `QUEUE` frames behind.
//! Usage: `reference [--listen ADDR]` (env `REFERENCE_LISTEN`, default 127.0.0.1:8090).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::{Instant, interval_at};

/// Frames a viewer may fall behind before it is disconnected (as the frontend's default).
const QUEUE: usize = 512;
const HEARTBEAT: Duration = Duration::from_secs(15);
const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 4 * 1024;
const MAX_BATCH: usize = 64 * 1024; // bytes per write at most

struct Channel {
    tx: broadcast::Sender<Bytes>,
    seq: u64, // the id of the last frame
}

type Videos = Arc<Mutex<HashMap<String, Channel>>>;

#[tokio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = match &args[..] {
        [] => std::env::var("REFERENCE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into()),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => {
            eprintln!("usage: reference [--listen ADDR]");
            std::process::exit(64);
        }
    };
    let listener = TcpListener::bind(&listen).await?;
    eprintln!("reference: listening on http://{listen}");
    let videos = Videos::default();
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let videos = videos.clone();
                tokio::spawn(async move {
                    let _ = sock.set_nodelay(true);
                    let _ = connection(sock, &videos).await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await, // out of fds?
        }
    }
}

/// Serves one connection: requests (kept alive, for publishers), or a viewer's stream.
async fn connection(mut sock: TcpStream, videos: &Videos) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let (post, path, body_len, head_len) = loop {
            if let Some(h) = head(&buf)?
                && buf.len() >= h.3 + h.2.min(MAX_BODY)
            {
                break h;
            }
            if buf.len() > MAX_HEAD + MAX_BODY || sock.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        if body_len > MAX_BODY {
            return answer(&mut sock, "413 Payload Too Large").await;
        }
        let stream = path
            .strip_prefix("/v1/videos/")
            .and_then(|p| p.strip_suffix("/events"));
        match (post, stream, path.strip_prefix("/pub/")) {
            (false, Some(video), _) if valid(video) => {
                let rx = channel(videos, video, |ch| ch.tx.subscribe());
                drop(buf); // an idle viewer keeps no read buffer
                return viewer(sock, rx).await;
            }
            (true, _, Some(video)) if valid(video) => {
                let body = buf.split_to(head_len + body_len).split_off(head_len);
                channel(videos, video, |ch| {
                    ch.seq += 1;
                    let _ = ch.tx.send(frame(ch.seq, &body)); // no viewers: dropped
                });
                sock.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                    .await?;
            }
            (false, _, _) if path == "/healthz" => {
                buf.advance(head_len + body_len);
                sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
                    .await?;
            }
            _ => return answer(&mut sock, "404 Not Found").await,
        }
    }
}

/// A whole request head at the start of `buf`: (POST?, path sans query, body len, head len).
fn head(buf: &[u8]) -> io::Result<Option<(bool, String, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(n) = req.parse(buf).map_err(io::Error::other)? else {
        return Ok(None);
    };
    let len = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"));
    let len = len.and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p).to_owned();
    let post = req.method == Some("POST");
    Ok(Some((post, path, len.unwrap_or(0), n)))
}

/// Runs `f` on the video's channel, creating it on first use.
fn channel<T>(videos: &Videos, video: &str, f: impl FnOnce(&mut Channel) -> T) -> T {
    let mut map = videos.lock().unwrap_or_else(|e| e.into_inner());
    let ch = map.entry(video.to_owned()).or_insert_with(|| Channel {
        tx: broadcast::channel(QUEUE).0,
        seq: 0,
    });
    f(ch)
}

/// A `comment` event carrying `body` as its data (one `data:` line per body line).
fn frame(id: u64, body: &[u8]) -> Bytes {
    let mut f = BytesMut::with_capacity(body.len() + 40);
    f.put_slice(format!("event: comment\nid: {id}\n").as_bytes());
    for line in body.split(|&b| b == b'\n') {
        f.put_slice(b"data: ");
        f.put_slice(line.strip_suffix(b"\r").unwrap_or(line));
        f.put_u8(b'\n');
    }
    f.put_u8(b'\n');
    f.freeze()
}

/// Streams the video's frames to one viewer until it closes, errs or falls behind.
async fn viewer(mut sock: TcpStream, mut rx: broadcast::Receiver<Bytes>) -> io::Result<()> {
    sock.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
          x-accel-buffering: no\r\nconnection: close\r\n\r\n: ok\n\n",
    )
    .await?;
    let mut beat = interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    let mut out = Vec::new();
    let mut scratch = [0u8; 64];
    loop {
        tokio::select! {
            got = rx.recv() => {
                // Lagged (too slow) or closed: disconnect.
                let Ok(first) = got else { return Ok(()) };
                out.extend_from_slice(&first);
                while out.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(f) => out.extend_from_slice(&f),
                        Err(TryRecvError::Empty) => break,
                        Err(_) => return Ok(()),
                    }
                }
                sock.write_all(&out).await?;
                out.clear();
                out.shrink_to(MAX_BATCH / 16); // an idle viewer keeps little
            }
            _ = beat.tick() => sock.write_all(b": heartbeat\n\n").await?,
            ready = sock.readable() => {
                ready?;
                match sock.try_read(&mut scratch) {
                    Ok(0) => return Ok(()), // the viewer closed
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                    _ => {}
                }
            }
        }
    }
}

/// Answers with an empty body and closes.
async fn answer(sock: &mut TcpStream, status: &str) -> io::Result<()> {
    let head = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await
}

/// Video ids as the system under test takes them: `^[A-Za-z0-9_-]{1,64}$`.
fn valid(video: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    (1..=64).contains(&video.len()) && video.bytes().all(ok)
}
