//! The viewer count a room shows (pure, the clock passed in): the sum of the regions'
//! totals, each published by a publisher of its region (which sums that region's
//! frontends' reports) and counted until its TTL runs out — with this node's own
//! viewers as a floor for its own region, so a join here shows at once and a region
//! whose publishers are all down still counts what this node sees. Shown at most once
//! per [`MIN_INTERVAL`], when it changed.

use std::time::Duration;

use tokio::time::Instant;

/// A room sends `viewers` at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct ViewerCounts {
    /// Per region (index in `--regions`): its latest total and until when it counts.
    regions: Vec<Option<(u64, Instant)>>,
    own: usize,
    /// What viewers were last shown, and when.
    shown: Option<(u64, Instant)>,
}

impl ViewerCounts {
    pub fn new(regions: usize, own: usize) -> Self {
        ViewerCounts {
            regions: vec![None; regions],
            own,
            shown: None,
        }
    }

    /// Region `r`'s total, valid for `ttl` from `now`.
    pub fn observe(&mut self, r: usize, viewers: u64, ttl: Duration, now: Instant) {
        if let Some(slot) = self.regions.get_mut(r) {
            *slot = Some((viewers, now + ttl));
        }
    }

    /// Viewers in every region whose total is live, with `local` (this node's) as the
    /// least of its own region.
    pub fn total(&self, local: u64, now: Instant) -> u64 {
        let live = |r: usize| {
            self.regions[r]
                .filter(|(_, until)| *until > now)
                .map_or(0, |(n, _)| n)
        };
        (0..self.regions.len())
            .map(|r| {
                if r == self.own {
                    live(r).max(local)
                } else {
                    live(r)
                }
            })
            .sum()
    }

    /// The count to send viewers now, if it changed and none was sent within
    /// [`MIN_INTERVAL`].
    pub fn due(&mut self, local: u64, now: Instant) -> Option<u64> {
        let total = self.total(local, now);
        let send = match self.shown {
            None => true,
            Some((n, at)) => n != total && now.saturating_duration_since(at) >= MIN_INTERVAL,
        };
        send.then(|| {
            self.shown = Some((total, now));
            total
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const TTL: Duration = Duration::from_secs(15);

    #[test]
    fn sums_the_regions_with_the_local_count_as_a_floor() {
        let t0 = Instant::now();
        let mut c = ViewerCounts::new(2, 0);
        // Before any total arrives: what this node sees.
        assert_eq!(c.total(3, t0), 3);
        c.observe(0, 10, TTL, t0);
        c.observe(1, 5, TTL, t0);
        assert_eq!(c.total(3, t0), 15);
        // Our region's total lags a join here: the local count is the floor.
        assert_eq!(c.total(12, t0), 17);
        // Out-of-range regions are ignored.
        c.observe(7, 100, TTL, t0);
        assert_eq!(c.total(3, t0), 15);
    }

    #[test]
    fn an_expired_region_drops_out() {
        let t0 = Instant::now();
        let mut c = ViewerCounts::new(2, 1);
        c.observe(0, 10, 2 * S, t0);
        c.observe(1, 5, TTL, t0);
        assert_eq!(c.total(0, t0 + S), 15);
        assert_eq!(c.total(0, t0 + 3 * S), 5);
    }

    #[test]
    fn shows_a_change_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut c = ViewerCounts::new(1, 0);
        assert_eq!(c.due(1, t0), Some(1), "first");
        assert_eq!(c.due(1, t0 + S), None, "unchanged");
        c.observe(0, 4, TTL, t0 + S);
        assert_eq!(c.due(1, t0 + S + S / 2), Some(4));
        c.observe(0, 6, TTL, t0 + 2 * S);
        assert_eq!(c.due(1, t0 + 2 * S), None, "half a second after the last");
        assert_eq!(c.due(1, t0 + 2 * S + S / 2), Some(6));
    }
}
