//! A room's task: the node's one NATS subscription for the video, and what it does with
//! what arrives — comments through one [`Sequencer`] per region (reads it asks for run
//! in their own tasks and report back, so the loop never waits for JetStream), likes
//! coalesced, the regions' viewer totals summed, heartbeats — until the room is
//! idle past its grace period or the node stops.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use live_proto::subjects::{self, LiveKind};
use live_proto::{VideoId, v1};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::coalesce::LikeCoalescer;
use super::sequencer::{Read, Sequencer, Step};
use super::viewer_counts::ViewerCounts;
use super::{Position, Room, undecodable};
use crate::node::Node;
use crate::sse;
use crate::store::{HistoryError, Stored, Tombstone};

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
        result: Result<Vec<Tombstone>, HistoryError>,
    },
}

/// The room's task: runs until the room is idle past its grace period (and `release`,
/// asked to drop it from the node's table, agrees) or the node stops.
pub async fn run<F>(room: Arc<Room>, node: Arc<Node>, release: F)
where
    F: Fn(&Arc<Room>) -> bool + Send + 'static,
{
    let video = room.video.clone();
    let sub = node.subscribe(subjects::live_all(&video)).await;
    let regions = node.regions.len();
    // Bounded: at most one comments read per region is in flight, plus the catch-ups.
    let (reads_tx, reads) = mpsc::channel(4 * regions + 4);
    let mut task = Task {
        seqs: (0..regions).map(|_| Sequencer::new(MAX_HELD)).collect(),
        retry_at: vec![None; regions],
        reads: reads_tx,
        likes: LikeCoalescer::new(node.settings.like_interval),
        counts: ViewerCounts::new(regions, node.regions.own_index()),
        room,
        node,
    };
    task.open().await;
    task.run(sub, reads, release).await;
}

impl Task {
    /// The one read awaited: before the room is ready, so a joining viewer's snapshot
    /// has the totals and positions. A partition that does not answer leaves its region
    /// unknown; the first live comment or a later catch-up sets it.
    async fn open(&mut self) {
        let (room, node) = (self.room.clone(), self.node.clone());
        let video = &room.video;
        for r in 0..node.regions.len() {
            match node.history.deletions(r, video, 0).await {
                Ok(tombstones) => room.apply_deletions(&node.regions, r, &tombstones),
                Err(e) => {
                    tracing::warn!(%video, region = r, error = %e, "tombstones unavailable; retrying")
                }
            }
            let baseline = load_baseline(&node, video, r, false).await;
            self.apply_baseline(r, baseline);
        }
        room.ready.send_replace(true);
        tracing::debug!(%video, "room open");
    }

    async fn run(
        mut self,
        mut sub: async_nats::Subscriber,
        mut reads: mpsc::Receiver<ReadDone>,
        release: impl Fn(&Arc<Room>) -> bool,
    ) {
        let (room, node) = (self.room.clone(), self.node.clone());
        let settings = &node.settings;
        let regions = node.regions.len();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + settings.heartbeat, settings.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut reconnects = node.reconnects.clone();
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let jitter = || REMOTE_CHECK.mul_f64(rand::random_range(0.5..1.5));
        let mut remote_check = Instant::now() + jitter();

        let vacated = room.occupancy.vacated(settings.room_grace);
        tokio::pin!(vacated);
        loop {
            let retry = self.retry_at.iter().flatten().min().copied();
            tokio::select! {
                msg = sub.next() => match msg {
                    Some(msg) => self.on_message(msg),
                    None => break,
                },
                Some(done) = reads.recv() => self.on_read(done),
                _ = tokio::time::sleep_until(retry.unwrap_or(far)), if retry.is_some() => {
                    self.retry_due();
                }
                _ = tokio::time::sleep_until(remote_check), if node.regions.is_multi() => {
                    // Other regions' comments the live feed did not bring (the gateway
                    // was cut) come from this region's mirrors.
                    for r in (0..regions).filter(|&r| r != node.regions.own_index()) {
                        self.catch_up(r);
                    }
                    remote_check = Instant::now() + jitter();
                }
                _ = tokio::time::sleep_until(self.likes.due().unwrap_or(far)), if self.likes.due().is_some() => {
                    self.flush_likes();
                }
                _ = tick.tick() => {
                    self.show_viewers();
                    for t in 0..regions {
                        if room.tombstones_upto(t).is_none() {
                            self.read_tombstones(t, None);
                        }
                    }
                }
                _ = heartbeat.tick() => room.broadcast(sse::heartbeat()),
                Ok(()) = reconnects.changed() => {
                    // Reconnected (or messages were dropped): close any gap right away
                    // instead of waiting for the next comment to reveal it.
                    for r in 0..regions {
                        self.catch_up(r);
                    }
                }
                _ = &mut vacated => {
                    if release(&room) {
                        break;
                    }
                    // Somebody came back meanwhile.
                    vacated.set(room.occupancy.vacated(settings.room_grace));
                }
                _ = node.stopped.cancelled() => break,
            }
        }
        let _ = sub.unsubscribe().await;
        tracing::debug!(video = %room.video, "room closed");
    }
}

/// A region's likes total and newest comment sequence, read when a room opens.
struct Baseline {
    likes: Result<u64, HistoryError>,
    /// `None` if the position was known already (not read).
    last: Option<Result<u64, HistoryError>>,
}

/// Reads region `r`'s durable likes total and, unless `known`, its newest comment
/// sequence from JetStream.
async fn load_baseline(node: &Node, video: &VideoId, r: usize, known: bool) -> Baseline {
    let likes = node.history.likes_total(r, video).await;
    let last = if known {
        None
    } else {
        Some(node.history.last_comment_seq(r, video).await)
    };
    Baseline { likes, last }
}

/// The room's loop state: one sequencer per region, the reads it started, likes, the
/// regions' viewer totals.
struct Task {
    room: Arc<Room>,
    node: Arc<Node>,
    seqs: Vec<Sequencer<v1::Comment>>,
    /// Per region: when to read again while a gap stays open.
    retry_at: Vec<Option<Instant>>,
    reads: mpsc::Sender<ReadDone>,
    likes: LikeCoalescer,
    counts: ViewerCounts,
}

impl Task {
    fn on_message(&mut self, msg: async_nats::Message) {
        let Some((region, _, kind)) = subjects::parse_live(&msg.subject) else {
            return;
        };
        let Some(r) = self.node.regions.index_of(region) else {
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
            LiveKind::Viewers => match v1::ViewerTotal::decode(msg.payload) {
                Ok(t) => {
                    let ttl = Duration::from_millis(t.ttl_ms.clamp(1_000, 300_000).into());
                    self.counts.observe(r, t.viewers, ttl, Instant::now());
                    self.show_viewers();
                }
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
            .apply_deletions(&self.node.regions, t, &[(seq, tombstone)]);
    }

    /// Reads region `t`'s tombstones after `after` (all of them for `None`).
    fn read_tombstones(&self, t: usize, after: Option<u64>) {
        self.spawn_read(move |node, video| async move {
            let result = node.history.deletions(t, &video, after.unwrap_or(0)).await;
            ReadDone::Tombstones { t, result }
        });
    }

    /// Runs a JetStream read in its own task; its outcome comes back on the room's
    /// channel (dropped if the room has ended meanwhile).
    fn spawn_read<F, Fut>(&self, read: F)
    where
        F: FnOnce(Arc<Node>, VideoId) -> Fut,
        Fut: std::future::Future<Output = ReadDone> + Send + 'static,
    {
        let (tx, fut) = (
            self.reads.clone(),
            read(self.node.clone(), self.room.video.clone()),
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
                    .apply_deletions(&self.node.regions, t, &tombstones),
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
        let settings = &self.node.settings;
        for (seq, comment) in step.deliver {
            self.room
                .push_comment(&self.node.regions, r, seq, &comment, settings.replay_buffer);
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
        self.spawn_read(move |node, video| async move {
            if known {
                let newest = node.history.last_comment_seq(r, &video).await;
                let likes = node.history.likes_total(r, &video).await;
                ReadDone::Newest { r, newest, likes }
            } else {
                let baseline = load_baseline(&node, &video, r, false).await;
                ReadDone::Baseline { r, baseline }
            }
        });
    }

    fn start_read(&self, r: usize, read: Read) {
        self.spawn_read(move |node, video| async move {
            let result = node
                .history
                .comments(r, &video, read.after, read.upto, node.settings.max_replay)
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

impl Task {
    fn flush_likes(&mut self) {
        if let Some(batch) = self.likes.flush(Instant::now()) {
            let total = self.room.state().likes_total();
            self.room.broadcast(sse::likes(
                &self.room.topic,
                batch.count,
                total,
                batch.oldest_ms,
            ));
        }
    }

    /// The viewer count to viewers, if it changed (at most once a second): on every
    /// region total that arrives, and once a second for this node's own joins and
    /// leaves and for totals whose TTL ran out.
    fn show_viewers(&mut self) {
        let Some(total) = self.counts.due(self.room.local_viewers(), Instant::now()) else {
            return;
        };
        self.room.set_viewers(total);
    }
}
