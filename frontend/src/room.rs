//! A room: everything one frontend node knows about one live video. Its task owns the
//! node's single NATS subscription for the video (`live.v1.{video}.*`) and turns what
//! arrives into shared [`Frame`]s:
//!
//! - comments (republished by JetStream with their sequence) are checked for gaps with
//!   `Nats-Last-Sequence`, backfilled from JetStream when one is found, kept in a small
//!   ring for resuming viewers, and broadcast one by one;
//! - likes are coalesced into at most one `likes` frame per `--like-interval`;
//! - presence messages of all frontends are summed into the `viewers` count, sent at
//!   most once a second when it changes;
//! - a heartbeat frame every `--heartbeat`;
//! - tombstones of comments a moderator deleted (`live.v1.{region}.{video}.deleted`, and
//!   all of them read from JetStream when the room opens) remove the comment from the
//!   ring, keep it out of every later broadcast and replay, and go out as
//!   `comment_deleted`. They are on their own subject, so the comments' gap detection
//!   never sees them.
//!
//! The last viewer leaving starts a grace period; after it the room unsubscribes and
//! removes itself from the table.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use live_proto::subjects::{self, LiveKind};
use live_proto::{Regions, VideoId, v1};
use prost::Message as _;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::coalesce::LikeCoalescer;
use crate::history::{HistoryError, Stored};
use crate::rooms::Shared;
use crate::sequencer::{Read, Sequencer, Step};
use crate::sse::{self, Frame};

pub struct Room {
    pub video: VideoId,
    state: Mutex<RoomState>,
    tx: broadcast::Sender<Frame>,
    ready: watch::Sender<bool>,
    /// Viewers of this video on this node; changed only under the rooms table lock
    /// (join) or by a leaving viewer.
    local_viewers: AtomicU64,
    idle: Notify,
}

/// Where the room is in one region's comment sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Sequence of the newest comment broadcast.
    pub last_seq: u64,
    /// Whether `last_seq` was read from JetStream (else the first live comment sets it).
    pub known: bool,
    /// Every comment with a higher sequence is in the ring.
    pub complete_since: u64,
}

/// What the room shares with joining viewers, under a std mutex: every critical
/// section is short and none awaits.
struct RoomState {
    /// Durable likes total per region (index in `--regions`); the total is the sum.
    likes: Vec<u64>,
    viewers_total: u64,
    /// Position per region.
    positions: Vec<Position>,
    /// Recent comments of all regions, in the order they were broadcast.
    ring: VecDeque<Frame>,
    /// Per region: sequences of its comments deleted by a moderator.
    deleted: Vec<HashSet<u64>>,
    /// Per region: the newest tombstone read from its stream (0: none), `None` until the
    /// tombstones were read from JetStream once.
    tombstones: Vec<Option<u64>>,
}

impl RoomState {
    fn likes_total(&self) -> u64 {
        self.likes.iter().sum()
    }
}

/// What a joining viewer starts from.
pub struct Snapshot {
    pub likes: u64,
    pub viewers: u64,
    pub positions: Vec<Position>,
    /// The ring's comments after the viewer's cursor (all of them if the ring does not
    /// reach back to the cursor).
    pub ring: Vec<Frame>,
    /// Whether the ring reaches back to the cursor in every region (else JetStream must
    /// fill in).
    pub covers_cursor: bool,
}

impl Room {
    pub fn new(video: VideoId, queue: usize, regions: usize) -> Arc<Self> {
        Arc::new(Room {
            video,
            state: Mutex::new(RoomState {
                likes: vec![0; regions],
                viewers_total: 0,
                positions: vec![Position::default(); regions],
                ring: VecDeque::new(),
                deleted: vec![HashSet::new(); regions],
                tombstones: vec![None; regions],
            }),
            tx: broadcast::channel(queue.max(16)).0,
            ready: watch::channel(false).0,
            local_viewers: AtomicU64::new(0),
            idle: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn local_viewers(&self) -> u64 {
        self.local_viewers.load(Ordering::Relaxed)
    }

    /// Called by the rooms table, under its lock.
    pub(crate) fn enter(&self) {
        self.local_viewers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        if self.local_viewers.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle.notify_one();
        }
    }

    /// Waits until the room is subscribed and knows its initial state.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.ready.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r)).await,
            Ok(Ok(_))
        )
    }

    /// Subscribes a viewer whose position is `cursor` (if any): the feeds first, then
    /// the snapshot, so nothing falls between the two.
    pub fn join(&self, cursor: Option<&[u64]>) -> (broadcast::Receiver<Frame>, Snapshot) {
        let state = self.state();
        let feed = self.tx.subscribe();
        // Resuming viewers get the ring's comments after their cursor; where the ring
        // does not reach back to the cursor, all of it (JetStream supplies the rest).
        let (ring, covers_cursor) = match cursor {
            Some(c) => {
                let after = |f: &Frame| {
                    let r = usize::from(f.region);
                    c[r].max(state.positions[r].complete_since)
                };
                let ring = state
                    .ring
                    .iter()
                    .filter(|f| f.seq > after(f))
                    .cloned()
                    .collect();
                let covers = c
                    .iter()
                    .zip(&state.positions)
                    .all(|(c, p)| *c >= p.complete_since);
                (ring, covers)
            }
            None => (Vec::new(), true),
        };
        let snapshot = Snapshot {
            likes: state.likes_total(),
            viewers: state.viewers_total.max(1),
            positions: state.positions.clone(),
            ring,
            covers_cursor,
        };
        (feed, snapshot)
    }

    /// Encodes comment `seq` of region `r` (once, for every viewer), appends it to the
    /// ring and broadcasts it, under the state lock, so a joining viewer sees it either
    /// in the ring or in its feed.
    fn push_comment(
        &self,
        regions: &Regions,
        r: usize,
        seq: u64,
        comment: &v1::Comment,
        ring_capacity: usize,
    ) {
        let mut state = self.state();
        if seq <= state.positions[r].last_seq {
            return;
        }
        state.positions[r].last_seq = seq;
        state.positions[r].known = true;
        if state.deleted[r].contains(&seq) {
            // Deleted before it got here (a tombstone from another region came first).
            return;
        }
        let seqs: Vec<u64> = state.positions.iter().map(|p| p.last_seq).collect();
        let frame = sse::comment(
            r as u8,
            seq,
            &regions.comment_id(r, seq),
            &regions.format_cursor(&seqs),
            comment,
        );
        state.ring.push_back(frame.clone());
        while state.ring.len() > ring_capacity {
            if let Some(old) = state.ring.pop_front() {
                state.positions[usize::from(old.region)].complete_since = old.seq;
            }
        }
        let _ = self.tx.send(frame);
    }

    /// Whether comment `seq` of region `r` was deleted by a moderator.
    pub fn is_deleted(&self, r: usize, seq: u64) -> bool {
        self.state().deleted[r].contains(&seq)
    }

    /// Region `t`'s newest tombstone known here, `None` if not read yet.
    fn tombstones_upto(&self, t: usize) -> Option<u64> {
        self.state().tombstones[t]
    }

    /// Region `t`'s tombstones are to be read again from the start.
    fn forget_tombstones(&self, t: usize) {
        self.state().tombstones[t] = None;
    }

    /// Applies tombstones read from region `t`'s stream (`(sequence, tombstone)`,
    /// oldest first): each deleted comment leaves the ring and is never broadcast again,
    /// and viewers get `comment_deleted` for it.
    fn apply_deletions(
        &self,
        regions: &Regions,
        t: usize,
        tombstones: &[(u64, v1::CommentDeleted)],
    ) {
        let mut state = self.state();
        let upto = state.tombstones[t].get_or_insert(0);
        *upto = tombstones.iter().map(|(seq, _)| *seq).fold(*upto, u64::max);
        for (_, tombstone) in tombstones {
            let Some((r, seq)) = regions.parse_comment_id(&tombstone.id) else {
                undecodable();
                continue;
            };
            if state.deleted[r].insert(seq) {
                state
                    .ring
                    .retain(|f| !(f.is_comment() && usize::from(f.region) == r && f.seq == seq));
                metrics::counter!("frontend_comments_deleted_total").increment(1);
                let _ = self.tx.send(sse::comment_deleted(&tombstone.id));
            }
        }
    }

    /// Sends a frame to every viewer of the room.
    pub fn broadcast(&self, frame: Frame) {
        let _ = self.tx.send(frame);
    }
}

/// Other frontends' viewer counts for this video.
#[derive(Default)]
struct Presence {
    others: HashMap<String, (u64, Instant)>,
    published: Option<(u64, Instant)>,
    dirty: bool,
}

/// How soon a room reads again while a gap in a region's comments is open (the
/// partition's leader is being re-elected, a mirror is catching up).
const GAP_RETRY: Duration = Duration::from_millis(250);
/// Live comments a room holds back per region while a gap before them is open.
const MAX_HELD: usize = 4096;

/// A JetStream read a room started, with its outcome. Reads run in their own tasks and
/// report back on the room's channel: the room's loop never waits for JetStream.
enum ReadDone {
    /// Comments of region `r` after the room's position (a gap, a catch-up).
    Comments {
        r: usize,
        result: Result<Vec<Stored>, HistoryError>,
    },
    /// Region `r`'s newest stored comment sequence and likes total.
    Newest {
        r: usize,
        newest: Result<u64, HistoryError>,
        likes: Result<u64, HistoryError>,
    },
    /// Region `r`'s baseline, for a room that did not know it yet.
    Baseline { r: usize, baseline: Baseline },
    /// Region `t`'s tombstones after the newest one known.
    Tombstones {
        t: usize,
        result: Result<Vec<(u64, v1::CommentDeleted)>, HistoryError>,
    },
}

/// The room's task: runs until the room is idle past its grace period, or the node stops.
pub async fn run(room: Arc<Room>, shared: Arc<Shared>) {
    let video = room.video.clone();
    let subject = subjects::live_all(&video);
    let mut sub = loop {
        match shared.client.subscribe(subject.clone()).await {
            Ok(sub) => break sub,
            Err(e) => {
                tracing::warn!(%video, error = %e, "subscribe failed, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let regions = shared.regions.len();
    // Bounded: at most one comments read per region is in flight, plus the catch-ups.
    let (reads_tx, mut reads) = mpsc::channel(4 * regions + 4);
    let mut task = Task {
        seqs: (0..regions).map(|_| Sequencer::new(MAX_HELD)).collect(),
        retry_at: vec![None; regions],
        reads: reads_tx,
        likes: LikeCoalescer::new(shared.config.like_interval),
        room: room.clone(),
        shared: shared.clone(),
    };
    // The one read awaited: before the room is ready, so a joining viewer's snapshot
    // has the totals and positions. A partition that does not answer leaves its region
    // unknown; the first live comment or a later catch-up sets it.
    for r in 0..regions {
        match shared.history.deletions(r, &video, 0).await {
            Ok(tombstones) => room.apply_deletions(&shared.regions, r, &tombstones),
            Err(e) => {
                tracing::warn!(%video, region = r, error = %e, "tombstones unavailable; retrying")
            }
        }
        let baseline = load_baseline(&shared, &video, r, false).await;
        task.apply_baseline(r, baseline);
    }
    room.ready.send_replace(true);
    tracing::debug!(%video, "room open");

    let cfg = &shared.config;
    let mut presence = Presence {
        dirty: true,
        ..Default::default()
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval_at(Instant::now() + cfg.heartbeat, cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reconnects = shared.reconnects.clone();
    let mut grace: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut remote_check = Instant::now() + REMOTE_CHECK.mul_f64(rand::random_range(0.5..1.5));

    loop {
        let retry = task.retry_at.iter().flatten().min().copied();
        tokio::select! {
            msg = sub.next() => match msg {
                Some(msg) => task.on_message(&mut presence, msg),
                None => break,
            },
            Some(done) = reads.recv() => task.on_read(done),
            _ = tokio::time::sleep_until(retry.unwrap_or(far)), if retry.is_some() => {
                task.retry_due();
            }
            _ = tokio::time::sleep_until(remote_check), if shared.regions.is_multi() => {
                // Other regions' comments the live feed did not bring (the gateway was
                // cut) come from this region's mirrors.
                for r in (0..regions).filter(|&r| r != shared.regions.own_index()) {
                    task.catch_up(r);
                }
                remote_check = Instant::now() + REMOTE_CHECK.mul_f64(rand::random_range(0.5..1.5));
            }
            _ = tokio::time::sleep_until(task.likes.due().unwrap_or(far)), if task.likes.due().is_some() => {
                flush_likes(&room, &mut task.likes);
            }
            _ = tick.tick() => {
                presence_tick(&room, &shared, &mut presence).await;
                for t in 0..regions {
                    if room.tombstones_upto(t).is_none() {
                        task.read_tombstones(t, None);
                    }
                }
            }
            _ = heartbeat.tick() => room.broadcast(sse::heartbeat()),
            Ok(()) = reconnects.changed() => {
                // Reconnected (or messages were dropped): close any gap right away
                // instead of waiting for the next comment to reveal it.
                for r in 0..regions {
                    task.catch_up(r);
                }
            }
            _ = room.idle.notified() => {
                if room.local_viewers() == 0 {
                    grace = Some(Instant::now() + cfg.room_grace);
                }
            }
            _ = tokio::time::sleep_until(grace.unwrap_or(far)), if grace.is_some() => {
                grace = None;
                if shared.remove_if_idle(&room) {
                    break;
                }
            }
            _ = shared.stopped.cancelled() => break,
        }
    }
    // Tell the other frontends right away that this node has no viewers left.
    publish_presence(&room, &shared, 0).await;
    let _ = sub.unsubscribe().await;
    tracing::debug!(%video, "room closed");
}

/// A region's likes total and newest comment sequence, read when a room opens.
struct Baseline {
    likes: Result<u64, HistoryError>,
    /// `None` if the position was known already (not read).
    last: Option<Result<u64, HistoryError>>,
}

/// Reads region `r`'s durable likes total and, unless `known`, its newest comment
/// sequence from JetStream.
async fn load_baseline(shared: &Shared, video: &VideoId, r: usize, known: bool) -> Baseline {
    let likes = shared.history.likes_total(r, video).await;
    let last = if known {
        None
    } else {
        Some(shared.history.last_comment_seq(r, video).await)
    };
    Baseline { likes, last }
}

/// The room's loop state: one sequencer per region, the reads it started, likes.
struct Task {
    room: Arc<Room>,
    shared: Arc<Shared>,
    seqs: Vec<Sequencer<v1::Comment>>,
    /// Per region: when to read again while a gap stays open.
    retry_at: Vec<Option<Instant>>,
    reads: mpsc::Sender<ReadDone>,
    likes: LikeCoalescer,
}

impl Task {
    fn on_message(&mut self, presence: &mut Presence, msg: async_nats::Message) {
        let Some((region, _, kind)) = subjects::parse_live(&msg.subject) else {
            return;
        };
        let Some(r) = self.shared.regions.index_of(region) else {
            // A region this deployment does not list: not ours to count.
            return undecodable();
        };
        match kind {
            LiveKind::Comment => self.on_comment(r, msg),
            LiveKind::Deleted => self.on_tombstone(r, msg),
            LiveKind::Likes => match v1::Likes::decode(msg.payload) {
                Ok(l) => {
                    metrics::counter!("frontend_events_in_total", "kind" => "likes").increment(1);
                    {
                        let mut state = self.room.state();
                        state.likes[r] = state.likes[r].max(l.total);
                    }
                    self.likes.add(l.count, l.accepted_at_ms, Instant::now());
                }
                Err(_) => undecodable(),
            },
            LiveKind::Presence => match v1::Presence::decode(msg.payload) {
                Ok(p) if p.node != self.shared.node_id => {
                    let ttl = Duration::from_millis(p.ttl_ms.clamp(1_000, 300_000).into());
                    let known = presence
                        .others
                        .insert(p.node, (p.viewers.into(), Instant::now() + ttl))
                        .is_some();
                    if !known {
                        // A frontend we did not know: answer with our own count so it
                        // converges without waiting for our next refresh.
                        presence.dirty = true;
                    }
                    if p.viewers == 0 {
                        presence.others.retain(|_, (v, _)| *v > 0);
                    }
                }
                Ok(_) => {}
                Err(_) => undecodable(),
            },
        }
    }

    /// A comment republished by region `r`'s stream, with its sequence and the video's
    /// previous one in that stream.
    fn on_comment(&mut self, r: usize, msg: async_nats::Message) {
        let Some((seq, prev)) = sequences(&msg) else {
            return undecodable();
        };
        let comment = match v1::Comment::decode(msg.payload.clone()) {
            Ok(c) => c,
            Err(_) => return undecodable(),
        };
        metrics::counter!("frontend_events_in_total", "kind" => "comment").increment(1);
        let step = self.seqs[r].live(seq, prev, comment);
        if step.duplicate {
            metrics::counter!("frontend_duplicate_comments_total").increment(1);
        }
        if !step.duplicate && step.deliver.is_empty() {
            metrics::counter!("frontend_held_back_comments_total").increment(1);
        }
        self.apply(r, step);
    }

    /// A tombstone republished by region `t`'s stream: applied at once; if one before it
    /// was missed (its `Nats-Last-Sequence` is the video's previous tombstone in that
    /// stream), those are read from JetStream.
    fn on_tombstone(&mut self, t: usize, msg: async_nats::Message) {
        let Some((seq, prev)) = sequences(&msg) else {
            return undecodable();
        };
        let Ok(tombstone) = v1::CommentDeleted::decode(msg.payload) else {
            return undecodable();
        };
        metrics::counter!("frontend_events_in_total", "kind" => "deleted").increment(1);
        let known = self.room.tombstones_upto(t);
        if known.is_none_or(|upto| prev > upto) {
            // Missed some (or never read them): read from where we were.
            self.read_tombstones(t, known);
        }
        self.room
            .apply_deletions(&self.shared.regions, t, &[(seq, tombstone)]);
    }

    /// Reads region `t`'s tombstones after `after` (all of them for `None`).
    fn read_tombstones(&self, t: usize, after: Option<u64>) {
        self.spawn_read(move |shared, video| async move {
            let result = shared
                .history
                .deletions(t, &video, after.unwrap_or(0))
                .await;
            ReadDone::Tombstones { t, result }
        });
    }

    /// Runs a JetStream read in its own task; its outcome comes back on the room's
    /// channel (dropped if the room has ended meanwhile).
    fn spawn_read<F, Fut>(&self, read: F)
    where
        F: FnOnce(Arc<Shared>, VideoId) -> Fut,
        Fut: std::future::Future<Output = ReadDone> + Send + 'static,
    {
        let (tx, fut) = (
            self.reads.clone(),
            read(self.shared.clone(), self.room.video.clone()),
        );
        tokio::spawn(async move {
            let _ = tx.send(fut.await).await;
        });
    }

    fn on_read(&mut self, done: ReadDone) {
        match done {
            ReadDone::Tombstones { t, result } => match result {
                Ok(tombstones) => self
                    .room
                    .apply_deletions(&self.shared.regions, t, &tombstones),
                Err(e) => {
                    // Forget where we were: the next tick reads them all again.
                    tracing::warn!(video = %self.room.video, region = t, error = %e, "tombstones unavailable; retrying");
                    self.room.forget_tombstones(t);
                }
            },
            ReadDone::Comments { r, result } => {
                let video = &self.room.video;
                let comments = match result {
                    Ok(comments) => {
                        if !comments.is_empty() {
                            metrics::counter!("frontend_backfilled_comments_total")
                                .increment(comments.len() as u64);
                            tracing::info!(%video, region = r, n = comments.len(), "backfilled comments the live feed missed");
                        }
                        Some(comments)
                    }
                    Err(e) => {
                        tracing::warn!(%video, region = r, error = %e, "backfill failed; retrying");
                        None
                    }
                };
                let step = self.seqs[r].read_done(comments);
                self.apply(r, step);
            }
            ReadDone::Newest { r, newest, likes } => {
                if let Ok(total) = likes {
                    self.raise_likes(r, total);
                }
                if let Ok(newest) = newest
                    && let Some(read) = self.seqs[r].newest(newest)
                {
                    self.start_read(r, read);
                }
            }
            ReadDone::Baseline { r, baseline } => self.apply_baseline(r, baseline),
        }
        for r in 0..self.seqs.len() {
            self.schedule_retry(r);
        }
    }

    /// Applies a region's baseline to the room's state and sequencer.
    fn apply_baseline(&mut self, r: usize, baseline: Baseline) {
        let video = self.room.video.clone();
        match baseline.likes {
            Ok(total) => self.raise_likes(r, total),
            Err(e) => tracing::warn!(%video, region = r, error = %e, "likes total unavailable"),
        }
        match baseline.last {
            Some(Ok(seq)) => {
                self.seqs[r].baseline(seq);
                let (last, _) = self.seqs[r].position();
                let mut state = self.room.state();
                let position = &mut state.positions[r];
                if !position.known {
                    *position = Position {
                        last_seq: last,
                        known: true,
                        complete_since: last,
                    };
                }
            }
            Some(Err(e)) => tracing::warn!(
                %video, region = r, error = %e,
                "last comment unknown; the next live comment or catch-up sets it"
            ),
            None => {}
        }
    }

    /// Delivers what the sequencer released and starts the read it asked for.
    fn apply(&mut self, r: usize, step: Step<v1::Comment>) {
        let cfg = &self.shared.config;
        for (seq, comment) in step.deliver {
            self.room
                .push_comment(&self.shared.regions, r, seq, &comment, cfg.replay_buffer);
        }
        if let Some(read) = step.read {
            self.start_read(r, read);
        }
        self.schedule_retry(r);
    }

    /// A gap still open after a read is read again, after [`GAP_RETRY`].
    fn schedule_retry(&mut self, r: usize) {
        if !self.seqs[r].has_gap() {
            self.retry_at[r] = None;
        } else if self.retry_at[r].is_none() {
            self.retry_at[r] = Some(Instant::now() + GAP_RETRY);
        }
    }

    fn retry_due(&mut self) {
        let now = Instant::now();
        for r in 0..self.seqs.len() {
            if self.retry_at[r].is_some_and(|at| at <= now) {
                self.retry_at[r] = None;
                if let Some(read) = self.seqs[r].retry() {
                    self.start_read(r, read);
                }
                self.schedule_retry(r);
            }
        }
    }

    /// Region `r` up to date from JetStream: its baseline if still unknown, else the
    /// comments stored since the room's position and a higher likes total.
    fn catch_up(&mut self, r: usize) {
        self.read_tombstones(r, self.room.tombstones_upto(r));
        let (_, known) = self.seqs[r].position();
        self.spawn_read(move |shared, video| async move {
            if known {
                let newest = shared.history.last_comment_seq(r, &video).await;
                let likes = shared.history.likes_total(r, &video).await;
                ReadDone::Newest { r, newest, likes }
            } else {
                let baseline = load_baseline(&shared, &video, r, false).await;
                ReadDone::Baseline { r, baseline }
            }
        });
    }

    fn start_read(&self, r: usize, read: Read) {
        self.spawn_read(move |shared, video| async move {
            let result = shared
                .history
                .comments(r, &video, read.after, read.upto, shared.config.max_replay)
                .await;
            ReadDone::Comments { r, result }
        });
    }

    /// Raises region `r`'s likes total to what JetStream has; if it rose, viewers get
    /// the difference as a `likes` event.
    fn raise_likes(&mut self, r: usize, total: u64) {
        let added = {
            let mut state = self.room.state();
            let added = total.saturating_sub(state.likes[r]);
            state.likes[r] += added;
            added
        };
        // Before the room is ready nobody watches; afterwards the rise is news.
        if added > 0 && *self.room.ready.borrow() {
            // Acceptance time unknown (0): no latency sample for these.
            self.likes.add(added, 0, Instant::now());
        }
    }
}

fn undecodable() {
    metrics::counter!("frontend_undecodable_total").increment(1);
}

/// A republished message's stream sequence (`Nats-Sequence`) and the previous one of its
/// subject (`Nats-Last-Sequence`, 0 for the first); `None` without a sequence.
fn sequences(msg: &async_nats::Message) -> Option<(u64, u64)> {
    let header = |name: &str| -> Option<u64> {
        msg.headers
            .as_ref()?
            .get(name)
            .and_then(|v| v.as_str().parse().ok())
    };
    Some((
        header("Nats-Sequence")?,
        header("Nats-Last-Sequence").unwrap_or(0),
    ))
}

/// How often a room compares the other regions' comments and likes totals, as this
/// region's mirrors have them, with what it delivered (jittered ±50 %): the bound on
/// how long after a cut gateway heals a quiet video's viewers wait for what the cut
/// kept from them. Costs two direct gets per other region per room.
const REMOTE_CHECK: Duration = Duration::from_secs(5);

fn flush_likes(room: &Room, likes: &mut LikeCoalescer) {
    if let Some(batch) = likes.flush(Instant::now()) {
        let total = room.state().likes_total();
        room.broadcast(sse::likes(batch.count, total, batch.oldest_ms));
    }
}

async fn presence_tick(room: &Room, shared: &Shared, presence: &mut Presence) {
    let now = Instant::now();
    presence.others.retain(|_, (_, expires)| *expires > now);
    let own = room.local_viewers();
    // Refreshed three times per TTL, so one lost message does not drop this node.
    let refresh = shared.config.presence_ttl / 3;
    let stale = presence
        .published
        .is_none_or(|(n, at)| n != own || now.duration_since(at) >= refresh);
    if stale || presence.dirty {
        publish_presence(room, shared, own).await;
        presence.published = Some((own, now));
        presence.dirty = false;
    }
    let total = own + presence.others.values().map(|(n, _)| n).sum::<u64>();
    let changed = {
        let mut state = room.state();
        let changed = state.viewers_total != total;
        state.viewers_total = total;
        changed
    };
    if changed {
        room.broadcast(sse::viewers(total));
    }
}

async fn publish_presence(room: &Room, shared: &Shared, viewers: u64) {
    let msg = v1::Presence {
        video: room.video.to_string(),
        node: shared.node_id.clone(),
        viewers: viewers.min(u32::MAX as u64) as u32,
        at_ms: live_proto::now_ms(),
        ttl_ms: shared.config.presence_ttl.as_millis() as u32,
        region: shared.regions.own().to_string(),
    };
    if let Err(e) = shared
        .client
        .publish(
            subjects::live_presence(shared.regions.own(), &room.video),
            msg.encode_to_vec().into(),
        )
        .await
    {
        tracing::debug!(error = %e, "presence not published");
    }
}
