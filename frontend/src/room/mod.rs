//! A room: everything one frontend node knows about one live video. Its task owns the
//! node's single NATS subscription for the video (`live.v1.{video}.*`) and turns what
//! arrives into shared [`Frame`]s:
//!
//! - comments (republished by JetStream with their sequence) are checked for gaps with
//!   `Nats-Last-Sequence`, backfilled from JetStream when one is found, kept in a small
//!   ring for resuming viewers, and broadcast one by one;
//! - likes are coalesced into at most one `likes` frame per `--like-interval`;
//! - the regions' viewer totals (each summed by a publisher of its region from the
//!   frontends' reports, see `publisher::viewers`) are summed into the `viewers` count,
//!   sent at most once a second when it changes;
//! - a heartbeat frame every `--heartbeat`;
//! - tombstones of comments a moderator deleted (`live.v1.{region}.{video}.deleted`, and
//!   all of them read from JetStream when the room opens) remove the comment from the
//!   ring, keep it out of every later broadcast and replay, and go out as
//!   `comment_deleted`. They are on their own subject, so the comments' gap detection
//!   never sees them.
//!
//! The last viewer leaving starts a grace period; after it the room unsubscribes and
//! hands itself back to the node's table (which removes it unless a viewer came back).
//!
//! Here the handle viewers join (state shared under a std mutex, the broadcast); in
//! [`task`] the loop; [`sequencer`], [`coalesce`] and [`viewer_counts`] are its pure parts.

pub mod coalesce;
pub mod sequencer;
mod task;
pub mod viewer_counts;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use live_proto::{Regions, VideoId, v1};
use tokio::sync::{broadcast, watch};

use crate::bell::Bells;
use crate::occupancy::{Occupancy, Occupied};
use crate::sse::{self, Frame};
use crate::store::Tombstone;

pub use task::run;

pub struct Room {
    pub video: VideoId,
    /// `video:{id}`, the `"topic"` of its events on `/v1/stream`.
    pub topic: String,
    state: Mutex<RoomState>,
    /// Per-video streams' feed: frames with their `bytes` only.
    tx: broadcast::Sender<Frame>,
    /// `/v1/stream` connections' feed: frames with their `tagged` bytes only, made when
    /// the first connection joins. Two feeds, so a delivery clones one buffer handle:
    /// every core bumps a frame's shared reference count once per viewer, and a second
    /// handle per frame doubled that traffic on the hottest cache lines.
    tagged_tx: OnceLock<broadcast::Sender<Frame>>,
    /// The `/v1/stream` connections watching it, rung after every send.
    pub bells: Bells,
    ready: watch::Sender<bool>,
    /// Viewers of this video on this node (entered under the table's lock).
    occupancy: Occupancy,
    queue: usize,
    /// Held by the one resuming viewer that reads what the ring lacks from JetStream
    /// and puts it in the ring; the others wait for it and then take it from memory
    /// (a storm of viewers resuming into a new room costs one read, not one each).
    backfill: tokio::sync::Mutex<()>,
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
            topic: format!("video:{video}"),
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
            tagged_tx: OnceLock::new(),
            queue,
            bells: Bells::default(),
            ready: watch::channel(false).0,
            occupancy: Occupancy::default(),
            backfill: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn local_viewers(&self) -> u64 {
        self.occupancy.count()
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
        self.join_feed(cursor, false)
    }

    /// As [`Room::join`], for a `/v1/stream` connection: its feed's frames carry their
    /// `tagged` bytes.
    pub fn join_tagged(&self, cursor: Option<&[u64]>) -> (broadcast::Receiver<Frame>, Snapshot) {
        self.join_feed(cursor, true)
    }

    fn join_feed(
        &self,
        cursor: Option<&[u64]>,
        tagged: bool,
    ) -> (broadcast::Receiver<Frame>, Snapshot) {
        let state = self.state();
        // Made under the state lock: a frame whose state change came before it is in
        // the snapshot, one after it is sent to this feed too.
        let feed = if tagged {
            self.tagged_tx
                .get_or_init(|| broadcast::channel(self.queue.max(16)).0)
                .subscribe()
        } else {
            self.tx.subscribe()
        };
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
            &self.topic,
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
        self.send(frame);
    }

    /// Whether history read for a resume can go into the ring for the next ones: one
    /// region (a replayed frame's `id:` is then exactly the one the room would have
    /// broadcast) and the ring not full.
    fn can_prefill(&self, capacity: usize) -> bool {
        let state = self.state();
        state.positions.len() == 1 && state.ring.len() < capacity
    }

    /// Waits for the room's one backfill (see [`Room::backfill`]) if history read for a
    /// resume can go into the ring; `None` if it cannot (the read is the viewer's own).
    pub async fn backfill_turn(&self, capacity: usize) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if !self.can_prefill(capacity) {
            return None;
        }
        Some(self.backfill.lock().await)
    }

    /// The ring's comments after `cursor` up to `upto` (per region), if the ring now
    /// reaches back to `cursor` in every region (another viewer's backfill put them
    /// there); `None` if it does not.
    pub fn ring_between(&self, cursor: &[u64], upto: &[u64]) -> Option<Vec<Frame>> {
        let state = self.state();
        let covers = cursor
            .iter()
            .zip(&state.positions)
            .all(|(c, p)| *c >= p.complete_since);
        if !covers {
            return None;
        }
        Some(
            state
                .ring
                .iter()
                .filter(|f| {
                    let r = usize::from(f.region);
                    f.seq > cursor[r] && f.seq <= upto[r]
                })
                .cloned()
                .collect(),
        )
    }

    /// Puts comments read from history in front of the ring: `frames` are every comment
    /// (not deleted) of the one region with `after < seq <= upto`, where `upto` is where
    /// the ring was complete since when they were read. Only if the ring still starts
    /// there, and only as many (the newest) as fit in `capacity`. Returns how many went in.
    pub fn prefill(&self, after: u64, upto: u64, frames: &[Frame], capacity: usize) -> usize {
        let mut state = self.state();
        if state.positions.len() != 1 || state.positions[0].complete_since != upto {
            return 0;
        }
        let fresh: Vec<&Frame> = frames
            .iter()
            .filter(|f| f.is_comment() && f.seq > after && f.seq <= upto)
            .filter(|f| !state.deleted[0].contains(&f.seq))
            .collect();
        let room = capacity.saturating_sub(state.ring.len());
        let skip = fresh.len().saturating_sub(room);
        let since = if skip == 0 {
            after
        } else {
            fresh[skip - 1].seq
        };
        let taken = &fresh[skip..];
        for f in taken.iter().rev() {
            state.ring.push_front((*f).clone());
        }
        state.positions[0].complete_since = since;
        taken.len()
    }

    /// As a room's task leaves a room that opened when `last` was the video's newest
    /// comment (one region), then broadcast `live` (a ring of `capacity`).
    #[cfg(test)]
    pub(crate) fn open_at_for_tests(
        &self,
        regions: &Regions,
        last: u64,
        live: &[(u64, v1::Comment)],
        capacity: usize,
    ) {
        self.state().positions[0] = Position {
            last_seq: last,
            known: true,
            complete_since: last,
        };
        for (seq, c) in live {
            self.push_comment(regions, 0, *seq, c, capacity);
        }
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
    fn apply_deletions(&self, regions: &Regions, t: usize, tombstones: &[Tombstone]) {
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
                let _ = self
                    .tx
                    .send(sse::comment_deleted(&self.topic, &tombstone.id));
            }
        }
    }

    /// The video's viewer count: joining viewers' snapshots have it, watching ones get a
    /// `viewers` event (under the state lock, so a join sees one or the other).
    fn set_viewers(&self, total: u64) {
        let mut state = self.state();
        state.viewers_total = total;
        self.send(sse::viewers(&self.topic, total));
    }

    /// Sends a frame to every viewer of the room.
    pub fn broadcast(&self, frame: Frame) {
        self.send(frame);
    }

    /// `bytes` to the per-video streams, `tagged` to the connections (and their bells).
    fn send(&self, mut frame: Frame) {
        let tagged = std::mem::take(&mut frame.tagged);
        if let Some(tagged_tx) = self.tagged_tx.get() {
            let tagged = Frame {
                bytes: Bytes::new(),
                tagged,
                ..frame
            };
            if tagged_tx.send(tagged).is_ok() {
                self.bells.ring();
            }
        }
        let _ = self.tx.send(frame);
    }
}

impl Occupied for Room {
    fn occupancy(&self) -> &Occupancy {
        &self.occupancy
    }
}

fn undecodable() {
    metrics::counter!("frontend_undecodable_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(text: &str) -> v1::Comment {
        v1::Comment {
            user: "u".into(),
            text: text.into(),
            ..Default::default()
        }
    }

    fn seqs(frames: &[Frame]) -> Vec<u64> {
        frames.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn a_joining_viewer_gets_the_ring_after_its_cursor() {
        let regions = Regions::single("local");
        let room = Room::new(VideoId::parse("v").unwrap(), 16, 1);
        for seq in [2, 4, 6, 8] {
            room.push_comment(&regions, 0, seq, &comment("c"), 3);
        }
        // The ring holds 4, 6, 8: complete since 2.
        let (_, snap) = room.join(Some(&[4]));
        assert_eq!(seqs(&snap.ring), [6, 8]);
        assert!(snap.covers_cursor);
        assert_eq!(snap.positions[0].last_seq, 8);
        // Before the ring: all of it, and history must fill in.
        let (_, snap) = room.join(Some(&[1]));
        assert_eq!(seqs(&snap.ring), [4, 6, 8]);
        assert!(!snap.covers_cursor);
        // No cursor: no replay.
        let (_, snap) = room.join(None);
        assert!(snap.ring.is_empty() && snap.covers_cursor);
    }

    /// A room that opened when the video's newest comment was `last` (as a room's task
    /// sets it from JetStream), then broadcast `live`.
    fn opened_at(regions: &Regions, last: u64, live: &[u64], capacity: usize) -> Arc<Room> {
        let room = Room::new(VideoId::parse("v").unwrap(), 16, 1);
        let live: Vec<_> = live.iter().map(|&seq| (seq, comment("live"))).collect();
        room.open_at_for_tests(regions, last, &live, capacity);
        room
    }

    fn history_frames(regions: &Regions, seqs: &[u64]) -> Vec<Frame> {
        seqs.iter()
            .map(|&seq| {
                let id = regions.comment_id(0, seq);
                sse::comment("video:v", 0, seq, &id, &id, &comment("old"))
            })
            .collect()
    }

    #[test]
    fn history_read_for_one_resume_serves_the_next_from_the_ring() {
        let regions = Regions::single("local");
        let room = opened_at(&regions, 10, &[12, 14], 8);
        let (_, snap) = room.join(Some(&[4]));
        assert!(!snap.covers_cursor, "the new room knows nothing before 10");
        assert!(room.ring_between(&[4], &[10]).is_none());
        // The first resuming viewer read 5, 7, 9 (and 3, before its cursor, is left out).
        let read = history_frames(&regions, &[3, 5, 7, 9]);
        assert_eq!(room.prefill(4, 10, &read, 8), 3);
        assert_eq!(room.state().positions[0].complete_since, 4);
        // The next ones, joined before or after, take it from memory.
        assert_eq!(seqs(&room.ring_between(&[4], &[10]).unwrap()), [5, 7, 9]);
        assert_eq!(seqs(&room.ring_between(&[7], &[10]).unwrap()), [9]);
        assert!(
            room.ring_between(&[2], &[10]).is_none(),
            "before what was read"
        );
        let (_, snap) = room.join(Some(&[5]));
        assert!(snap.covers_cursor);
        assert_eq!(seqs(&snap.ring), [7, 9, 12, 14]);
        // Live comments push the oldest out as before: 8 fit.
        for seq in [15, 16, 17, 18] {
            room.push_comment(&regions, 0, seq, &comment("live"), 8);
        }
        assert_eq!(room.state().positions[0].complete_since, 5);
        assert_eq!(seqs(&room.ring_between(&[5], &[10]).unwrap()), [7, 9]);
    }

    #[test]
    fn a_prefill_takes_the_newest_that_fit_and_never_attaches_across_a_hole() {
        let regions = Regions::single("local");
        let room = opened_at(&regions, 10, &[12, 14], 4);
        let read = history_frames(&regions, &[5, 7, 9]);
        // Where the ring starts moved on (or was never 8): nothing goes in.
        assert_eq!(room.prefill(4, 8, &read, 4), 0);
        // Room for two: 7 and 9; the ring is complete since 5.
        assert_eq!(room.prefill(4, 10, &read, 4), 2);
        assert_eq!(room.state().positions[0].complete_since, 5);
        assert_eq!(seqs(&room.ring_between(&[5], &[10]).unwrap()), [7, 9]);
        assert!(room.ring_between(&[4], &[10]).is_none());
        // A comment deleted meanwhile is not put back.
        let room = opened_at(&regions, 10, &[], 8);
        room.state().deleted[0].insert(7);
        assert_eq!(room.prefill(4, 10, &read, 8), 2);
        assert_eq!(seqs(&room.ring_between(&[4], &[10]).unwrap()), [5, 9]);
    }

    #[test]
    fn an_old_or_repeated_comment_is_not_pushed_again() {
        let regions = Regions::single("local");
        let room = Room::new(VideoId::parse("v").unwrap(), 16, 1);
        let (mut feed, _) = room.join(None);
        room.push_comment(&regions, 0, 5, &comment("a"), 10);
        room.push_comment(&regions, 0, 5, &comment("a"), 10);
        room.push_comment(&regions, 0, 3, &comment("old"), 10);
        assert_eq!(feed.try_recv().unwrap().seq, 5);
        assert!(feed.try_recv().is_err());
    }

    #[test]
    fn a_deleted_comment_leaves_the_ring_and_never_comes_back() {
        let regions = Regions::single("local");
        let room = Room::new(VideoId::parse("v").unwrap(), 16, 1);
        room.push_comment(&regions, 0, 1, &comment("a"), 10);
        room.push_comment(&regions, 0, 2, &comment("b"), 10);
        let (mut feed, _) = room.join(None);
        let tombstone = v1::CommentDeleted {
            id: regions.comment_id(0, 1),
            ..Default::default()
        };
        room.apply_deletions(&regions, 0, &[(7, tombstone.clone())]);
        assert_eq!(feed.try_recv().unwrap().kind, sse::Kind::Deleted);
        // Applied twice (live and read): one event.
        room.apply_deletions(&regions, 0, &[(7, tombstone)]);
        assert!(feed.try_recv().is_err());
        assert!(room.is_deleted(0, 1));
        assert_eq!(room.tombstones_upto(0), Some(7));
        let (_, snap) = room.join(Some(&[0]));
        assert_eq!(seqs(&snap.ring), [2]);
        // A deleted comment arriving late (its tombstone came first) is not broadcast.
        room.apply_deletions(
            &regions,
            0,
            &[(
                8,
                v1::CommentDeleted {
                    id: regions.comment_id(0, 3),
                    ..Default::default()
                },
            )],
        );
        let _ = feed.try_recv();
        room.push_comment(&regions, 0, 3, &comment("c"), 10);
        assert!(feed.try_recv().is_err());
    }
}
