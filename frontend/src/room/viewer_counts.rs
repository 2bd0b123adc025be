//! The viewer count of one video across frontends, without a central counter: every
//! node publishes its own count with a TTL (refreshed before it runs out, and at once
//! when it changes or a node it did not know appears), and sums the others' live ones.
//! Pure: the caller passes the time and does the publishing.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Other frontends' counts of one video, and what this node last published.
#[derive(Debug)]
pub struct ViewerCounts {
    others: HashMap<String, (u64, Instant)>,
    published: Option<(u64, Instant)>,
    /// Publish at the next tick whatever the refresh time (a new node appeared).
    dirty: bool,
    /// How often our count is refreshed (a third of its TTL, so one lost message does
    /// not drop this node from the others' sums).
    refresh: Duration,
}

/// What a tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Publish this node's count now.
    pub publish: Option<u64>,
    /// Viewers on every frontend whose count is live.
    pub total: u64,
}

impl ViewerCounts {
    pub fn new(ttl: Duration) -> Self {
        ViewerCounts {
            others: HashMap::new(),
            published: None,
            dirty: true,
            refresh: ttl / 3,
        }
    }

    /// Another node's count, valid for `ttl` from `now`. A count of 0 is that node
    /// leaving.
    pub fn observe(&mut self, node: &str, viewers: u64, ttl: Duration, now: Instant) {
        if viewers == 0 {
            self.others.remove(node);
            return;
        }
        let known = self
            .others
            .insert(node.to_owned(), (viewers, now + ttl))
            .is_some();
        if !known {
            // A frontend we did not know: answer with our own count so it converges
            // without waiting for our next refresh.
            self.dirty = true;
        }
    }

    /// Once a second: drops expired counts, decides whether to publish `own`, and sums.
    pub fn tick(&mut self, own: u64, now: Instant) -> Tick {
        self.others.retain(|_, (_, expires)| *expires > now);
        let stale = self
            .published
            .is_none_or(|(n, at)| n != own || now.duration_since(at) >= self.refresh);
        let publish = (stale || self.dirty).then(|| {
            self.published = Some((own, now));
            self.dirty = false;
            own
        });
        Tick {
            publish,
            total: own + self.others.values().map(|(n, _)| n).sum::<u64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    #[test]
    fn sums_live_counts_and_drops_expired_ones() {
        let t0 = Instant::now();
        let mut c = ViewerCounts::new(TTL);
        c.observe("a", 10, TTL, t0);
        c.observe("b", 5, Duration::from_secs(2), t0);
        assert_eq!(c.tick(1, t0).total, 16);
        // b's TTL ran out: a node killed with -9 drops out of the sum.
        assert_eq!(c.tick(1, t0 + Duration::from_secs(3)).total, 11);
        // a refreshed itself: still counted.
        c.observe("a", 12, TTL, t0 + Duration::from_secs(10));
        assert_eq!(c.tick(1, t0 + Duration::from_secs(20)).total, 13);
        assert_eq!(c.tick(1, t0 + Duration::from_secs(26)).total, 1);
    }

    #[test]
    fn zero_is_a_node_leaving_at_once() {
        let t0 = Instant::now();
        let mut c = ViewerCounts::new(TTL);
        c.observe("a", 10, TTL, t0);
        c.observe("a", 0, TTL, t0);
        assert_eq!(c.tick(2, t0).total, 2);
    }

    #[test]
    fn publishes_on_change_on_refresh_and_for_a_new_node() {
        let t0 = Instant::now();
        let mut c = ViewerCounts::new(TTL);
        assert_eq!(c.tick(3, t0).publish, Some(3), "first tick");
        assert_eq!(c.tick(3, t0 + Duration::from_secs(1)).publish, None);
        assert_eq!(
            c.tick(4, t0 + Duration::from_secs(2)).publish,
            Some(4),
            "changed"
        );
        // Refreshed a third of the TTL after the last publish.
        assert_eq!(c.tick(4, t0 + Duration::from_secs(6)).publish, None);
        assert_eq!(c.tick(4, t0 + Duration::from_secs(7)).publish, Some(4));
        // A node we did not know: it hears from us at the next tick.
        c.observe("new", 1, TTL, t0 + Duration::from_secs(8));
        assert_eq!(c.tick(4, t0 + Duration::from_secs(8)).publish, Some(4));
        // A known node's refresh does not make us publish.
        c.observe("new", 1, TTL, t0 + Duration::from_secs(9));
        assert_eq!(c.tick(4, t0 + Duration::from_secs(9)).publish, None);
    }
}
