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
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::coalesce::LikeCoalescer;
use crate::rooms::Shared;
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
    load_baseline(&room, &shared).await;
    room.ready.send_replace(true);
    tracing::debug!(%video, "room open");

    let cfg = &shared.config;
    let mut likes = LikeCoalescer::new(cfg.like_interval);
    let mut presence = Presence {
        dirty: true,
        ..Default::default()
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval_at(Instant::now() + cfg.heartbeat, cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reconnects = shared.reconnects.clone();
    let mut stopped = shared.stopped.clone();
    let mut grace: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // Per region: the newest live comment held back until this region's history has the
    // ones before it (see `on_comment`); 0 if none.
    let mut behind = vec![0u64; shared.regions.len()];
    let mut remote_check = Instant::now() + REMOTE_CHECK.mul_f64(rand::random_range(0.5..1.5));

    loop {
        tokio::select! {
            msg = sub.next() => match msg {
                Some(msg) => {
                    on_message(&room, &shared, &mut likes, &mut presence, &mut behind, msg).await;
                    if behind.iter().any(|&b| b > 0) {
                        remote_check = remote_check.min(Instant::now() + REMOTE_RETRY);
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(remote_check), if shared.regions.is_multi() => {
                let still_behind = sync_remote(&room, &shared, &mut likes, &mut behind).await;
                let wait = if still_behind { REMOTE_RETRY } else { REMOTE_CHECK };
                remote_check = Instant::now() + wait;
            }
            _ = tokio::time::sleep_until(likes.due().unwrap_or(far)), if likes.due().is_some() => {
                flush_likes(&room, &mut likes);
            }
            _ = tick.tick() => {
                presence_tick(&room, &shared, &mut presence).await;
                for t in 0..shared.regions.len() {
                    if room.tombstones_upto(t).is_none() {
                        read_tombstones(&room, &shared, t).await;
                    }
                }
            }
            _ = heartbeat.tick() => room.broadcast(sse::heartbeat()),
            Ok(()) = reconnects.changed() => {
                // Reconnected (or messages were dropped): close any gap right away
                // instead of waiting for the next comment to reveal it.
                catch_up(&room, &shared, &mut likes).await;
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
            _ = async { let _ = stopped.wait_for(|s| *s).await; } => break,
        }
    }
    // Tell the other frontends right away that this node has no viewers left.
    publish_presence(&room, &shared, 0).await;
    let _ = sub.unsubscribe().await;
    tracing::debug!(%video, "room closed");
}

/// Reads each region's durable likes total and newest comment sequence from JetStream.
///
/// A region whose position is already known keeps it: jumping it to the newest stored
/// sequence would skip comments that are stored but still on their way to this room.
async fn load_baseline(room: &Room, shared: &Shared) {
    let video = &room.video;
    for r in 0..shared.regions.len() {
        read_tombstones(room, shared, r).await;
        let likes = shared.history.likes_total(r, video).await;
        let known = room.state().positions[r].known;
        let last = if known {
            None
        } else {
            Some(shared.history.last_comment_seq(r, video).await)
        };
        let mut state = room.state();
        match likes {
            Ok(total) => state.likes[r] = state.likes[r].max(total),
            Err(e) => tracing::warn!(%video, region = r, error = %e, "likes total unavailable"),
        }
        let Some(last) = last else { continue };
        let position = &mut state.positions[r];
        if position.known {
            // A live comment set it meanwhile.
            continue;
        }
        match last {
            Ok(seq) if seq >= position.last_seq => {
                *position = Position {
                    last_seq: seq,
                    known: true,
                    complete_since: seq,
                };
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                %video, region = r, error = %e,
                "last comment unknown; the next live comment sets it"
            ),
        }
    }
}

/// Reads region `t`'s tombstones of this video stored after the newest one known (all of
/// them the first time) and applies them.
async fn read_tombstones(room: &Room, shared: &Shared, t: usize) {
    let after = room.tombstones_upto(t).unwrap_or(0);
    match shared.history.deletions(t, &room.video, after).await {
        Ok(tombstones) => room.apply_deletions(&shared.regions, t, &tombstones),
        Err(e) => {
            tracing::warn!(video = %room.video, region = t, error = %e, "tombstones unavailable; retrying")
        }
    }
}

/// A tombstone republished by region `t`'s stream: applied, after any missed before it
/// (its `Nats-Last-Sequence` is the video's previous tombstone in that stream).
async fn on_tombstone(room: &Room, shared: &Shared, t: usize, msg: async_nats::Message) {
    let header = |name: &str| -> Option<u64> {
        msg.headers
            .as_ref()?
            .get(name)
            .and_then(|v| v.as_str().parse().ok())
    };
    let (Some(seq), prev) = (
        header("Nats-Sequence"),
        header("Nats-Last-Sequence").unwrap_or(0),
    ) else {
        return undecodable();
    };
    let Ok(tombstone) = v1::CommentDeleted::decode(msg.payload) else {
        return undecodable();
    };
    metrics::counter!("frontend_events_in_total", "kind" => "deleted").increment(1);
    match room.tombstones_upto(t) {
        Some(upto) if prev <= upto => room.apply_deletions(&shared.regions, t, &[(seq, tombstone)]),
        // Missed one (or never read them): read them all from JetStream, this one too.
        _ => {
            read_tombstones(room, shared, t).await;
            room.apply_deletions(&shared.regions, t, &[(seq, tombstone)]);
        }
    }
}

async fn on_message(
    room: &Room,
    shared: &Shared,
    likes: &mut LikeCoalescer,
    presence: &mut Presence,
    behind: &mut [u64],
    msg: async_nats::Message,
) {
    let Some((region, _, kind)) = subjects::parse_live(&msg.subject) else {
        return;
    };
    let Some(r) = shared.regions.index_of(region) else {
        // A region this deployment does not list: not ours to count.
        return undecodable();
    };
    match kind {
        LiveKind::Comment => on_comment(room, shared, r, &mut behind[r], msg).await,
        LiveKind::Deleted => on_tombstone(room, shared, r, msg).await,
        LiveKind::Likes => match v1::Likes::decode(msg.payload) {
            Ok(l) => {
                metrics::counter!("frontend_events_in_total", "kind" => "likes").increment(1);
                {
                    let mut state = room.state();
                    state.likes[r] = state.likes[r].max(l.total);
                }
                likes.add(l.count, l.accepted_at_ms, Instant::now());
            }
            Err(_) => undecodable(),
        },
        LiveKind::Presence => match v1::Presence::decode(msg.payload) {
            Ok(p) if p.node != shared.node_id => {
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

fn undecodable() {
    metrics::counter!("frontend_undecodable_total").increment(1);
}

/// A comment republished by region `r`'s stream, with its sequence and the video's
/// previous one in that stream. `behind` is the region's newest held-back comment.
async fn on_comment(
    room: &Room,
    shared: &Shared,
    r: usize,
    behind: &mut u64,
    msg: async_nats::Message,
) {
    let header = |name: &str| -> Option<u64> {
        msg.headers
            .as_ref()?
            .get(name)
            .and_then(|v| v.as_str().parse().ok())
    };
    let (Some(seq), prev) = (
        header("Nats-Sequence"),
        header("Nats-Last-Sequence").unwrap_or(0),
    ) else {
        undecodable();
        return;
    };
    let comment = match v1::Comment::decode(msg.payload.clone()) {
        Ok(c) => c,
        Err(_) => return undecodable(),
    };
    metrics::counter!("frontend_events_in_total", "kind" => "comment").increment(1);
    let position = room.state().positions[r];
    if seq <= position.last_seq {
        metrics::counter!("frontend_duplicate_comments_total").increment(1);
        return;
    }
    if position.known && prev > position.last_seq {
        let mut reached = backfill(room, shared, r, position.last_seq, prev).await;
        if r != shared.regions.own_index() {
            if reached < prev {
                // Another region's comments come from this region's mirror of its
                // stream, which lags behind the live feed right after a cut gateway
                // heals. Delivering this one now would skip the missing ones for good:
                // hold it back; `sync_remote` delivers them all, in order, from the
                // mirror once it has caught up.
                *behind = (*behind).max(seq);
                metrics::counter!("frontend_held_back_comments_total").increment(1);
                return;
            }
        } else {
            // Direct gets may be answered by a replica a few milliseconds behind the
            // stream's leader: ask again before giving up on the gap.
            for _ in 0..3 {
                if reached >= prev {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                reached = backfill(room, shared, r, reached, prev).await;
            }
        }
    }
    room.push_comment(
        &shared.regions,
        r,
        seq,
        &comment,
        shared.config.replay_buffer,
    );
}

/// Fetches region `r`'s comments `after < seq <= upto` the room missed and broadcasts
/// them; returns the sequence it reached (`after` if none was found).
async fn backfill(room: &Room, shared: &Shared, r: usize, after: u64, upto: u64) -> u64 {
    let video = &room.video;
    match shared
        .history
        .comments(r, video, after, upto, shared.config.max_replay)
        .await
    {
        Ok(comments) => {
            metrics::counter!("frontend_backfilled_comments_total")
                .increment(comments.len() as u64);
            tracing::info!(%video, region = r, after, upto, n = comments.len(), "closed a gap in the live feed");
            let reached = comments.last().map_or(after, |(seq, _)| *seq);
            for (seq, comment) in comments {
                room.push_comment(
                    &shared.regions,
                    r,
                    seq,
                    &comment,
                    shared.config.replay_buffer,
                );
            }
            reached
        }
        Err(e) => {
            // Viewers still resume correctly: their Last-Event-ID replays from JetStream.
            tracing::warn!(%video, region = r, after, upto, error = %e, "backfill failed");
            after
        }
    }
}

/// After a reconnect: backfill anything stored since the last comment we broadcast.
async fn catch_up(room: &Room, shared: &Shared, likes: &mut LikeCoalescer) {
    for r in 0..shared.regions.len() {
        catch_up_region(room, shared, likes, r).await;
    }
}

/// Brings region `r` up to date from JetStream: its baseline if still unknown (then
/// `None`), else the comments stored since the room's position and a higher likes total;
/// returns how far the region's position moved (in stream sequences).
async fn catch_up_region(
    room: &Room,
    shared: &Shared,
    likes: &mut LikeCoalescer,
    r: usize,
) -> Option<u64> {
    let position = room.state().positions[r];
    if !position.known {
        load_baseline(room, shared).await;
        return None;
    }
    read_tombstones(room, shared, r).await;
    let mut delivered = 0;
    if let Ok(newest) = shared.history.last_comment_seq(r, &room.video).await
        && newest > position.last_seq
    {
        delivered = backfill(room, shared, r, position.last_seq, newest).await - position.last_seq;
    }
    refresh_likes(room, shared, likes, r).await;
    Some(delivered)
}

/// How often a room compares the other regions' comments and likes totals, as this
/// region's mirrors have them, with what it delivered (jittered ±50 %): the bound on
/// how long after a cut gateway heals a quiet video's viewers wait for what the cut
/// kept from them. Costs two direct gets per other region per room.
const REMOTE_CHECK: Duration = Duration::from_secs(5);
/// How soon a room looks again while it holds back a comment.
const REMOTE_RETRY: Duration = Duration::from_millis(250);

/// Other regions' comments the live feed did not bring (the gateway between the regions
/// was cut; a comment held back by `on_comment`) are delivered from this region's
/// mirrors, in order, and a higher likes total goes out as a `likes` event. Returns
/// whether a held-back comment is still missing.
async fn sync_remote(
    room: &Room,
    shared: &Shared,
    likes: &mut LikeCoalescer,
    behind: &mut [u64],
) -> bool {
    let mut still_behind = false;
    for (r, held) in behind.iter_mut().enumerate() {
        if r == shared.regions.own_index() {
            continue;
        }
        let Some(delivered) = catch_up_region(room, shared, likes, r).await else {
            continue;
        };
        metrics::counter!("frontend_remote_caught_up_total").increment(delivered);
        if *held > room.state().positions[r].last_seq {
            still_behind = true;
        } else {
            *held = 0;
        }
    }
    still_behind
}

/// Raises region `r`'s likes total to what JetStream has; if it rose, viewers get the
/// difference as a `likes` event.
async fn refresh_likes(room: &Room, shared: &Shared, likes: &mut LikeCoalescer, r: usize) {
    let Ok(total) = shared.history.likes_total(r, &room.video).await else {
        return;
    };
    let added = {
        let mut state = room.state();
        let added = total.saturating_sub(state.likes[r]);
        state.likes[r] += added;
        added
    };
    if added > 0 {
        // Acceptance time unknown (0): no latency sample for these.
        likes.add(added, 0, Instant::now());
    }
}

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
