//! One viewer's event stream: `retry:` and `snapshot` first, then the comments it missed
//! (from the room's ring or from JetStream), then live frames.
//!
//! The viewer's queue is the room's bounded broadcast ring: a viewer that falls more
//! than `--viewer-queue` frames behind is disconnected (its browser resumes with
//! `Last-Event-ID` and loses nothing) and never slows the others. Likes and viewer counts
//! are "latest value" channels: a slow viewer skips intermediate ones.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cursor::Cursor;
use crate::history::Stored;
use crate::room::{Feeds, Snapshot};
use crate::rooms::Membership;
use crate::sse::{self, Frame};

/// How long a viewer waits for its room to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Viewer {
    prelude: VecDeque<Bytes>,
    /// End the stream after the prelude (a partial replay: the client continues with
    /// the last id it got).
    end_after_prelude: bool,
    feeds: Feeds,
    /// The viewer's position per region: comments at or before it are not sent again.
    cursor: Cursor,
    stopping: watch::Receiver<bool>,
    drain: Duration,
    drain_at: Option<Instant>,
    _membership: Membership,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the video's live feed is not available yet")]
    NotReady,
}

impl Viewer {
    /// Opens a stream for a viewer resuming from `cursor` (its `Last-Event-ID`), if any.
    pub async fn open(
        membership: Membership,
        cursor: Option<Cursor>,
        stopping: watch::Receiver<bool>,
    ) -> Result<Viewer, OpenError> {
        let room = membership.room().clone();
        let shared = membership.shared().clone();
        if !room.ready(READY_TIMEOUT).await {
            return Err(OpenError::NotReady);
        }
        let (feeds, snap) = room.join(cursor.as_deref());
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
        Ok(Viewer {
            prelude,
            end_after_prelude,
            feeds,
            cursor: position,
            stopping,
            drain: config.drain,
            drain_at: None,
            _membership: membership,
        })
    }

    /// The next bytes to write, `None` to end the stream.
    pub async fn next(&mut self) -> Option<Bytes> {
        if let Some(b) = self.prelude.pop_front() {
            return Some(b);
        }
        if self.end_after_prelude {
            return None;
        }
        let far = Instant::now() + Duration::from_secs(86_400);
        loop {
            let wake = {
                let stopping = &mut self.stopping;
                let feeds = &mut self.feeds;
                tokio::select! {
                    biased;
                    _ = async { let _ = stopping.wait_for(|s| *s).await; }, if self.drain_at.is_none() => Wake::Stopping,
                    _ = tokio::time::sleep_until(self.drain_at.unwrap_or(far)), if self.drain_at.is_some() => Wake::Drained,
                    frame = feeds.frames.recv() => Wake::Frame(frame),
                    Ok(()) = feeds.likes.changed() => Wake::Latest(feeds.likes.borrow_and_update().clone()),
                    Ok(()) = feeds.viewers.changed() => Wake::Latest(feeds.viewers.borrow_and_update().clone()),
                }
            };
            match wake {
                Wake::Stopping => {
                    // Spread the reconnects of a node's viewers over the drain window.
                    let ms = self.drain.as_millis() as u64;
                    let delay = Duration::from_millis(rand::rng().random_range(0..=ms));
                    self.drain_at = Some(Instant::now() + delay);
                }
                Wake::Drained => return None,
                Wake::Frame(Ok(frame)) => {
                    if let Some(bytes) = self.take(frame) {
                        return Some(bytes);
                    }
                }
                Wake::Frame(Err(RecvError::Lagged(n))) => {
                    metrics::counter!("frontend_viewers_dropped_total", "reason" => "lagged")
                        .increment(1);
                    tracing::debug!(missed = n, "viewer too slow, disconnecting");
                    return None;
                }
                Wake::Frame(Err(RecvError::Closed)) => return None,
                Wake::Latest(Some(frame)) => {
                    record(&frame, 1);
                    return Some(frame.bytes);
                }
                Wake::Latest(None) => {}
            }
        }
    }

    /// The frame's bytes, unless it is a comment at or before the viewer's position
    /// (already replayed). The bytes are the room's shared buffer, never copied: hyper
    /// queues up to 16 of them and writes them with one `writev`, so a viewer that stops
    /// reading holds references to shared frames, not copies.
    fn take(&mut self, frame: Frame) -> Option<Bytes> {
        if frame.is_comment() {
            let position = &mut self.cursor[usize::from(frame.region)];
            if frame.seq <= *position {
                return None;
            }
            *position = frame.seq;
        }
        record(&frame, 1);
        Some(frame.bytes)
    }
}

fn record(frame: &Frame, n: u64) {
    metrics::counter!("frontend_frames_out_total").increment(n);
    if frame.accepted_at_ms > 0 {
        latency(frame.accepted_at_ms);
    }
}

/// End-to-end latency: publisher acceptance → handed to the viewer's socket.
fn latency(accepted_at_ms: i64) {
    let ms = (live_proto::now_ms() - accepted_at_ms).max(0);
    metrics::histogram!("frontend_delivery_latency_seconds").record(ms as f64 / 1000.0);
}

/// What woke a viewer up.
enum Wake {
    Stopping,
    Drained,
    Frame(Result<Frame, RecvError>),
    Latest(Option<Frame>),
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
    let unknown = cursor
        .iter()
        .zip(&snap.positions)
        .any(|(c, p)| p.known && *c > p.last_seq);
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
            Some(first) => first > after + 1,
            None => after < position.last_seq,
        };
        if truncated {
            return Resume::Reset("history before the resume point is no longer retained");
        }
        match history.comments(r, &room.video, after, upto, max).await {
            Ok(comments) => {
                let reached = comments.last().map_or(after, |(seq, _)| *seq);
                if reached < upto && comments.len() >= max {
                    complete = false;
                }
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
