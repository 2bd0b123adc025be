//! One viewer's event stream: `retry:` and `snapshot` first, then the comments it missed
//! (from the room's ring or from JetStream), then live frames, until the node drains, the
//! viewer falls too far behind, or its token expires (`event: expired`, then the end).
//!
//! The viewer's queue is the room's bounded broadcast ring: a viewer that falls more
//! than `--viewer-queue` frames behind is disconnected (its browser resumes with
//! `Last-Event-ID` and loses nothing) and never slows the others. Everything a viewer
//! receives comes through that one queue, so a delivery is one wake-up.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{Instant, Sleep};

use crate::cursor::Cursor;
use crate::registry::Membership;
use crate::sse::{self, Frame, Kind};

pub mod resume;

use resume::Resume;

/// How long a viewer waits for its room to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Viewer {
    prelude: VecDeque<Bytes>,
    /// End the stream after the prelude (a partial replay: the client continues with
    /// the last id it got).
    end_after_prelude: bool,
    /// The room's broadcast: comments, likes, viewer counts, heartbeats, drain.
    feed: broadcast::Receiver<Frame>,
    /// The viewer's position per region: comments at or before it are not sent again.
    cursor: Box<[u64]>,
    drain_at: Option<Instant>,
    /// Frames were lost to the bounded queue: the stream ends (the client resumes).
    lagged: bool,
    /// When the viewer's token expires: `expired` is sent then, and the stream ends.
    expires_at: Option<Instant>,
    /// The timer of the sooner of the two, made when one is set and kept armed: most
    /// viewers have none, and none is built per frame.
    deadline: Option<Pin<Box<Sleep>>>,
    /// `expired` was handed out: nothing more.
    ended: bool,
    /// Acceptance time of the oldest frame handed out since the last write.
    oldest_ms: i64,
    /// Frames written and not yet added to the node's counter, and writes since the
    /// last latency sample (see [`Viewer::record_written`]).
    unrecorded_frames: u64,
    writes: u32,
    _membership: Membership,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the video's live feed is not available yet")]
    NotReady,
}

impl Viewer {
    /// Opens a stream for a viewer resuming from `cursor` (its `Last-Event-ID`), if any.
    /// `draining`: the node is already shutting down.
    pub async fn open(
        membership: Membership,
        cursor: Option<Cursor>,
        draining: bool,
    ) -> Result<Viewer, OpenError> {
        let room = membership.room().clone();
        let node = membership.node().clone();
        if !room.ready(READY_TIMEOUT).await {
            return Err(OpenError::NotReady);
        }
        let (feed, snap) = room.join(cursor.as_deref());
        let settings = &node.settings;
        let retry_ms = settings.retry_window.pick_ms(&mut rand::rng());
        let mut prelude = VecDeque::from([sse::prelude(retry_ms, snap.likes, snap.viewers)]);
        let mut end_after_prelude = false;
        // After the prelude the viewer has everything up to the room's position.
        let mut position: Cursor = snap.positions.iter().map(|p| p.last_seq).collect();

        if let Some(cursor) = cursor {
            let outcome = resume::resume(&node, &room, &cursor, &snap).await;
            match outcome {
                Resume::Frames { frames, complete } => {
                    metrics::counter!("frontend_replayed_comments_total")
                        .increment(frames.len() as u64);
                    for (p, c) in position.iter_mut().zip(&cursor) {
                        *p = (*p).max(*c);
                    }
                    prelude.extend(frames.into_iter().map(|f| f.bytes));
                    end_after_prelude = !complete;
                }
                Resume::Reset(reason) => {
                    metrics::counter!("frontend_resets_total").increment(1);
                    prelude.push_back(sse::reset(reason, snap.likes, snap.viewers));
                }
                Resume::Retry => end_after_prelude = true,
            }
        }
        let mut viewer = Viewer {
            prelude,
            end_after_prelude,
            feed,
            cursor: position.into_boxed_slice(),
            drain_at: None,
            lagged: false,
            expires_at: None,
            deadline: None,
            ended: false,
            oldest_ms: 0,
            unrecorded_frames: 0,
            writes: 0,
            _membership: membership,
        };
        if draining {
            viewer.start_drain();
        }
        Ok(viewer)
    }

    /// The stream ends at a random moment within the drain window, so a node's viewers
    /// reconnect to the other nodes spread out.
    fn start_drain(&mut self) {
        if self.drain_at.is_none() {
            let ms = self._membership.node().settings.drain.as_millis() as u64;
            let delay = Duration::from_millis(rand::rng().random_range(0..=ms));
            self.drain_at = Some(Instant::now() + delay);
            self.arm();
        }
    }

    /// Ends the stream with `event: expired` at `exp` (the token's, seconds since the
    /// UNIX epoch); an `exp` too far ahead to represent is no limit.
    pub fn expire_at(&mut self, exp: u64) {
        let now_ms = u64::try_from(live_proto::now_ms()).unwrap_or(0);
        let left = Duration::from_millis(exp.saturating_mul(1000).saturating_sub(now_ms));
        self.expires_at = Instant::now().checked_add(left);
        self.arm();
    }

    /// (Re)sets the deadline timer to the sooner of drain and expiry.
    fn arm(&mut self) {
        let at = match (self.drain_at, self.expires_at) {
            (Some(d), Some(e)) => d.min(e),
            (Some(d), None) => d,
            (None, Some(e)) => e,
            (None, None) => return,
        };
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// The next bytes to write, `None` to end the stream.
    pub async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        if let Some(b) = self.pop_prelude() {
            return Some(b);
        }
        if self.end_after_prelude || self.lagged {
            return None;
        }
        loop {
            // One wait per frame: the room's broadcast (and the drain or expiry deadline,
            // whichever comes first, if any).
            let received = match self.deadline.as_mut() {
                None => self.feed.recv().await,
                Some(sleep) => tokio::select! {
                    biased;
                    _ = sleep.as_mut() => return self.deadline_passed(),
                    r = self.feed.recv() => r,
                },
            };
            match received {
                Ok(frame) => {
                    if let Some(bytes) = self.take(frame) {
                        return Some(bytes);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    lagged(n);
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The next bytes of the prelude; once it is empty its buffer is freed (a replay
    /// of thousands of comments must not stay allocated for the stream's life).
    fn pop_prelude(&mut self) -> Option<Bytes> {
        let b = self.prelude.pop_front();
        if self.prelude.is_empty() && self.prelude.capacity() > 0 {
            self.prelude = VecDeque::new();
        }
        b
    }

    /// Puts `bytes` (the answer's head) before everything else the stream writes, so
    /// they go out with the first batch.
    pub fn prepend(&mut self, bytes: Bytes) {
        self.prelude.push_front(bytes);
    }

    /// The drain or expiry deadline passed: the stream ends, with `expired` first if the
    /// token expired.
    fn deadline_passed(&mut self) -> Option<Bytes> {
        self.ended = true;
        let expired = self.expires_at.is_some_and(|e| e <= Instant::now());
        if !expired {
            return None;
        }
        metrics::counter!("frontend_streams_expired_total").increment(1);
        Some(sse::expired("token expired"))
    }

    /// Waits for the next bytes to write, then adds whatever else is already queued, up
    /// to `max` frames, so they go out with one `writev`. `false` ends the stream.
    pub async fn next_batch(&mut self, out: &mut Vec<Bytes>, max: usize) -> bool {
        let Some(first) = self.next().await else {
            return false;
        };
        out.push(first);
        while out.len() < max && !self.ended {
            if let Some(b) = self.pop_prelude() {
                out.push(b);
                continue;
            }
            if self.end_after_prelude {
                break;
            }
            match self.feed.try_recv() {
                Ok(frame) => {
                    if let Some(b) = self.take(frame) {
                        out.push(b);
                    }
                }
                Err(TryRecvError::Lagged(n)) => {
                    // The receiver skipped ahead: end after this batch, never
                    // silently past a gap.
                    lagged(n);
                    self.lagged = true;
                    break;
                }
                Err(_) => break,
            }
        }
        true
    }

    /// The frame's bytes, unless it is a comment at or before the viewer's position
    /// (already replayed) or the drain signal. The bytes are the room's shared buffer,
    /// never copied.
    fn take(&mut self, frame: Frame) -> Option<Bytes> {
        match frame.kind {
            Kind::Drain => {
                self.start_drain();
                return None;
            }
            Kind::Comment => {
                let position = &mut self.cursor[usize::from(frame.region)];
                if frame.seq <= *position {
                    return None;
                }
                *position = frame.seq;
            }
            Kind::Likes | Kind::Viewers | Kind::Heartbeat | Kind::Deleted => {}
            // Events of other topic kinds: not on a video's stream.
            Kind::Typing | Kind::Read | Kind::Presence => return None,
        }
        if frame.accepted_at_ms > 0
            && (self.oldest_ms == 0 || frame.accepted_at_ms < self.oldest_ms)
        {
            self.oldest_ms = frame.accepted_at_ms;
        }
        Some(frame.bytes)
    }

    /// Counts the frames of a completed write and, for one write in
    /// [`LATENCY_SAMPLE`], records the end-to-end latency of its oldest frame.
    ///
    /// Both metrics are shared by every viewer of the node, on every core: bumping them
    /// on every write made the cores fight over their cache lines at millions of
    /// deliveries a second. The counter is added in steps of [`COUNT_STEP`] (and the rest
    /// when the stream ends); one sample in 16 writes per viewer keeps the histogram's
    /// shape at a sixteenth of its cost.
    pub fn record_written(&mut self, frames: usize) {
        let stats = crate::stats::get();
        self.unrecorded_frames += frames as u64;
        if self.unrecorded_frames >= COUNT_STEP {
            stats
                .frames_out
                .increment(std::mem::take(&mut self.unrecorded_frames));
        }
        if self.oldest_ms > 0 {
            self.writes = self.writes.wrapping_add(1);
            if self.writes % LATENCY_SAMPLE == 1 {
                let ms = (live_proto::now_ms() - self.oldest_ms).max(0);
                stats.latency.record(ms as f64 / 1000.0);
            }
            self.oldest_ms = 0;
        }
    }
}

/// Frames counted per viewer before they are added to the node's counter.
const COUNT_STEP: u64 = 64;
/// One write in this many (per viewer) is a latency sample.
const LATENCY_SAMPLE: u32 = 16;

impl Drop for Viewer {
    fn drop(&mut self) {
        if self.unrecorded_frames > 0 {
            crate::stats::get()
                .frames_out
                .increment(self.unrecorded_frames);
        }
    }
}

fn lagged(missed: u64) {
    crate::stats::get().dropped_lagged.increment(1);
    tracing::debug!(missed, "viewer too slow, disconnecting");
}
