//! One viewer's event stream: `retry:` and `snapshot` first, then the comments it missed
//! (from the room's ring or from JetStream), then live frames, until the node drains, the
//! viewer falls too far behind, or its token expires (`event: expired`, then the end).
//!
//! The viewer's queue is the room's bounded broadcast ring: a viewer that falls more
//! than `--viewer-queue` frames behind is disconnected (its browser resumes with
//! `Last-Event-ID` and loses nothing) and never slows the others. Everything a viewer
//! receives comes through that one queue, so a delivery is one wake-up.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use crate::cursor::Cursor;
use crate::history::Stored;
use crate::room::Snapshot;
use crate::rooms::Membership;
use crate::sse::{self, Frame, Kind};

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
    cursor: Cursor,
    drain: Duration,
    drain_at: Option<Instant>,
    /// Frames were lost to the bounded queue: the stream ends (the client resumes).
    lagged: bool,
    /// When the viewer's token expires: `expired` is sent then, and the stream ends.
    expires_at: Option<Instant>,
    /// `expired` was handed out: nothing more.
    ended: bool,
    /// Acceptance time of the oldest frame handed out since the last latency sample.
    oldest_ms: i64,
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
        let shared = membership.shared().clone();
        if !room.ready(READY_TIMEOUT).await {
            return Err(OpenError::NotReady);
        }
        let (feed, snap) = room.join(cursor.as_deref());
        let config = &shared.config;
        let retry_ms = {
            let base = config.retry.as_millis() as u64;
            rand::rng().random_range(base..=base * 2)
        };
        let mut prelude = VecDeque::from([sse::prelude(retry_ms, snap.likes, snap.viewers)]);
        let mut end_after_prelude = false;
        // After the prelude the viewer has everything up to the room's position.
        let mut position: Cursor = snap.positions.iter().map(|p| p.last_seq).collect();

        if let Some(cursor) = cursor {
            let outcome = resume(&membership, &cursor, &snap).await;
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
            cursor: position,
            drain: config.drain,
            drain_at: None,
            lagged: false,
            expires_at: None,
            ended: false,
            oldest_ms: 0,
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
            let ms = self.drain.as_millis() as u64;
            let delay = Duration::from_millis(rand::rng().random_range(0..=ms));
            self.drain_at = Some(Instant::now() + delay);
        }
    }

    /// Ends the stream with `event: expired` at `exp` (the token's, seconds since the
    /// UNIX epoch); an `exp` too far ahead to represent is no limit.
    pub fn expire_at(&mut self, exp: u64) {
        let now_ms = u64::try_from(live_proto::now_ms()).unwrap_or(0);
        let left = Duration::from_millis(exp.saturating_mul(1000).saturating_sub(now_ms));
        self.expires_at = Instant::now().checked_add(left);
    }

    /// The next bytes to write, `None` to end the stream.
    pub async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        if let Some(b) = self.prelude.pop_front() {
            return Some(b);
        }
        if self.end_after_prelude || self.lagged {
            return None;
        }
        loop {
            // One wait per frame: the room's broadcast (and the drain or expiry deadline,
            // whichever comes first, if any).
            let deadline = match (self.drain_at, self.expires_at) {
                (Some(d), Some(e)) => Some(d.min(e)),
                (d, e) => d.or(e),
            };
            let received = match deadline {
                None => self.feed.recv().await,
                Some(at) => tokio::select! {
                    biased;
                    _ = tokio::time::sleep_until(at) => return self.deadline_passed(),
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
            if let Some(b) = self.prelude.pop_front() {
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
        }
        if frame.accepted_at_ms > 0
            && (self.oldest_ms == 0 || frame.accepted_at_ms < self.oldest_ms)
        {
            self.oldest_ms = frame.accepted_at_ms;
        }
        Some(frame.bytes)
    }

    /// Records the end-to-end latency of what was written since the last call (its
    /// oldest frame) and counts the frames: call after a write completed.
    pub fn record_written(&mut self, frames: usize) {
        let stats = crate::stats::get();
        stats.frames_out.increment(frames as u64);
        if self.oldest_ms > 0 {
            let ms = (live_proto::now_ms() - self.oldest_ms).max(0);
            stats.latency.record(ms as f64 / 1000.0);
            self.oldest_ms = 0;
        }
    }
}

fn lagged(missed: u64) {
    crate::stats::get().dropped_lagged.increment(1);
    tracing::debug!(missed, "viewer too slow, disconnecting");
}

enum Resume {
    /// Comments after the cursor; `complete` if they reach the live position.
    Frames { frames: Vec<Frame>, complete: bool },
    /// History before the cursor is gone (or the cursor is unknown).
    Reset(&'static str),
    /// History is unavailable right now: end after the snapshot, the client retries.
    Retry,
}

async fn resume(membership: &Membership, cursor: &[u64], snap: &Snapshot) -> Resume {
    let room = membership.room();
    let shared = membership.shared();
    let regions = &shared.regions;
    // A cursor beyond the newest comment is unknown (made up), except in another region's
    // sequence: a viewer who saw that region's comments live may be ahead of this
    // region's mirror of them (the mirror lags a little, and stalls while the gateway
    // between the regions is cut). It continues from its own position there.
    let own = regions.own_index();
    let unknown = cursor
        .iter()
        .zip(&snap.positions)
        .enumerate()
        .any(|(r, (c, p))| r == own && p.known && *c > p.last_seq);
    if unknown {
        return Resume::Reset("unknown resume point");
    }
    if snap.covers_cursor {
        return Resume::Frames {
            frames: snap.ring.clone(),
            complete: true,
        };
    }
    // The ring does not reach back far enough: read JetStream, a bounded number of
    // readers at a time.
    let Ok(_permit) = shared.replays.acquire().await else {
        return Resume::Retry;
    };
    let history = &shared.history;
    let max = shared.config.max_replay;
    let mut complete = true;
    let mut missed: Vec<VecDeque<Stored>> = Vec::with_capacity(cursor.len());
    for (r, (&after, position)) in cursor.iter().zip(&snap.positions).enumerate() {
        let upto = position.complete_since;
        if after >= upto {
            missed.push(VecDeque::new());
            continue;
        }
        let first = match history.first_comment_seq(r, &room.video).await {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!(video = %room.video, region = r, error = %e, "replay unavailable");
                return Resume::Retry;
            }
        };
        let truncated = match first {
            // Sequences are per stream, not per video: position 0 (the viewer saw none of
            // this region's comments, e.g. "east:0.west:7") is before any of them.
            Some(first) => after > 0 && first > after + 1,
            None => after < position.last_seq,
        };
        if truncated {
            return Resume::Reset("history before the resume point is no longer retained");
        }
        match history.comments(r, &room.video, after, upto, max).await {
            Ok(mut comments) => {
                let reached = comments.last().map_or(after, |(seq, _)| *seq);
                if reached < upto && comments.len() >= max {
                    complete = false;
                }
                // Deleted by a moderator: never replayed.
                comments.retain(|(seq, _)| !room.is_deleted(r, *seq));
                missed.push(comments.into());
            }
            Err(e) => {
                tracing::warn!(video = %room.video, region = r, error = %e, "replay failed");
                return Resume::Retry;
            }
        }
    }
    // Merge the regions by acceptance time, each region in its own order; every frame's
    // SSE id is the viewer's position right after it.
    let mut running = cursor.to_vec();
    let mut frames = Vec::new();
    while frames.len() < max {
        let next = missed
            .iter()
            .enumerate()
            .filter_map(|(r, q)| q.front().map(|(_, c)| (c.accepted_at_ms, r)))
            .min();
        let Some((_, r)) = next else { break };
        let Some((seq, comment)) = missed[r].pop_front() else {
            break;
        };
        running[r] = seq;
        frames.push(sse::comment(
            r as u8,
            seq,
            &regions.comment_id(r, seq),
            &regions.format_cursor(&running),
            &comment,
        ));
    }
    if missed.iter().any(|q| !q.is_empty()) {
        complete = false;
    }
    if complete {
        // Then the ring's comments, which start right after each region's replay.
        frames.extend(
            snap.ring
                .iter()
                .filter(|f| f.seq > running[usize::from(f.region)])
                .cloned(),
        );
    }
    Resume::Frames { frames, complete }
}
