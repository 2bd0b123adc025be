//! The node's tables of rooms — videos, conversations, watched members — and its count
//! of viewers.
//!
//! The first stream of a topic creates its room and spawns the room's task (and so the
//! node's one subscription for it); a membership counts a stream in and, dropped, out.
//! The task hands the room back through the release callback it was given: rooms never
//! see the tables. Each table is a std mutex: joins and removals are map operations
//! that never await.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use live_proto::{ConversationId, MemberId, VideoId};

use crate::conversation::{self, Conversation};
use crate::node::Node;
use crate::occupancy::Occupied;
use crate::presence::{self, Announcer, PresenceRoom};
use crate::room::{self, Room};

/// Rooms of one kind by key.
struct Table<K, R> {
    rooms: Mutex<HashMap<K, Arc<R>>>,
}

impl<K: Hash + Eq + Clone + Send + 'static, R: Occupied> Table<K, R> {
    fn new() -> Arc<Self> {
        Arc::new(Table {
            rooms: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<R>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room of `key`, counted in; made with `make` and its task spawned with
    /// `spawn(room, release)` if there was none.
    fn join<Fut>(
        self: &Arc<Self>,
        key: K,
        node: &Node,
        gauge: &'static str,
        make: impl FnOnce(K) -> Arc<R>,
        spawn: impl FnOnce(Arc<R>, Box<dyn Fn(&Arc<R>) -> bool + Send>) -> Fut,
    ) -> Result<Arc<R>, Full>
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut rooms = self.lock();
        let max = node.settings.max_rooms;
        if max > 0 && rooms.len() >= max && !rooms.contains_key(&key) {
            metrics::counter!("frontend_rooms_refused_total").increment(1);
            return Err(Full::Rooms(max));
        }
        let room = rooms
            .entry(key.clone())
            .or_insert_with(|| {
                let room = make(key.clone());
                let table = self.clone();
                let release =
                    Box::new(move |room: &Arc<R>| table.remove_if_idle(&key, room, gauge));
                node.tasks.spawn(spawn(room.clone(), release));
                metrics::gauge!(gauge).increment(1.0);
                room
            })
            .clone();
        room.occupancy().enter();
        Ok(room)
    }

    /// Removes `room` if nobody occupies it (checked under the table's lock, so nobody
    /// joins it meanwhile); `false` if somebody came back.
    fn remove_if_idle(&self, key: &K, room: &Arc<R>, gauge: &'static str) -> bool {
        let mut rooms = self.lock();
        if room.occupancy().count() > 0 {
            return false;
        }
        if rooms.get(key).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(key);
            metrics::gauge!(gauge).decrement(1.0);
        }
        true
    }

    /// Each room's key and how many occupy it.
    fn occupancy(&self) -> Vec<(K, u64)> {
        let rooms = self.lock();
        rooms
            .iter()
            .map(|(k, r)| (k.clone(), r.occupancy().count()))
            .collect()
    }

    fn each(&self, f: impl Fn(&R)) {
        for room in self.lock().values() {
            f(room);
        }
    }
}

pub struct Registry {
    node: Arc<Node>,
    videos: Arc<Table<VideoId, Room>>,
    conversations: Arc<Table<ConversationId, Conversation>>,
    presences: Arc<Table<MemberId, PresenceRoom>>,
    /// This node's members, as the other frontends hear of them.
    pub members: Arc<Announcer>,
    viewers: AtomicUsize,
}

/// A node limit was reached.
#[derive(Debug, thiserror::Error)]
pub enum Full {
    #[error("this node has reached its viewer limit ({0})")]
    Viewers(usize),
    #[error("this node holds as many topics of this kind as it may ({0})")]
    Rooms(usize),
}

/// A full node answers 503: another node, or this one in a while, has room.
impl From<Full> for live_common::ApiError {
    fn from(e: Full) -> Self {
        live_common::ApiError::Unavailable {
            message: e.to_string(),
            retry_after_secs: 5,
        }
    }
}

impl Registry {
    /// The tables, and the node's announcer of its members.
    pub fn new(node: Arc<Node>, presence_grace: std::time::Duration) -> Arc<Self> {
        let members = Announcer::new(presence_grace, node.settings.presence_ttl);
        node.tasks
            .spawn(presence::run_announcer(members.clone(), node.clone()));
        Arc::new(Registry {
            node,
            videos: Table::new(),
            conversations: Table::new(),
            presences: Table::new(),
            members,
            viewers: AtomicUsize::new(0),
        })
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Counts a viewer into the video's room, creating the room if needed.
    pub fn join(self: &Arc<Self>, video: VideoId) -> Result<Membership, Full> {
        let max = self.node.settings.max_viewers;
        if max > 0 && self.viewers.load(Ordering::Relaxed) >= max {
            metrics::counter!("frontend_viewers_refused_total").increment(1);
            return Err(Full::Viewers(max));
        }
        let node = &self.node;
        let room = self.videos.join(
            video,
            node,
            "frontend_rooms",
            |video| Room::new(video, node.settings.viewer_queue, node.regions.len()),
            |room, release| room::run(room, node.clone(), release),
        )?;
        self.viewers.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("frontend_viewers").increment(1.0);
        Ok(Membership {
            room,
            registry: self.clone(),
        })
    }

    /// Counts a stream into the conversation's room, creating it if needed.
    pub fn join_conversation(&self, id: ConversationId) -> Result<Member<Conversation>, Full> {
        let node = &self.node;
        let room = self.conversations.join(
            id,
            node,
            "frontend_conversations",
            |id| Conversation::new(id, node.settings.viewer_queue),
            |room, release| conversation::run(room, node.clone(), release),
        )?;
        Ok(Member(room))
    }

    /// Counts a stream into the watched member's room, creating it if needed.
    pub fn join_presence(&self, member: MemberId) -> Result<Member<PresenceRoom>, Full> {
        let node = &self.node;
        let room = self.presences.join(
            member,
            node,
            "frontend_presence_rooms",
            |member| PresenceRoom::new(member, node.settings.viewer_queue),
            |room, release| presence::run(room, node.clone(), self.members.clone(), release),
        )?;
        Ok(Member(room))
    }

    /// Tells every stream on this node that the node is draining.
    pub fn drain_all(&self) {
        self.videos.each(|r| r.broadcast(crate::sse::drain()));
        self.conversations
            .each(|r| r.hub.broadcast(crate::sse::drain()));
        self.presences
            .each(|r| r.hub.broadcast(crate::sse::drain()));
    }

    /// Viewers of each video on this node (0 for a room in its grace period).
    pub fn video_counts(&self) -> Vec<(VideoId, u64)> {
        self.videos.occupancy()
    }

    /// Viewers currently connected to this node.
    pub fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }
}

/// One viewer counted in a video's room; dropping it counts the viewer out.
pub struct Membership {
    room: Arc<Room>,
    registry: Arc<Registry>,
}

impl Membership {
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.registry.node
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.occupancy().leave();
        self.registry.viewers.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("frontend_viewers").decrement(1.0);
    }
}

/// A stream counted in a conversation's or a watched member's room.
pub struct Member<R: Occupied>(Arc<R>);

impl<R: Occupied> Member<R> {
    pub fn room(&self) -> &Arc<R> {
        &self.0
    }
}

impl<R: Occupied> Drop for Member<R> {
    fn drop(&mut self) {
        self.0.occupancy().leave();
    }
}
