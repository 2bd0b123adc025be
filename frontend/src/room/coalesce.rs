//! Likes coalescing for one video: likes arriving from NATS are summed, and at most one
//! `likes` event is due per interval. A like after a quiet period is due at once (no
//! added latency); under load, events are spaced by the interval.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct LikeCoalescer {
    interval: Duration,
    count: u64,
    oldest_ms: i64,
    due: Option<Instant>,
    last_flush: Option<Instant>,
}

/// A coalesced batch, ready to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch {
    pub count: u64,
    /// When the publisher accepted the oldest like in it (UNIX ms).
    pub oldest_ms: i64,
}

impl LikeCoalescer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            count: 0,
            oldest_ms: 0,
            due: None,
            last_flush: None,
        }
    }

    /// Adds `count` likes, the oldest accepted at `accepted_at_ms`.
    pub fn add(&mut self, count: u64, accepted_at_ms: i64, now: Instant) {
        if count == 0 {
            return;
        }
        self.oldest_ms = if self.count == 0 {
            accepted_at_ms
        } else {
            self.oldest_ms.min(accepted_at_ms)
        };
        self.count += count;
        if self.due.is_none() {
            let earliest = self.last_flush.map_or(now, |t| t + self.interval);
            self.due = Some(earliest.max(now));
        }
    }

    /// When the next event is due, if any likes are pending.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Takes the pending likes (call when [`due`](Self::due) has passed).
    pub fn flush(&mut self, now: Instant) -> Option<Batch> {
        self.due = None;
        if self.count == 0 {
            return None;
        }
        self.last_flush = Some(now);
        let batch = Batch {
            count: self.count,
            oldest_ms: self.oldest_ms,
        };
        self.count = 0;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_like_after_quiet_is_due_at_once() {
        let mut c = LikeCoalescer::new(50 * MS);
        let t0 = Instant::now();
        assert_eq!(c.due(), None);
        c.add(1, 100, t0);
        assert_eq!(c.due(), Some(t0));
        assert_eq!(
            c.flush(t0),
            Some(Batch {
                count: 1,
                oldest_ms: 100
            })
        );
        assert_eq!(c.flush(t0), None, "nothing pending, nothing sent");
    }

    #[test]
    fn likes_under_load_are_summed_one_event_per_interval() {
        let mut c = LikeCoalescer::new(50 * MS);
        let t0 = Instant::now();
        c.add(1, 100, t0);
        c.flush(t0);
        for i in 0..10 {
            c.add(2, 200 - i, t0 + MS * i as u32);
        }
        assert_eq!(c.due(), Some(t0 + 50 * MS), "spaced by the interval");
        assert_eq!(
            c.flush(t0 + 50 * MS),
            Some(Batch {
                count: 20,
                oldest_ms: 191
            })
        );
        // Quiet for longer than the interval: due at once again.
        c.add(5, 300, t0 + 500 * MS);
        assert_eq!(c.due(), Some(t0 + 500 * MS));
    }

    #[test]
    fn zero_counts_change_nothing() {
        let mut c = LikeCoalescer::new(50 * MS);
        c.add(0, 1, Instant::now());
        assert_eq!(c.due(), None);
    }
}
