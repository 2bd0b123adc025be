//! What every topic's room on a node has, whatever its kind: its `"topic"` name, the
//! bounded broadcast its streams read (and the doorbells of the connections that read
//! it), whether it is ready (subscribed and knows its state), and who occupies it.
//! Video rooms keep their own (they predate the other kinds and carry more);
//! conversation and presence rooms are built on this.

use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::bell::Bells;
use crate::occupancy::Occupancy;
use crate::sse::Frame;

pub struct Hub {
    /// `conversation:{id}`, `presence:{member}`.
    pub topic: String,
    tx: broadcast::Sender<Frame>,
    /// The `/v1/stream` connections watching it, rung after every send.
    pub bells: Bells,
    ready: watch::Sender<bool>,
    pub occupancy: Occupancy,
}

impl Hub {
    pub fn new(topic: String, queue: usize) -> Self {
        Hub {
            topic,
            tx: broadcast::channel(queue.max(16)).0,
            bells: Bells::default(),
            ready: watch::channel(false).0,
            occupancy: Occupancy::default(),
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

    pub fn set_ready(&self) {
        self.ready.send_replace(true);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }

    pub fn broadcast(&self, frame: Frame) {
        let _ = self.tx.send(frame);
        self.bells.ring();
    }
}
