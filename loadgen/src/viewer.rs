//! One SSE viewer: a raw HTTP/1.1 GET on a tokio socket bound to a chosen source address,
//! read with a per-thread buffer (an idle connection holds no read buffer), reconnecting
//! with `Last-Event-ID` until the task is aborted.
//!
//! Like `EventSource`, a viewer whose open stream ended waits exactly the server's
//! `retry:` before it reconnects (the server jitters it); failed attempts back off. With
//! `--failover` a failed attempt moves on to the next frontend at once ([`failover`]).
//! A stream that breaks while measuring is an outage, counted until the viewer is back
//! and has a comment accepted after the break ([`Stats::stream_broke`]).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::MutexGuard;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};

use crate::audience::{Audience, Slot};
use crate::cli::Server;
use crate::failover;
use crate::response::{Decoder, Fed};
use crate::stats::{self, Counts, Phase, Shard, Stats};
use crate::target::Target;
use sse_parse::Item;

/// Bytes read from a socket per `try_read`; shared by all connections of a worker thread.
const READ_BUF: usize = 32 * 1024;

thread_local! {
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// What survives reconnects.
#[derive(Debug, Default)]
struct State {
    /// Highest comment id seen: duplicate detection and the `Last-Event-ID` to resume from.
    last_id: u64,
    /// The server's `retry:` in ms.
    retry_ms: Option<u64>,
    /// Consecutive sessions that failed before opening.
    failures: u32,
    /// nchan: the last message's raw `id:` (`time:tag`), to resume from.
    raw_id: Vec<u8>,
    /// UNIX ms its open stream broke, while measuring, until it has caught up (0: not
    /// in an outage).
    down_since_ms: u64,
    /// In the outage, a stream is open again (its return was counted).
    back: bool,
}

/// Runs viewer `i` of the audience until aborted (or its first end, without reconnects).
pub async fn run(aud: std::sync::Arc<Audience>, i: usize) {
    let g = aud.offset + i;
    let video = &aud.videos[g % aud.videos.len()];
    let n = aud.targets.len();
    let own = (g / aud.videos.len()) % n;
    // With --failover: the step of this viewer's order it is at (see `failover`).
    let mut step = 0;
    let source = (!aud.source_ips.is_empty()).then(|| aud.source_ips[g % aud.source_ips.len()]);
    let shard = aud.stats.shard(i);
    let slot = &aud.slots[i];
    let mut st = State::default();
    let mut rng = (g as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    loop {
        let target = &aud.targets[if aud.failover {
            failover::target(g, n, step)
        } else {
            own
        }];
        let mut opened = false;
        let result = session(
            &aud,
            target,
            video,
            source,
            &mut st,
            shard,
            slot,
            i,
            &mut opened,
        )
        .await;
        let mut tally = Counts::default();
        if opened {
            tally.disconnects = 1;
            slot.open.store(false, Relaxed);
            st.failures = 0;
            let phase = aud.stats.phase();
            if (Phase::Measure..Phase::Done).contains(&phase) && st.down_since_ms == 0 {
                let now = now_us() / 1000;
                st.down_since_ms = now;
                st.back = false;
                aud.stats.stream_broke(now);
            }
        } else {
            tally.connect_failures = 1;
            st.failures += 1;
        }
        shard.counters.add(&tally);
        if let Err(e) = result {
            aud.log_error(format_args!(
                "viewer {g} ({video} via {}): {e:#}",
                target.addr
            ));
        }
        if !aud.reconnect {
            return;
        }
        if aud.failover && !opened {
            step += 1;
            if failover::try_next_now(st.failures, n) {
                // As a load balancer would: straight to a live node.
                continue;
            }
        }
        let wait = match st.retry_ms {
            // An open stream ended: exactly the server's `retry:`, as `EventSource`
            // waits (the server jitters it).
            Some(ms) if opened => ms,
            // The server's `retry:` (1 s without one), doubled for each of the first two
            // consecutive failures, at most 10 s, then jittered to 50–150 %.
            _ => {
                let base = st.retry_ms.unwrap_or(1000).clamp(100, 10_000);
                let ms = (base << st.failures.min(2)).min(10_000);
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                ms / 2 + rng % ms.max(1)
            }
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// One connection: connect, request, read events until the stream ends or breaks.
#[allow(clippy::too_many_arguments)]
async fn session(
    aud: &Audience,
    target: &Target,
    video: &str,
    source: Option<IpAddr>,
    st: &mut State,
    shard: &Shard,
    slot: &Slot,
    index: usize,
    opened: &mut bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + aud.connect_timeout;
    let sampled = aud.samples_likes(index);
    let mut stream = timeout_at(deadline, connect(target, source, aud.recv_buffer))
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))??;
    let path = match aud.server {
        Server::Ours => format!("/v1/videos/{video}/events"),
        Server::Nchan => format!("/sub/{video}"),
    };
    let mut req = format!(
        "GET {}{path}{} HTTP/1.1\r\nHost: {}\r\n\
         Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: loadgen\r\n",
        target.prefix, aud.query, target.host
    );
    if st.last_id > 0 {
        req.push_str(&format!("Last-Event-ID: {}\r\n", st.last_id));
    } else if let Ok(raw) = std::str::from_utf8(&st.raw_id)
        && !raw.is_empty()
    {
        req.push_str(&format!("Last-Event-ID: {raw}\r\n"));
    }
    req.push_str("\r\n");
    timeout_at(deadline, stream.write_all(req.as_bytes()))
        .await
        .map_err(|_| anyhow::anyhow!("request write timed out"))??;
    let mut dec = Decoder::default();
    loop {
        if dec.is_open() {
            stream.readable().await?;
        } else {
            timeout_at(deadline, stream.readable())
                .await
                .map_err(|_| anyhow::anyhow!("no response head in time"))??;
        }
        let step = BUF.with_borrow_mut(|buf| match stream.try_read(buf) {
            Ok(0) => Ok(None),
            Ok(n) => {
                let mut batch = Batch::new(shard, st, aud.stats.phase() >= Phase::Measure);
                batch.server = aud.server;
                batch.recovery = Some(&aud.stats);
                batch.sample_likes = sampled;
                batch.tally.bytes = n as u64;
                let fed = dec.feed(&buf[..n], &mut |item| batch.on_item(item));
                batch.finish(slot);
                fed.map(Some).map_err(anyhow::Error::from)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Some(Fed::default())),
            Err(e) => Err(e.into()),
        })?;
        match step {
            None if *opened => return Ok(()),
            None => anyhow::bail!("connection closed before the response head"),
            Some(fed) => {
                if fed.opened {
                    *opened = true;
                    slot.open.store(true, Relaxed);
                    shard.counters.connects.fetch_add(1, Relaxed);
                    if st.down_since_ms > 0 && !st.back {
                        st.back = true;
                        aud.stats.reconnected(st.down_since_ms, now_us() / 1000);
                    }
                }
                if fed.ended {
                    return Ok(());
                }
            }
        }
    }
}

/// Opens the TCP connection, bound to `source` when given.
async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    recv_buffer: u32,
) -> std::io::Result<TcpStream> {
    let sock = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if recv_buffer > 0 {
        sock.set_recv_buffer_size(recv_buffer)?;
    }
    if let Some(ip) = source {
        bind_address_no_port(&sock);
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    sock.connect(target.addr).await
}

/// Lets the kernel pick the source port at `connect` time, per destination, so one source
/// address serves more than the ephemeral range across several frontends. Best effort.
#[cfg(target_os = "linux")]
fn bind_address_no_port(sock: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a c_int option value of the stated size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn bind_address_no_port(_sock: &TcpSocket) {}

/// Recording of one read's worth of events: counters are summed locally and flushed once,
/// the histogram lock is taken at most once.
struct Batch<'a> {
    tally: Counts,
    shard: &'a Shard,
    hist: Option<MutexGuard<'a, Histogram<u64>>>,
    now_us: u64,
    st: &'a mut State,
    measuring: bool,
    window: u64,
    server: Server,
    /// Record the likes totals seen (in the window).
    sample_likes: bool,
    likes_seen: Vec<(u64, u64)>,
    /// Where an outage's end is counted (none in unit tests).
    recovery: Option<&'a Stats>,
}

impl<'a> Batch<'a> {
    fn new(shard: &'a Shard, st: &'a mut State, measuring: bool) -> Self {
        Batch {
            tally: Counts::default(),
            shard,
            hist: None,
            now_us: 0,
            st,
            measuring,
            window: 0,
            server: Server::Ours,
            sample_likes: false,
            likes_seen: Vec::new(),
            recovery: None,
        }
    }

    fn now_us(&mut self) -> u64 {
        if self.now_us == 0 {
            self.now_us = now_us();
        }
        self.now_us
    }

    fn on_item(&mut self, item: Item<'_>) {
        let e = match item {
            Item::Event(e) => e,
            Item::Comment(_) => {
                self.tally.heartbeats += 1;
                return;
            }
            Item::Retry(ms) => {
                self.st.retry_ms = Some(ms);
                return;
            }
        };
        self.tally.events += 1;
        let is_comment = match self.server {
            Server::Ours => e.name == b"comment",
            // nchan sends what was published, as unnamed (`message`) events.
            Server::Nchan => e.name.is_empty() || e.name == b"message",
        };
        if is_comment {
            self.comment(e);
            return;
        }
        let t = &mut self.tally;
        match e.name {
            b"likes" => match serde_json::from_slice::<LikesData>(e.data) {
                Ok(l) => {
                    t.likes_events += 1;
                    t.likes_sum += l.count;
                    if self.sample_likes && self.measuring {
                        let now = self.now_us();
                        self.likes_seen.push((l.total, now));
                    }
                }
                Err(_) => t.bad_events += 1,
            },
            b"snapshot" => t.snapshots += 1,
            b"viewers" => t.viewer_counts += 1,
            b"reset" => t.resets += 1,
            _ => t.other_events += 1,
        }
    }

    fn comment(&mut self, e: sse_parse::Event<'_>) {
        let t = &mut self.tally;
        let Ok(c) = serde_json::from_slice::<CommentData>(e.data) else {
            t.bad_events += 1;
            return;
        };
        match self.server {
            Server::Ours => {
                let id =
                    e.id.and_then(|i| std::str::from_utf8(i).ok()?.parse().ok())
                        .or(c.id);
                if let Some(id) = id {
                    if id <= self.st.last_id {
                        t.duplicates += 1;
                        return;
                    }
                    self.st.last_id = id;
                }
            }
            // nchan's ids (`time:tag`) are not ordered numbers: comments are counted per
            // viewer (loss and excess against what was published), and the raw id is only
            // kept to resume from.
            Server::Nchan => {
                if let Some(id) = e.id {
                    self.st.raw_id.clear();
                    self.st.raw_id.extend_from_slice(id);
                }
            }
        }
        t.comments += 1;
        self.window += u64::from(self.measuring);
        let now = self.now_us();
        self.outage_over(c.ts, now / 1000);
        let lat = now.saturating_sub((c.ts.max(0.0) * 1000.0) as u64);
        let shard = self.shard;
        let h = self
            .hist
            .get_or_insert_with(|| shard.latency.lock().unwrap_or_else(|e| e.into_inner()));
        stats::record(h, lat);
    }

    /// A comment accepted at `ts_ms` arrived at `now_ms`: if it was accepted after the
    /// viewer's stream broke, the viewer has caught up (and is surely back).
    fn outage_over(&mut self, ts_ms: f64, now_ms: u64) {
        let since = self.st.down_since_ms;
        if since == 0 || ts_ms < since as f64 {
            return;
        }
        if let Some(stats) = self.recovery {
            if !self.st.back {
                stats.reconnected(since, now_ms);
            }
            stats.caught_up(since, now_ms);
        }
        self.st.down_since_ms = 0;
        self.st.back = true;
    }

    fn finish(self, slot: &Slot) {
        drop(self.hist);
        if !self.likes_seen.is_empty() {
            slot.likes_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&self.likes_seen);
        }
        self.shard.counters.add(&self.tally);
        if self.window > 0 {
            slot.window_comments.fetch_add(self.window, Relaxed);
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The fields of a `comment` event that matter here.
#[derive(Deserialize)]
struct CommentData {
    #[serde(default, deserialize_with = "id_string_or_number")]
    id: Option<u64>,
    /// When the publisher accepted it, UNIX ms.
    ts: f64,
}

#[derive(Deserialize)]
struct LikesData {
    count: u64,
    #[serde(default)]
    total: u64,
}

/// A comment id as `"123"` or `123`; anything else counts as no id.
fn id_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct IdVisitor;
    impl Visitor<'_> for IdVisitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a decimal id")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.parse().ok())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(IdVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sse_parse::Event;

    #[test]
    fn counts_comments_duplicates_and_likes() {
        let shard = Shard {
            counters: Default::default(),
            latency: std::sync::Mutex::new(stats::new_histogram()),
        };
        let slot = Slot::default();
        let mut st = State::default();
        let ts = live_proto::now_ms();
        let data = format!(r#"{{"id":"5","user":"u","text":"a \"ts\": 1","ts":{ts}}}"#);
        let mut b = Batch::new(&shard, &mut st, true);
        let comment = |id: Option<&'static [u8]>| {
            Item::Event(Event {
                name: b"comment",
                data: data.as_bytes(),
                id,
            })
        };
        b.on_item(comment(Some(b"5")));
        b.on_item(comment(Some(b"5")));
        b.on_item(comment(None)); // falls back to the JSON id: a duplicate too
        b.on_item(Item::Event(Event {
            name: b"likes",
            data: br#"{"count":3,"total":10}"#,
            id: None,
        }));
        b.on_item(Item::Comment(b" heartbeat"));
        b.finish(&slot);
        let c = shard.counters.load();
        assert_eq!((c.events, c.comments, c.duplicates), (4, 1, 2));
        assert_eq!((c.likes_events, c.likes_sum, c.heartbeats), (1, 3, 1));
        assert_eq!(slot.window_comments.load(Relaxed), 1);
        assert_eq!(st.last_id, 5);
        let h = shard.latency.lock().unwrap();
        assert_eq!(h.len(), 1);
        assert!(h.max() < 5_000_000, "latency {} µs", h.max());
    }

    #[test]
    fn an_outage_ends_with_a_comment_accepted_after_the_break() {
        let stats = Stats::default();
        let shard = stats.shard(0);
        let mut st = State {
            down_since_ms: 10_000,
            ..State::default()
        };
        stats.stream_broke(10_000);
        let mut b = Batch::new(shard, &mut st, true);
        b.recovery = Some(&stats);
        b.outage_over(9_990.0, 12_000); // replayed, accepted before the break
        assert_eq!(stats.recovery().caught_up, 0);
        b.outage_over(10_500.0, 12_500);
        b.outage_over(10_600.0, 12_600); // over already
        drop(b);
        let r = stats.recovery();
        assert_eq!((r.dropped, r.reconnected, r.caught_up), (1, 1, 1));
        assert_eq!((r.first_drop_ms, r.last_caught_up_ms), (10_000, 12_500));
        assert_eq!(r.max_caught_up_ms, 2_500);
        assert_eq!(st.down_since_ms, 0);
    }

    #[test]
    fn nchan_comments_are_unnamed_and_counted_not_deduplicated() {
        let shard = Shard {
            counters: Default::default(),
            latency: std::sync::Mutex::new(stats::new_histogram()),
        };
        let slot = Slot::default();
        let mut st = State::default();
        let ts = live_proto::now_ms();
        let data = format!(r#"{{"id":"1","user":"u","text":"hi","ts":{ts}}}"#);
        let mut b = Batch::new(&shard, &mut st, true);
        b.server = Server::Nchan;
        for _ in 0..2 {
            b.on_item(Item::Event(Event {
                name: b"",
                data: data.as_bytes(),
                id: Some(b"1795703025:0"),
            }));
        }
        b.on_item(Item::Event(Event {
            name: b"",
            data: b"not json",
            id: None,
        }));
        b.finish(&slot);
        let c = shard.counters.load();
        assert_eq!(
            (c.events, c.comments, c.duplicates, c.bad_events),
            (3, 2, 0, 1)
        );
        assert_eq!(slot.window_comments.load(Relaxed), 2);
        assert_eq!((st.last_id, &st.raw_id[..]), (0, &b"1795703025:0"[..]));
    }

    #[test]
    fn sampled_viewers_keep_the_likes_totals_they_see() {
        let shard = Shard {
            counters: Default::default(),
            latency: std::sync::Mutex::new(stats::new_histogram()),
        };
        let slot = Slot::default();
        let mut st = State::default();
        let mut b = Batch::new(&shard, &mut st, true);
        b.sample_likes = true;
        b.on_item(Item::Event(Event {
            name: b"likes",
            data: br#"{"count":2,"total":42}"#,
            id: None,
        }));
        b.finish(&slot);
        let seen = slot.likes_seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, 42);
    }
}
