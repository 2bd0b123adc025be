//! The node's table of rooms (video → [`Room`]) and what every room shares: the NATS
//! client, JetStream history, configuration, and the node's identity.
//!
//! The first viewer of a video creates its room (and so the node's one subscription for
//! it); a [`Membership`] counts a viewer in and, dropped, out. The table is a std mutex:
//! joins and removals are map operations that never await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use live_proto::{Regions, VideoId};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::history::History;
use crate::room::{self, Room};

pub struct Shared {
    pub client: async_nats::Client,
    pub history: History,
    pub config: Config,
    pub regions: Regions,
    /// Unique per process; names this node in presence messages and in `/connz`.
    pub node_id: String,
    /// Bumped on every NATS reconnect or slow-consumer drop.
    pub reconnects: watch::Receiver<u64>,
    /// Set once the HTTP server has finished: rooms end.
    /// Cancelled when the node stops: rooms end.
    pub stopped: CancellationToken,
    /// The rooms' tasks, so the node's shutdown waits for them (each tells the other
    /// frontends it has no viewers left).
    pub rooms_tasks: TaskTracker,
    /// JetStream replays for resuming viewers running at once (a reconnect storm
    /// queues here instead of flooding JetStream).
    pub replays: Semaphore,
    rooms: Mutex<HashMap<VideoId, Arc<Room>>>,
    viewers: AtomicUsize,
}

/// Replays of history for resuming viewers at once per node.
const MAX_REPLAYS: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("this node has reached its viewer limit ({0})")]
pub struct Full(pub usize);

impl Shared {
    pub fn new(
        client: async_nats::Client,
        config: Config,
        regions: Regions,
        node_id: String,
        reconnects: watch::Receiver<u64>,
        stopped: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Shared {
            history: History::new(
                client.clone(),
                config.js_domain.as_deref(),
                regions.clone(),
                config.partitions,
            ),
            client,
            config,
            regions,
            node_id,
            reconnects,
            stopped,
            rooms_tasks: TaskTracker::new(),
            replays: Semaphore::new(MAX_REPLAYS),
            rooms: Mutex::new(HashMap::new()),
            viewers: AtomicUsize::new(0),
        })
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<VideoId, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a viewer into the video's room, creating the room if needed.
    pub fn join(self: &Arc<Self>, video: VideoId) -> Result<Membership, Full> {
        let max = self.config.max_viewers;
        if max > 0 && self.viewers.load(Ordering::Relaxed) >= max {
            metrics::counter!("frontend_viewers_refused_total").increment(1);
            return Err(Full(max));
        }
        let room = {
            let mut rooms = self.rooms();
            let room = rooms
                .entry(video.clone())
                .or_insert_with(|| {
                    let room = Room::new(video, self.config.viewer_queue, self.regions.len());
                    self.rooms_tasks
                        .spawn(room::run(room.clone(), self.clone()));
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
            shared: self.clone(),
        })
    }

    /// Removes `room` if it has no viewers; called by the room after its grace period.
    pub fn remove_if_idle(&self, room: &Arc<Room>) -> bool {
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

    /// Rooms currently open on this node.
    pub fn room_count(&self) -> usize {
        self.rooms().len()
    }

    /// Viewers currently connected to this node.
    pub fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }
}

/// One viewer counted in a room; dropping it counts the viewer out.
pub struct Membership {
    room: Arc<Room>,
    shared: Arc<Shared>,
}

impl Membership {
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.leave();
        self.shared.viewers.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("frontend_viewers").decrement(1.0);
    }
}
