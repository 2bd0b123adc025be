//! When a publisher's sums are whole (pure, the clock passed in): it has been listening
//! for one whole refresh round of the frontends' reports — at least [`MIN_WARMUP`], and
//! longer if a frontend says it refreshes less often. Until then it neither publishes
//! totals nor answers who is online: half a sum is worse than none.

use std::time::Duration;

use tokio::time::Instant;

/// The least time a publisher listens: longer than the frontends' default refresh (a
/// third of `--viewers-ttl`, 10 s, and of `--presence-ttl`, 15 s).
pub const MIN_WARMUP: Duration = Duration::from_millis(6_000);

#[derive(Debug, Clone, Copy)]
pub struct Warmup {
    started: Instant,
    ready_at: Instant,
}

impl Warmup {
    pub fn new(now: Instant) -> Self {
        Warmup {
            started: now,
            ready_at: now + MIN_WARMUP,
        }
    }

    /// A frontend refreshes its counts every `refresh`: ready only after one whole
    /// round of them (plus a second for the one in flight).
    pub fn saw_refresh(&mut self, refresh: Duration) {
        self.ready_at = self
            .ready_at
            .max(self.started + refresh + Duration::from_secs(1));
    }

    pub fn is_ready(&self, now: Instant) -> bool {
        now >= self.ready_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ready_after_the_minimum_or_one_slow_refresh_round() {
        let t0 = Instant::now();
        let mut w = Warmup::new(t0);
        assert!(!w.is_ready(t0 + S));
        assert!(w.is_ready(t0 + MIN_WARMUP));
        // A short refresh changes nothing; a long one lengthens the wait.
        w.saw_refresh(2 * S);
        assert!(w.is_ready(t0 + MIN_WARMUP));
        w.saw_refresh(10 * S);
        assert!(!w.is_ready(t0 + 10 * S));
        assert!(w.is_ready(t0 + 11 * S));
    }
}
