//! One device's connection (`GET /v1/stream?topics=…`): a single SSE stream that
//! carries every topic it watches — videos, conversations, members' presence — each
//! event naming its topic. Topics are added and dropped while it is open
//! ([`control`]: from any frontend, over NATS, to the node that holds it).
//!
//! Each topic is the node's room of that topic, joined as a per-video stream joins
//! one: its bounded broadcast. The connection keeps a plain receiver per topic and
//! waits on one [`Doorbell`] that the rooms ring after each send (a boxed `recv` future
//! per topic cost more than the rest of the topic together). A connection that falls
//! more than `--viewer-queue` frames behind in any topic is cut (it resumes with
//! `Last-Event-ID` and loses no comment). The connection writes its own heartbeat (one
//! timer, kept armed), not the rooms', so 50 topics do not mean 50 heartbeats.

pub mod control;
pub mod cursor;

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use live_common::ApiError;
use live_proto::{MemberId, Topic, VideoId};
use rand::Rng;
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use crate::bell::{self, Bells, Doorbell};
use crate::cursor::Cursor;
use crate::presence::Announcer;
use crate::registry::{Member, Membership, Registry};
use crate::sse::{self, Frame, Kind};
use crate::viewer::resume::{self, Resume};
use crate::{conversation::Conversation, presence::PresenceRoom};

/// How long a topic's room may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many pieces of the prelude per write: the writer keeps its batch's
/// capacity, and 50 topics' snapshots in one write would leave every such connection
/// holding a 64-piece batch (2 KB) for its whole life.
const PRELUDE_BATCH: usize = 8;

/// A change of the connection's topics, from [`control`].
#[derive(Debug)]
pub struct Change {
    pub add: bool,
    pub topic: Topic,
    /// The caller's token `sub` (auth on), to be the connection's member.
    pub caller: Option<String>,
    pub reply: oneshot::Sender<Result<(), ApiError>>,
}

/// What a connection watches of one topic.
enum Watching {
    Video {
        /// Counted in the video's room while watched.
        membership: Membership,
    },
    Conversation {
        member: Member<Conversation>,
    },
    Presence {
        member: Member<PresenceRoom>,
    },
}

impl Watching {
    /// The topic's name, as its events carry it.
    fn topic(&self) -> &str {
        match self {
            Watching::Video { membership, .. } => &membership.room().topic,
            Watching::Conversation { member } => &member.room().hub.topic,
            Watching::Presence { member } => &member.room().hub.topic,
        }
    }

    fn bells(&self) -> &Bells {
        match self {
            Watching::Video { membership, .. } => &membership.room().bells,
            Watching::Conversation { member } => &member.room().hub.bells,
            Watching::Presence { member } => &member.room().hub.bells,
        }
    }
}

/// One topic of the connection: its room's feed, read when the room rings.
struct Slot {
    feed: broadcast::Receiver<Frame>,
    watching: Watching,
    /// The connection's entry in the room's bells, removed with the slot.
    bell: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.watching.bells().remove(self.bell);
    }
}

/// Who the connection is: counted online while it is open.
struct Online {
    member: MemberId,
    announcer: Arc<Announcer>,
}

impl Drop for Online {
    fn drop(&mut self) {
        self.announcer.disconnect(&self.member);
    }
}

pub struct Connection {
    pub id: String,
    registry: Arc<Registry>,
    /// Topic slots by number (a dropped topic's number is taken by the next one); the
    /// number is the slot's bit on the doorbell.
    slots: Vec<Option<Slot>>,
    /// Every video slot's position per region (slot `n`'s at `n × regions`): comments
    /// at or before it are not sent again. One vector, not one per topic.
    positions: Vec<u64>,
    doorbell: Arc<Doorbell>,
    /// Written before any live frame: `connected`, snapshots, replays.
    prelude: VecDeque<Pending>,
    changes: mpsc::Receiver<Change>,
    /// The token's `sub` when the connection was opened with one: only it may change
    /// the connection's topics.
    owner: Option<String>,
    max_topics: usize,
    heartbeat: Pin<Box<Sleep>>,
    drain: Duration,
    drain_at: Option<Instant>,
    expires_at: Option<Instant>,
    /// A replay was cut short: end after the prelude (the client resumes).
    end_after_prelude: bool,
    ended: bool,
    _online: Option<Online>,
    _entry: control::Entry,
}

enum Pending {
    Bytes(Bytes),
    /// A replayed comment of the video in slot `slot`.
    Comment(usize, Frame),
}

/// What opens a connection.
pub struct Open {
    pub topics: Vec<Topic>,
    pub member: Option<MemberId>,
    /// Opened with a token whose `sub` this is.
    pub owner: Option<String>,
    /// Positions from `Last-Event-ID`.
    pub resume: BTreeMap<VideoId, Cursor>,
    pub max_topics: usize,
    pub draining: bool,
}

impl Connection {
    pub async fn open(
        registry: Arc<Registry>,
        connections: &Arc<control::Connections>,
        open: Open,
    ) -> Result<Connection, ApiError> {
        let node = registry.node().clone();
        let (entry, changes) = connections.register();
        let retry_ms = node.settings.retry_window.pick_ms(&mut rand::rng());
        let heartbeat_every = node.settings.heartbeat;
        let mut conn = Connection {
            id: entry.id().to_owned(),
            prelude: VecDeque::from([Pending::Bytes(sse::connected(retry_ms, entry.id()))]),
            registry: registry.clone(),
            slots: Vec::with_capacity(open.topics.len()),
            positions: Vec::with_capacity(open.topics.len() * node.regions.len()),
            doorbell: Arc::default(),
            changes,
            owner: open.owner,
            max_topics: open.max_topics,
            heartbeat: Box::pin(tokio::time::sleep(heartbeat_every)),
            drain: node.settings.drain,
            drain_at: None,
            expires_at: None,
            end_after_prelude: false,
            ended: false,
            _online: open.member.map(|member| {
                registry.members.connect(&member);
                Online {
                    member,
                    announcer: registry.members.clone(),
                }
            }),
            _entry: entry,
        };
        for topic in open.topics {
            let cursor = match &topic {
                Topic::Video(v) => open.resume.get(v).cloned(),
                _ => None,
            };
            conn.add(topic, cursor).await?;
        }
        if open.draining {
            conn.start_drain();
        }
        Ok(conn)
    }

    /// Adds `topic` (nothing if it is there already): its snapshot, and for a video
    /// with a `cursor` the comments after it, go out before its live events.
    async fn add(&mut self, topic: Topic, cursor: Option<Cursor>) -> Result<(), ApiError> {
        let name = topic.to_string();
        if self
            .slots
            .iter()
            .flatten()
            .any(|s| s.watching.topic() == name)
        {
            return Ok(());
        }
        if self.slots.iter().flatten().count() >= self.max_topics {
            return Err(ApiError::BadRequest(format!(
                "at most {} topics per connection",
                self.max_topics
            )));
        }
        let not_ready = || ApiError::Unavailable {
            message: format!("{topic} is not available yet"),
            retry_after_secs: 1,
        };
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.slots.len());
        let (feed, watching) = match &topic {
            Topic::Video(video) => {
                let membership = self.registry.join(video.clone())?;
                let room = membership.room().clone();
                if !room.ready(READY_TIMEOUT).await {
                    return Err(not_ready());
                }
                let (feed, snap) = room.join_tagged(cursor.as_deref());
                let data = serde_json::json!({ "likes": snap.likes, "viewers": snap.viewers });
                self.prelude
                    .push_back(Pending::Bytes(sse::tagged("snapshot", &name, &data)));
                let mut position: Cursor = snap.positions.iter().map(|p| p.last_seq).collect();
                if let Some(cursor) = cursor {
                    let node = self.registry.node().clone();
                    match resume::resume(&node, &room, &cursor, &snap).await {
                        Resume::Frames { frames, complete } => {
                            metrics::counter!("frontend_replayed_comments_total")
                                .increment(frames.len() as u64);
                            // Replayed comments move the position as they are written.
                            position = cursor;
                            self.prelude
                                .extend(frames.into_iter().map(|f| Pending::Comment(slot, f)));
                            self.end_after_prelude |= !complete;
                        }
                        Resume::Reset(reason) => {
                            metrics::counter!("frontend_resets_total").increment(1);
                            let data = serde_json::json!({
                                "reason": reason, "likes": snap.likes, "viewers": snap.viewers
                            });
                            self.prelude
                                .push_back(Pending::Bytes(sse::tagged("reset", &name, &data)));
                        }
                        Resume::Retry => self.end_after_prelude = true,
                    }
                }
                self.set_position(slot, &position);
                (feed, Watching::Video { membership })
            }
            Topic::Conversation(id) => {
                let member = self.registry.join_conversation(id.clone())?;
                if !member.room().hub.ready(READY_TIMEOUT).await {
                    return Err(not_ready());
                }
                let (feed, snapshot) = member.room().join();
                self.prelude.push_back(Pending::Bytes(snapshot));
                (feed, Watching::Conversation { member })
            }
            Topic::Presence(m) => {
                let member = self.registry.join_presence(m.clone())?;
                if !member.room().hub.ready(READY_TIMEOUT).await {
                    return Err(not_ready());
                }
                let (feed, first) = member.room().join();
                self.prelude.push_back(Pending::Bytes(first));
                (feed, Watching::Presence { member })
            }
        };
        // Listed, then marked: whatever was sent between the subscription and the
        // listing is read at the next poll.
        let bell = watching.bells().add(self.doorbell.clone(), bell::bit(slot));
        self.doorbell.mark(bell::bit(slot));
        let slot_state = Some(Slot {
            feed,
            watching,
            bell,
        });
        if slot == self.slots.len() {
            self.slots.push(slot_state);
        } else {
            self.slots[slot] = slot_state;
        }
        Ok(())
    }

    fn remove(&mut self, topic: &Topic) {
        let name = topic.to_string();
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.watching.topic() == name))
        {
            *s = None;
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }

    /// Reads the topics whose bits are in `bits`, up to `max` pieces in `out`; a topic
    /// not read to the end is marked again. `false`: the connection fell more than the
    /// queue behind in a topic.
    fn read(&mut self, bits: u64, out: &mut Vec<Bytes>, max: usize) -> bool {
        for n in 0..self.slots.len() {
            if !bell::rang(bits, n) {
                continue;
            }
            loop {
                if out.len() >= max {
                    self.doorbell.mark(bell::bit(n));
                    break;
                }
                let Some(slot) = self.slots[n].as_mut() else {
                    break;
                };
                match slot.feed.try_recv() {
                    Ok(frame) => self.take(n, frame, out),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    Err(TryRecvError::Lagged(missed)) => {
                        lagged(missed);
                        return false;
                    }
                }
            }
        }
        true
    }

    async fn apply(&mut self, change: Change) {
        let result = if self.owner.is_some() && change.caller != self.owner {
            Err(ApiError::Forbidden(
                "only the connection's own member may change its topics".into(),
            ))
        } else if change.add {
            self.add(change.topic, None).await
        } else {
            self.remove(&change.topic);
            Ok(())
        };
        let _ = change.reply.send(result);
    }

    fn start_drain(&mut self) {
        if self.drain_at.is_none() {
            let ms = self.drain.as_millis() as u64;
            let delay = Duration::from_millis(rand::rng().random_range(0..=ms));
            self.drain_at = Some(Instant::now() + delay);
        }
    }

    /// Ends the stream with `event: expired` at `exp` (the token's, UNIX seconds).
    pub fn expire_at(&mut self, exp: u64) {
        let now_ms = u64::try_from(live_proto::now_ms()).unwrap_or(0);
        let left = Duration::from_millis(exp.saturating_mul(1000).saturating_sub(now_ms));
        self.expires_at = Instant::now().checked_add(left);
    }

    /// Moves the prelude into `out`, until `out` holds `max` pieces.
    fn write_prelude(&mut self, out: &mut Vec<Bytes>, max: usize) {
        while out.len() < max {
            match self.pop_prelude() {
                Some(Pending::Bytes(b)) => out.push(b),
                Some(Pending::Comment(slot, frame)) => self.take(slot, frame, out),
                None => break,
            }
        }
    }

    /// Puts `bytes` (the answer's head) before everything else the stream writes.
    pub fn prepend(&mut self, bytes: Bytes) {
        self.prelude.push_front(Pending::Bytes(bytes));
    }

    /// The next piece of the prelude; once it is empty its buffer is freed (50 topics'
    /// snapshots, or a replay, must not stay allocated for the stream's life).
    fn pop_prelude(&mut self) -> Option<Pending> {
        let p = self.prelude.pop_front();
        if self.prelude.is_empty() && self.prelude.capacity() > 0 {
            self.prelude = VecDeque::new();
        }
        p
    }

    /// Sets the positions of the video in `slot` (one per region; missing ones 0).
    fn set_position(&mut self, slot: usize, position: &[u64]) {
        let n = self.registry.node().regions.len();
        if self.positions.len() < (slot + 1) * n {
            self.positions.resize((slot + 1) * n, 0);
        }
        for (r, p) in self.positions[slot * n..(slot + 1) * n]
            .iter_mut()
            .enumerate()
        {
            *p = position.get(r).copied().unwrap_or(0);
        }
    }

    /// The id after a comment: every video's position.
    fn composite_id(&self) -> Bytes {
        let regions = &self.registry.node().regions;
        let n = regions.len();
        let positions = self.slots.iter().enumerate().filter_map(|(i, s)| {
            match s.as_ref().map(|s| &s.watching) {
                Some(Watching::Video { membership }) => Some((
                    &membership.room().video,
                    self.positions.get(i * n..(i + 1) * n).unwrap_or(&[]),
                )),
                _ => None,
            }
        });
        Bytes::from(format!("id: {}\n", cursor::format(regions, positions)))
    }

    /// The bytes of `frame` of the topic in `slot`, `None` to skip it.
    fn take(&mut self, slot: usize, frame: Frame, out: &mut Vec<Bytes>) {
        match frame.kind {
            Kind::Drain => self.start_drain(),
            // The connection writes its own.
            Kind::Heartbeat => {}
            Kind::Comment => {
                let Some(Some(Slot {
                    watching: Watching::Video { .. },
                    ..
                })) = self.slots.get(slot)
                else {
                    return;
                };
                let regions = self.registry.node().regions.len();
                let Some(p) = self
                    .positions
                    .get_mut(slot * regions + usize::from(frame.region))
                else {
                    return;
                };
                if frame.seq <= *p {
                    return;
                }
                *p = frame.seq;
                out.push(self.composite_id());
                out.push(frame.tagged);
            }
            _ if frame.tagged.is_empty() => {}
            _ => out.push(frame.tagged),
        }
    }

    /// Waits for the next bytes to write and adds whatever else is ready, up to `max`
    /// pieces; `false` ends the stream.
    pub async fn next_batch(&mut self, out: &mut Vec<Bytes>, max: usize) -> bool {
        if self.ended {
            return false;
        }
        self.write_prelude(out, max.min(PRELUDE_BATCH));
        if out.len() >= max {
            return true;
        }
        if !out.is_empty() {
            return true;
        }
        if self.end_after_prelude {
            return false;
        }
        loop {
            let deadline = match (self.drain_at, self.expires_at) {
                (Some(d), Some(e)) => Some(d.min(e)),
                (d, e) => d.or(e),
            };
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    self.ended = true;
                    if self.expires_at.is_some_and(|e| e <= Instant::now()) {
                        metrics::counter!("frontend_streams_expired_total").increment(1);
                        out.push(sse::expired("token expired"));
                        return true;
                    }
                    return false;
                }
                Some(change) = self.changes.recv() => {
                    // Boxed: joining a topic (a JetStream replay) is a large future, and
                    // this one is part of every stream's resting state.
                    Box::pin(self.apply(change)).await;
                    // The new topic's first state goes out now.
                    self.write_prelude(out, PRELUDE_BATCH);
                }
                bits = std::future::poll_fn(|cx| self.doorbell.poll_take(cx)) => {
                    // Whatever is ready in the topics that rang goes in the same write.
                    if !self.read(bits, out, max) {
                        if out.is_empty() {
                            return false;
                        }
                        self.ended = true;
                    }
                }
                _ = self.heartbeat.as_mut() => {
                    // Every interval, whatever else was written: re-arming the timer on
                    // every write would cost a timer update per delivery.
                    out.push(sse::heartbeat().tagged);
                    let next = Instant::now() + self.registry.node().settings.heartbeat;
                    self.heartbeat.as_mut().reset(next);
                }
            }
            if !out.is_empty() {
                return true;
            }
        }
    }
}

impl Connection {
    /// Counts the pieces of a completed write (frames and ids).
    pub fn record_written(&mut self, pieces: usize) {
        crate::stats::get().frames_out.increment(pieces as u64);
    }
}

fn lagged(missed: u64) {
    crate::stats::get().dropped_lagged.increment(1);
    tracing::debug!(missed, "connection too slow, disconnecting");
}
