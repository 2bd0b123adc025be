//! The node: the few things every room and viewer on this frontend needs — the NATS
//! client, the store of history, the regions, the node's identity, the timings of rooms
//! and streams, and the signals that it reconnected or stopped.

use std::sync::Arc;
use std::time::Duration;

use live_proto::Regions;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::store::History;

pub struct Node {
    pub client: async_nats::Client,
    pub history: Arc<dyn History>,
    pub regions: Regions,
    /// Unique per process; names this node in presence messages and in `/connz`.
    pub id: String,
    pub settings: Settings,
    /// Bumped on every NATS reconnect or slow-consumer drop.
    pub reconnects: watch::Receiver<u64>,
    /// Cancelled when the node stops: rooms end.
    pub stopped: CancellationToken,
    /// The rooms' tasks, so the node's shutdown waits for them (each tells the other
    /// frontends it has no viewers left).
    pub tasks: TaskTracker,
    /// JetStream replays for resuming viewers running at once (a reconnect storm
    /// queues here instead of flooding JetStream).
    pub replays: Semaphore,
}

/// Replays of history for resuming viewers at once per node.
const MAX_REPLAYS: usize = 64;

/// The timings and sizes of rooms and streams, from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub like_interval: Duration,
    pub heartbeat: Duration,
    pub room_grace: Duration,
    pub presence_ttl: Duration,
    /// How long the publishers count this node's viewer report (`--viewers-ttl`).
    pub viewers_ttl: Duration,
    /// Frames a viewer may fall behind before it is cut (the broadcast ring's size).
    pub viewer_queue: usize,
    /// Recent comments a room keeps for resuming viewers.
    pub replay_buffer: usize,
    /// Comments read from JetStream at most per resume or backfill.
    pub max_replay: usize,
    /// The window `retry:` is drawn from (`--retry-min`..`--retry-max`).
    pub retry_window: crate::retry::RetryWindow,
    /// On shutdown, streams end spread over this window.
    pub drain: Duration,
    /// Viewers on this node at most (0: no limit).
    pub max_viewers: usize,
    /// Rooms of each kind on this node at most (0: no limit).
    pub max_rooms: usize,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Settings {
            like_interval: c.like_interval,
            heartbeat: c.heartbeat,
            room_grace: c.room_grace,
            presence_ttl: c.presence_ttl,
            viewers_ttl: c.viewers_ttl,
            viewer_queue: c.viewer_queue,
            replay_buffer: c.replay_buffer,
            max_replay: c.max_replay,
            retry_window: crate::retry::RetryWindow {
                min: c.retry,
                max: c.retry_max.max(c.retry),
            },
            drain: c.drain,
            max_viewers: c.max_viewers,
            max_rooms: c.max_rooms,
        }
    }
}

impl Node {
    pub fn new(
        client: async_nats::Client,
        history: Arc<dyn History>,
        regions: Regions,
        id: String,
        settings: Settings,
        reconnects: watch::Receiver<u64>,
    ) -> Arc<Self> {
        Arc::new(Node {
            client,
            history,
            regions,
            id,
            settings,
            reconnects,
            stopped: CancellationToken::new(),
            tasks: TaskTracker::new(),
            replays: Semaphore::new(MAX_REPLAYS),
        })
    }

    /// Subscribes to `subject`, retrying every half second while NATS refuses (it is
    /// reconnecting): a room, or the node's own listeners, wait rather than fail.
    pub async fn subscribe(&self, subject: String) -> async_nats::Subscriber {
        loop {
            match self.client.subscribe(subject.clone()).await {
                Ok(sub) => return sub,
                Err(e) => {
                    tracing::warn!(%subject, error = %e, "subscribe failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}
