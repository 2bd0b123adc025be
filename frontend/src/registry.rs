//! The node's table of rooms (video → [`Room`]) and its count of viewers.
//!
//! The first viewer of a video creates its room and spawns the room's task (and so the
//! node's one subscription for it); a [`Membership`] counts a viewer in and, dropped,
//! out. The task hands the room back through the release callback it was given: rooms
//! never see the table. The table is a std mutex: joins and removals are map operations
//! that never await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use live_proto::VideoId;

use crate::node::Node;
use crate::room::{self, Room};

pub struct Registry {
    node: Arc<Node>,
    rooms: Mutex<HashMap<VideoId, Arc<Room>>>,
    viewers: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("this node has reached its viewer limit ({0})")]
pub struct Full(pub usize);

impl Registry {
    pub fn new(node: Arc<Node>) -> Arc<Self> {
        Arc::new(Registry {
            node,
            rooms: Mutex::new(HashMap::new()),
            viewers: AtomicUsize::new(0),
        })
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<VideoId, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a viewer into the video's room, creating the room if needed.
    pub fn join(self: &Arc<Self>, video: VideoId) -> Result<Membership, Full> {
        let max = self.node.settings.max_viewers;
        if max > 0 && self.viewers.load(Ordering::Relaxed) >= max {
            metrics::counter!("frontend_viewers_refused_total").increment(1);
            return Err(Full(max));
        }
        let room = {
            let mut rooms = self.rooms();
            let room = rooms
                .entry(video.clone())
                .or_insert_with(|| {
                    let node = &self.node;
                    let room = Room::new(video, node.settings.viewer_queue, node.regions.len());
                    let registry = self.clone();
                    let release = move |room: &Arc<Room>| registry.remove_if_idle(room);
                    node.tasks
                        .spawn(room::run(room.clone(), node.clone(), release));
                    metrics::gauge!("frontend_rooms").increment(1.0);
                    room
                })
                .clone();
            room.enter();
            room
        };
        self.viewers.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("frontend_viewers").increment(1.0);
        Ok(Membership {
            room,
            registry: self.clone(),
        })
    }

    /// Removes `room` if it has no viewers (checked under the table's lock, so no viewer
    /// joins it meanwhile); `false` if one came back.
    fn remove_if_idle(&self, room: &Arc<Room>) -> bool {
        let mut rooms = self.rooms();
        if room.local_viewers() > 0 {
            return false;
        }
        if rooms.get(&room.video).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&room.video);
            metrics::gauge!("frontend_rooms").decrement(1.0);
        }
        true
    }

    /// Tells every viewer on this node that the node is draining.
    pub fn drain_all(&self) {
        for room in self.rooms().values() {
            room.broadcast(crate::sse::drain());
        }
    }

    /// Viewers currently connected to this node.
    pub fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }
}

/// One viewer counted in a room; dropping it counts the viewer out.
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
        self.room.leave();
        self.registry.viewers.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("frontend_viewers").decrement(1.0);
    }
}
