//! How many streams on this node watch one topic's room, and the signal that the last
//! one left (the room then waits out its grace period and hands itself back to its
//! table). Shared by every kind of room.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Occupancy {
    count: AtomicU64,
    idle: Notify,
}

impl Occupancy {
    /// Called by the room's table, under its lock.
    pub fn enter(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle.notify_one();
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Resolves when the last occupant left (or had left since the last call).
    pub async fn idle(&self) {
        self.idle.notified().await
    }
}

/// A room kept in a table of its kind: the table counts occupants in and out with it.
pub trait Occupied: Send + Sync + 'static {
    fn occupancy(&self) -> &Occupancy;
}
