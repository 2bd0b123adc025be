//! How many streams on this node watch one topic's room, and the signal that the last
//! one left (the room then waits out its grace period and hands itself back to its
//! table). Shared by every kind of room.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    /// Resolves once the room has stood empty for `grace` after its last occupant
    /// left: the moment its task asks the table to drop it (the table checks again under
    /// its lock). Pin it outside the task's loop: made anew each turn, it would restart.
    pub async fn vacated(&self, grace: Duration) {
        loop {
            self.idle.notified().await;
            if self.count() > 0 {
                continue;
            }
            tokio::time::sleep(grace).await;
            if self.count() == 0 {
                return;
            }
        }
    }
}

/// A room kept in a table of its kind: the table counts occupants in and out with it.
pub trait Occupied: Send + Sync + 'static {
    fn occupancy(&self) -> &Occupancy;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn vacated_after_the_grace_period_unless_someone_came_back() {
        let grace = Duration::from_secs(5);
        let o = Occupancy::default();
        o.enter();
        o.leave();
        o.enter(); // back within the grace period
        let early = tokio::time::timeout(Duration::from_secs(6), o.vacated(grace)).await;
        assert!(early.is_err(), "occupied again: not vacated");
        o.leave();
        let start = tokio::time::Instant::now();
        o.vacated(grace).await;
        assert!(start.elapsed() >= grace);
    }
}
