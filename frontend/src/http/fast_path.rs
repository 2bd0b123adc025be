//! The frontend's HTTP server. A connection whose first request is a stream
//! (`GET /v1/videos/{video}/events` or `GET /v1/stream`) is served on a fast path: the request head is parsed
//! with `httparse`, the response is written straight to the socket (no chunked framing,
//! the body ends when the connection closes), and each batch of frames goes out with one
//! `writev` of the room's shared buffers. A viewer costs a task, a socket and its queue
//! position, about 1–2 KB. Every other connection (the page, `/healthz`, `/metrics`,
//! errors) is handed, with the bytes already read, to hyper and the axum router.
//!
//! Every accepted socket gets `TCP_NODELAY` and a bounded kernel send buffer; a socket
//! that accepts no bytes for `--write-timeout` (a dead peer, a half-open connection, a
//! client that never reads) is closed, which ends its stream and frees its place.
//!
//! Nobody holds a socket for free: at most `--max-connections` are open (beyond it a
//! `503` JSON answer with `Retry-After`), and a client must send its whole first request,
//! head and body, within `--head-timeout` (10 s) of connecting, however it trickles the
//! bytes; hyper's timer applies the same bound to every later request head on a
//! keep-alive connection and to the idle time between them, and each later body must
//! follow within the head timeout of its head (see [`live_common::conn`]).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use live_common::ApiError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_io_timeout::TimeoutStream;
use tokio_util::task::TaskTracker;

use super::{Events, response};
use crate::connection::Connection;
use crate::viewer::Viewer;

/// Longest request head read before handing the connection to hyper (which answers 431).
const MAX_HEAD: usize = 8 * 1024;
/// Most frames written with one `writev`.
const MAX_BATCH: usize = 64;

/// Socket settings for every accepted connection.
#[derive(Clone, Copy)]
pub struct SocketOptions {
    pub write_timeout: Duration,
    /// Kernel send buffer in bytes; 0 keeps the kernel's autotuning.
    pub send_buffer: usize,
    /// Time a client has to send a whole request head.
    pub head_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

/// Serves `listener` until `shutdown` resolves; then stops accepting, sets `stopping`
/// (viewer streams drain), and returns once every connection has ended.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    events: Events,
    options: SocketOptions,
    stopping: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let connections = TaskTracker::new();
    let gate = live_common::conn::Gate::new(options.max_connections);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    metrics::counter!("frontend_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some((tcp, place)) = gate.admit(tcp) else {
            continue;
        };
        let (router, events) = (router.clone(), events.clone());
        connections.spawn(async move {
            // The task's own future holds only a box: the setup's while it runs, then
            // the serving future's, so an idle viewer keeps nothing of its setup.
            let serving = Box::pin(connection(tcp, router, events, options)).await;
            if let Err(e) = serving.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    events.registry.drain_all();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// What serves a connection once its first request head is read.
type Serving = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

fn done(result: io::Result<()>) -> Serving {
    Box::pin(std::future::ready(result))
}

/// Sets the socket up and reads its first request head; returns what serves it: the
/// fast path's pump, or hyper.
async fn connection(
    mut tcp: TcpStream,
    router: Router,
    events: Events,
    options: SocketOptions,
) -> Serving {
    let accepted = tokio::time::Instant::now();
    if let Err(e) = tcp.set_nodelay(true) {
        return done(Err(e));
    }
    if options.send_buffer > 0
        && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(options.send_buffer)
    {
        return done(Err(e));
    }
    // The whole head within the timeout, not each read: a byte every few seconds does
    // not keep the socket.
    let head = match tokio::time::timeout(options.head_timeout, read_head(&mut tcp)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return done(Err(e)),
        Err(_) => {
            metrics::counter!("frontend_head_timeouts_total").increment(1);
            None
        }
    };
    let Some((head, complete)) = head else {
        return done(Ok(()));
    };
    if complete && ViewerRequest::parse(&head).is_some() {
        stream(tcp, head, events, options).await
    } else if complete && !target_is_uri(&head) {
        // hyper would answer a request target that is no URI (`/v1/stream/x.>/topics`)
        // with an empty 400; every other error of ours is JSON.
        let error = ApiError::BadRequest("the request target is not a valid URI".into());
        let timeout = options.write_timeout;
        Box::pin(async move { write_error(&mut tcp, error, "", timeout).await })
    } else {
        Box::pin(through_hyper(tcp, head, accepted, router, events, options))
    }
}

/// Whether a complete head's request target parses as a URI, as hyper requires.
fn target_is_uri(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(_) => request
            .path
            .is_some_and(|t| t.parse::<axum::http::Uri>().is_ok()),
        Err(_) => true,
    }
}

/// Reads until the request head is complete (`true`), unparsable or too long (`false`);
/// `None` if the client left.
async fn read_head(tcp: &mut TcpStream) -> io::Result<Option<(BytesMut, bool)>> {
    let mut head = BytesMut::with_capacity(512);
    while head.len() < MAX_HEAD {
        if tcp.read_buf(&mut head).await? == 0 {
            return Ok(None);
        }
        match head_length(&head) {
            Some(Some(len)) => {
                let complete = len == head.len();
                return Ok(Some((head, complete)));
            }
            Some(None) => continue,
            None => return Ok(Some((head, false))),
        }
    }
    Ok(Some((head, false)))
}

/// `Some(Some(len))` for a complete head, `Some(None)` for a partial one, `None` if it
/// does not parse.
fn head_length(head: &[u8]) -> Option<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    match httparse::Request::new(&mut headers).parse(head) {
        Ok(httparse::Status::Complete(len)) => Some(Some(len)),
        Ok(httparse::Status::Partial) => Some(None),
        Err(_) => None,
    }
}

/// Serves the connection with hyper and the axum router, starting with `head`; the
/// first request's body must arrive within the head timeout of `accepted`.
async fn through_hyper(
    tcp: TcpStream,
    head: BytesMut,
    accepted: tokio::time::Instant,
    router: Router,
    events: Events,
    options: SocketOptions,
) -> io::Result<()> {
    let mut io = TimeoutStream::new(tcp);
    io.set_write_timeout(Some(options.write_timeout));
    let io = TokioIo::new(Prefixed {
        prefix: head.freeze(),
        inner: Box::pin(io),
    });
    let mut stopping = events.stopping.clone();
    let conn = live_common::conn::http1(options.head_timeout).serve_connection(
        io,
        live_common::conn::Service::new(router, accepted, options.head_timeout),
    );
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r.map_err(io::Error::other),
        _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await.map_err(io::Error::other)
        }
    }
}

/// The parts of a stream request the fast path needs.
struct ViewerRequest<'a> {
    /// The video of `/v1/videos/{video}/events` (raw); `None` for `/v1/stream`.
    video: Option<&'a str>,
    query: Option<&'a str>,
    last_event_id: Option<&'a [u8]>,
    origin: Option<&'a [u8]>,
}

impl<'a> ViewerRequest<'a> {
    /// `Some` for `GET /v1/videos/{video}/events[?query]` or `GET /v1/stream[?query]`
    /// without a body.
    fn parse(head: &'a [u8]) -> Option<Self> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        request.parse(head).ok()?;
        if request.method? != "GET" {
            return None;
        }
        let target = request.path?;
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let video = if path == "/v1/stream" {
            None
        } else {
            let video = path.strip_prefix("/v1/videos/")?.strip_suffix("/events")?;
            if video.contains('/') {
                return None;
            }
            Some(video)
        };
        let mut last_event_id = None;
        let mut origin = None;
        for h in request.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return None;
            }
            if name.eq_ignore_ascii_case("last-event-id") {
                last_event_id = Some(h.value);
            }
            if name.eq_ignore_ascii_case("origin") {
                origin = Some(h.value);
            }
        }
        Some(ViewerRequest {
            video,
            query,
            last_event_id,
            origin,
        })
    }
}

/// What the fast path streams: a video's viewer, or a `/v1/stream` connection (boxed:
/// it is larger, and a video viewer's task should not pay for it).
enum Opened {
    Video(Viewer),
    Stream(Box<Connection>),
}

impl Opened {
    async fn next_batch(&mut self, out: &mut Vec<Bytes>, max: usize) -> bool {
        match self {
            Opened::Video(v) => v.next_batch(out, max).await,
            // Boxed (an allocation per batch of a multi-topic stream): its future is
            // larger, and a video viewer's resting state should not make room for it.
            Opened::Stream(c) => Box::pin(c.next_batch(out, max)).await,
        }
    }

    fn prepend(&mut self, bytes: Bytes) {
        match self {
            Opened::Video(v) => v.prepend(bytes),
            Opened::Stream(c) => c.prepend(bytes),
        }
    }

    fn record_written(&mut self, pieces: usize) {
        match self {
            Opened::Video(v) => v.record_written(pieces),
            Opened::Stream(c) => c.record_written(pieces),
        }
    }
}

/// The fast path: checks and opens the stream (or answers its error); returns what
/// then writes its frames until it ends, the peer goes away, or a write times out.
async fn stream(
    mut tcp: TcpStream,
    head: BytesMut,
    events: Events,
    options: SocketOptions,
) -> Serving {
    let (opened, cors) = open(head, events).await;
    let timeout = options.write_timeout;
    match opened {
        Ok(mut opened) => {
            // The head goes out with the stream's first events, in one write.
            opened.prepend(response::stream().http1_head(&cors));
            Box::pin(pump(tcp, opened, timeout))
        }
        Err(e) => done(write_error(&mut tcp, e, &cors, timeout).await),
    }
}

/// Checks and opens the stream of request `head`; also the CORS lines of its answer.
async fn open(head: BytesMut, events: Events) -> (Result<Opened, ApiError>, String) {
    let Some(r) = ViewerRequest::parse(&head) else {
        return (
            Err(ApiError::BadRequest("malformed request".into())),
            String::new(),
        );
    };
    let cors = events.cors.head_lines(r.origin);
    let opened = match r.video {
        // Percent-decoded as axum decodes a path parameter, so both paths see the same
        // id (and refuse the same ones).
        Some(raw) => match percent_encoding::percent_decode_str(raw).decode_utf8() {
            Ok(video) => events
                .open(&video, r.query, r.last_event_id)
                .await
                .map(Opened::Video),
            Err(_) => Err(ApiError::BadRequest("invalid video id".into())),
        },
        None => events
            .open_stream(r.query, r.last_event_id)
            .await
            .map(|c| Opened::Stream(Box::new(c))),
    };
    (opened, cors)
}

/// Writes the stream's frames until it ends, the peer goes away, or a write times out.
/// This future is what a viewer costs while it watches: it holds only the socket (split
/// by borrowing, not into two shared halves), the stream and one batch.
async fn pump(mut tcp: TcpStream, mut viewer: Opened, write_timeout: Duration) -> io::Result<()> {
    let (mut reader, writer) = tcp.split();
    // A socket that accepts no bytes for the write timeout is cut.
    let mut writer = LazyTimeoutWriter::new(writer, write_timeout);
    let mut batch: Vec<Bytes> = Vec::new();
    let mut probe = [0u8; 1];
    loop {
        tokio::select! {
            // Frames first: the probe only tells that the viewer left, which the next
            // write also tells.
            biased;
            more = viewer.next_batch(&mut batch, MAX_BATCH) => {
                if !more {
                    break;
                }
                write_counted(&mut writer, &batch).await?;
                viewer.record_written(batch.len());
                batch.clear();
                if batch.capacity() > MAX_BATCH {
                    batch = Vec::new();
                }
            }
            // A viewer sends nothing after its request: a read ending means it left.
            read = reader.read(&mut probe) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break;
                }
            }
        }
    }
    writer.shutdown().await
}

/// Writes `bufs` through a [`LazyTimeoutWriter`], counting the writes that timed out.
async fn write_counted(writer: &mut (impl AsyncWrite + Unpin), bufs: &[Bytes]) -> io::Result<()> {
    let result = write_all_vectored(writer, bufs).await;
    if let Err(e) = &result
        && e.kind() == io::ErrorKind::TimedOut
    {
        metrics::counter!("frontend_viewers_dropped_total", "reason" => "write_timeout")
            .increment(1);
    }
    result
}

async fn write_with_timeout(
    writer: &mut (impl AsyncWrite + Unpin),
    bufs: &[Bytes],
    timeout: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(timeout, write_all_vectored(writer, bufs)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("frontend_viewers_dropped_total", "reason" => "write_timeout")
                .increment(1);
            Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
        }
    }
}

/// Writes every buffer, with as few `writev` calls as the socket allows.
async fn write_all_vectored(
    writer: &mut (impl AsyncWrite + Unpin),
    bufs: &[Bytes],
) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < bufs.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&bufs[index][offset..])
            .chain(bufs[index + 1..].iter().map(|b| &b[..]))
            .take(MAX_BATCH)
            .map(IoSlice::new)
            .collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && index < bufs.len() {
            let left = bufs[index].len() - offset;
            if n >= left {
                n -= left;
                index += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// An error answer on the fast path: rendered as through axum.
async fn write_error(
    writer: &mut (impl AsyncWrite + Unpin),
    error: ApiError,
    cors: &str,
    timeout: Duration,
) -> io::Result<()> {
    let answer = response::error(&error);
    let bufs = [answer.http1_head(cors), answer.body.clone()];
    write_with_timeout(writer, &bufs, timeout).await?;
    writer.shutdown().await
}

/// A viewer socket's write half, cut when it accepts no bytes for `timeout`.
///
/// Written here rather than `tokio_io_timeout::TimeoutWriter` (which the hyper path
/// uses) because that one holds a timer from the start: 112 bytes per idle viewer, a
/// twentieth of what a viewer costs. This one makes its timer the first time a write
/// has to wait, and arms it only while one waits: nothing per delivery (a timeout
/// built per write cost a clock read and a shared reference count each time).
struct LazyTimeoutWriter<W> {
    half: W,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl<W: AsyncWrite + Unpin> LazyTimeoutWriter<W> {
    fn new(half: W, timeout: Duration) -> Self {
        LazyTimeoutWriter {
            half,
            timeout,
            timer: None,
            armed: false,
        }
    }

    /// After the socket said "not now": `Ready(Err)` once it has not taken a byte for
    /// the timeout.
    fn poll_timeout(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.armed {
            let deadline = tokio::time::Instant::now() + self.timeout;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        let timer = self.timer.as_mut().expect("armed above");
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                Poll::Ready(io::ErrorKind::TimedOut.into())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Passes a poll's outcome on; progress disarms the timer, waiting runs it.
    fn checked<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_timeout(cx).map(Err),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for LazyTimeoutWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.half).poll_write(cx, buf);
        this.checked(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.half).poll_write_vectored(cx, bufs);
        this.checked(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.half.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.half).poll_flush(cx);
        this.checked(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.half).poll_shutdown(cx);
        this.checked(cx, r)
    }
}

/// A stream that first yields `prefix` (bytes already read), then reads from `inner`.
struct Prefixed<S> {
    prefix: Bytes,
    inner: Pin<Box<S>>,
}

impl<S: AsyncRead> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_requests_take_the_fast_path() {
        let r = ViewerRequest::parse(
            b"GET /v1/videos/abc/events?last_event_id=4&token=t HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.video, Some("abc"));
        assert_eq!(r.query, Some("last_event_id=4&token=t"));
        assert_eq!(r.last_event_id, Some(&b"7"[..]));
        assert_eq!(r.origin, None);
        let r = ViewerRequest::parse(
            b"GET /v1/videos/abc/events HTTP/1.1\r\nOrigin: https://a.example\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.origin, Some(&b"https://a.example"[..]));
        let r = ViewerRequest::parse(b"GET /v1/stream?topics=video:a HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.video, None);
        assert_eq!(r.query, Some("topics=video:a"));
    }

    #[test]
    fn a_target_that_is_no_uri_is_told_apart() {
        assert!(target_is_uri(b"GET /v1/stream/x/topics HTTP/1.1\r\n\r\n"));
        assert!(target_is_uri(
            b"DELETE /v1/stream/x.%3E/topics/video:a HTTP/1.1\r\n\r\n"
        ));
        assert!(!target_is_uri(
            b"DELETE /v1/stream/x.>/topics/video:a HTTP/1.1\r\n\r\n"
        ));
        assert!(!target_is_uri(b"GET /v1/stream/<x> HTTP/1.1\r\n\r\n"));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /healthz HTTP/1.1\r\n\r\n",
            b"POST /v1/videos/abc/events HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET /v1/videos/abc/events HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            b"GET /v1/videos/abc HTTP/1.1\r\n\r\n",
            b"GET /v1/stream/abc/topics HTTP/1.1\r\n\r\n",
            b"POST /v1/stream HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(
                ViewerRequest::parse(head).is_none(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[tokio::test]
    async fn a_socket_that_takes_nothing_is_cut_after_the_write_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut writer = LazyTimeoutWriter::new(server, Duration::from_millis(200));
        assert!(writer.timer.is_none(), "no timer until a write waits");
        let chunk = Bytes::from(vec![0u8; 64 * 1024]);
        let started = tokio::time::Instant::now();
        // The client never reads: the kernel buffers fill, then the timeout cuts.
        let err = loop {
            if let Err(e) = write_all_vectored(&mut writer, std::slice::from_ref(&chunk)).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(client);
    }

    #[tokio::test]
    async fn vectored_writes_survive_partial_writes() {
        let (mut a, mut b) = tokio::io::duplex(7);
        let bufs: Vec<Bytes> = (0..20)
            .map(|i| Bytes::from(format!("frame-{i};")))
            .collect();
        let want: Vec<u8> = bufs.iter().flat_map(|b| b.to_vec()).collect();
        let writer = tokio::spawn(async move {
            write_all_vectored(&mut a, &bufs).await.unwrap();
        });
        let mut got = vec![0u8; want.len()];
        b.read_exact(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, want);
    }
}
