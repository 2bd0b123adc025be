//! A region's counts summed per id (pure, the clock passed in) — viewers per video, and
//! connections per member: every frontend's latest count of each id, kept until it is
//! refreshed, replaced or its TTL runs out (a frontend killed with -9 stops refreshing
//! and drops out); which frontends hold an id, for how long yet; and the decision which
//! totals to publish — at most once per [`MIN_INTERVAL`] per id, when the total
//! changed, when the id has not been published for [`REFRESH`], or when this publisher
//! has just taken its shard over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::hash::Hash;

use tokio::time::Instant;

/// A video's total goes out at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// An unchanged total goes out again this often, so a frontend that opens the video's
/// room learns it without waiting for a change.
pub const REFRESH: Duration = Duration::from_secs(5);
/// How long frontends count a region's total without hearing it again: three refreshes,
/// so one lost message changes nothing, and a region whose publishers all died drops
/// out of the sum.
pub const TOTAL_TTL: Duration = Duration::from_secs(15);

/// One id's counts by frontend.
#[derive(Debug, Default)]
struct Entry {
    /// Frontend → (its count, when it expires).
    nodes: HashMap<Arc<str>, (u32, Instant)>,
    total: u64,
    /// The total last published and when; `None` when this publisher has not published
    /// it since it (last) took the video's shard over.
    published: Option<(u64, Instant)>,
}

/// Every id's counts in the region.
#[derive(Debug)]
pub struct Sums<K> {
    ids: HashMap<K, Entry>,
    /// Frontend ids, interned: a frontend reports many ids.
    names: HashMap<String, Arc<str>>,
}

impl<K> Default for Sums<K> {
    fn default() -> Self {
        Sums {
            ids: HashMap::new(),
            names: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Sums<K> {
    /// Frontend `node` counts `viewers` of `video`, valid until `expires` (0: none left).
    pub fn report(&mut self, node: &str, video: K, viewers: u32, expires: Instant) {
        if viewers == 0 {
            if let Some(v) = self.ids.get_mut(&video)
                && let Some((n, _)) = v.nodes.remove(node)
            {
                v.total -= u64::from(n);
            }
            return;
        }
        let name = match self.names.get(node) {
            Some(name) => name.clone(),
            None => {
                let name: Arc<str> = node.into();
                self.names.insert(node.to_owned(), name.clone());
                name
            }
        };
        let v = self.ids.entry(video).or_default();
        let old = v
            .nodes
            .insert(name, (viewers, expires))
            .map_or(0, |(n, _)| n);
        v.total = v.total - u64::from(old) + u64::from(viewers);
    }

    /// Drops the counts whose TTL ran out, and frontends no video names any more.
    pub fn expire(&mut self, now: Instant) {
        for v in self.ids.values_mut() {
            let before = v.nodes.len();
            v.nodes.retain(|_, (_, expires)| *expires > now);
            if v.nodes.len() != before {
                v.total = v.nodes.values().map(|(n, _)| u64::from(*n)).sum();
            }
        }
        self.names.retain(|_, name| Arc::strong_count(name) > 1);
    }

    /// The totals to publish now for the ids `owns` says are ours (their shard's);
    /// forgets what was published of the others (so taking a shard over publishes all
    /// of it) and ids nobody counts any more (after publishing their 0 if they are ours).
    pub fn due(&mut self, now: Instant, owns: impl Fn(&K) -> bool) -> Vec<(K, u64)> {
        let mut out = Vec::new();
        self.ids.retain(|video, v| {
            if !owns(video) {
                v.published = None;
                return v.total > 0;
            }
            let send = match v.published {
                None => true,
                Some((n, at)) => {
                    let since = now.saturating_duration_since(at);
                    (n != v.total && since >= MIN_INTERVAL) || since >= REFRESH
                }
            };
            if send {
                out.push((video.clone(), v.total));
                v.published = Some((v.total, now));
            }
            // An empty video stays until its 0 went out.
            v.total > 0 || v.published.is_some_and(|(n, _)| n > 0)
        });
        out
    }

    /// Forgets the ids no frontend counts any more, unless a 0 is still to be published
    /// for them ([`Sums::due`] forgets those once it went out). For sums nobody
    /// publishes (members online), this is what keeps the map to the ids counted now.
    pub fn forget_empty(&mut self) {
        self.ids
            .retain(|_, v| !v.nodes.is_empty() || v.published.is_some_and(|(n, _)| n > 0));
    }

    /// The region's total of `video` as summed here.
    pub fn total(&self, video: &K) -> u64 {
        self.ids.get(video).map_or(0, |v| v.total)
    }

    /// The frontends counting `id` now, and how long each one's count still holds.
    pub fn holders(&self, id: &K, now: Instant) -> Vec<(&str, Duration)> {
        self.ids.get(id).map_or_else(Vec::new, |v| {
            v.nodes
                .iter()
                .filter(|(_, (_, until))| *until > now)
                .map(|(node, (_, until))| (&**node, until.duration_since(now)))
                .collect()
        })
    }

    /// Videos with counts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use live_proto::VideoId;
    use live_proto::subjects::report_shard;

    fn v(id: &str) -> VideoId {
        VideoId::parse(id).unwrap()
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn sums_the_live_counts_and_drops_expired_ones() {
        let t0 = Instant::now();
        let mut s = Sums::default();
        s.report("a", v("x"), 10, t0 + 10 * S);
        s.report("c", v("x"), 1, t0);
        assert_eq!(s.holders(&v("x"), t0), [("a", 10 * S)], "c's ran out");
        s.report("c", v("x"), 0, t0);
        s.report("b", v("x"), 5, t0 + 2 * S);
        s.report("c", v("y"), 1, t0 + 10 * S);
        assert_eq!(s.total(&v("x")), 15);
        // A newer report replaces the node's count.
        s.report("a", v("x"), 12, t0 + 10 * S);
        assert_eq!(s.total(&v("x")), 17);
        // b was killed with -9: its TTL runs out.
        s.expire(t0 + 3 * S);
        assert_eq!(s.total(&v("x")), 12);
        // 0 is a node with none left: out at once.
        s.report("a", v("x"), 0, t0 + 10 * S);
        assert_eq!(s.total(&v("x")), 0);
        assert_eq!(s.total(&v("y")), 1);
        // A 0 for a video never seen changes nothing.
        s.report("a", v("z"), 0, t0 + 10 * S);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn publishes_on_change_at_most_once_a_second_and_refreshes() {
        let t0 = Instant::now();
        let mut s = Sums::default();
        let all = |_: &VideoId| true;
        s.report("a", v("x"), 3, t0 + 60 * S);
        assert_eq!(s.due(t0, all), [(v("x"), 3)], "new");
        assert_eq!(s.due(t0 + S / 2, all), []);
        s.report("b", v("x"), 1, t0 + 60 * S);
        // Changed, but published half a second ago: waits.
        assert_eq!(s.due(t0 + S / 2, all), []);
        assert_eq!(s.due(t0 + S, all), [(v("x"), 4)]);
        // Unchanged: again after REFRESH.
        assert_eq!(s.due(t0 + 5 * S, all), []);
        assert_eq!(s.due(t0 + 6 * S, all), [(v("x"), 4)]);
        // Everybody left: 0 goes out once, then the video is forgotten.
        s.report("a", v("x"), 0, t0);
        s.report("b", v("x"), 0, t0);
        assert_eq!(s.due(t0 + 7 * S, all), [(v("x"), 0)]);
        assert!(s.is_empty());
        assert_eq!(s.due(t0 + 20 * S, all), []);
    }

    #[test]
    fn only_owned_shards_are_published_and_a_takeover_publishes_them_all() {
        let t0 = Instant::now();
        let mut s = Sums::default();
        let videos: Vec<VideoId> = (0..40).map(|i| v(&format!("v{i}"))).collect();
        for (i, video) in videos.iter().enumerate() {
            s.report("a", video.clone(), i as u32 + 1, t0 + 60 * S);
        }
        let even = |video: &VideoId| report_shard(video.as_str()).is_multiple_of(2);
        let out = s.due(t0, even);
        assert!(!out.is_empty() && out.len() < videos.len());
        assert!(out.iter().all(|(video, _)| even(video)));
        // Nothing changed: nothing more within the refresh, though we now own them all.
        let taken_over = s.due(t0 + S, |_: &VideoId| true);
        assert_eq!(
            taken_over.len(),
            videos.len() - out.len(),
            "a takeover publishes what this publisher had not"
        );
        // Lose every shard, then get them back: everything goes out again.
        assert_eq!(s.due(t0 + 2 * S, |_: &VideoId| false), []);
        assert_eq!(s.due(t0 + 3 * S, |_: &VideoId| true).len(), videos.len());
    }

    #[test]
    fn ids_nobody_counts_are_forgotten_unless_their_zero_is_due() {
        let t0 = Instant::now();
        let mut s = Sums::default();
        s.report("a", v("gone"), 1, t0 + S);
        s.report("a", v("left"), 1, t0 + 60 * S);
        s.report("a", v("stays"), 1, t0 + 60 * S);
        assert_eq!(s.due(t0, |_: &VideoId| true).len(), 3);
        s.report("a", v("left"), 0, t0);
        s.expire(t0 + 2 * S);
        s.forget_empty();
        // "gone" and "left" were published non-zero: kept until their 0 goes out.
        assert_eq!(s.len(), 3);
        let mut zeros = s.due(t0 + 2 * S, |_: &VideoId| true);
        zeros.sort();
        assert_eq!(zeros, [(v("gone"), 0), (v("left"), 0)]);
        assert_eq!(s.len(), 1);
        // Never published (members' sums): forgotten at once.
        let mut m = Sums::default();
        m.report("a", v("ann"), 1, t0 + S);
        m.report("a", v("bob"), 1, t0 + 60 * S);
        m.expire(t0 + 2 * S);
        m.forget_empty();
        assert_eq!(m.len(), 1);
        assert_eq!(m.total(&v("bob")), 1);
    }

    #[test]
    fn unowned_videos_nobody_watches_are_forgotten() {
        let t0 = Instant::now();
        let mut s = Sums::default();
        s.report("a", v("x"), 1, t0 + S);
        s.expire(t0 + 2 * S);
        assert_eq!(s.due(t0 + 2 * S, |_: &VideoId| false), []);
        assert!(s.is_empty());
        assert!(s.names.is_empty(), "frontend names are let go too");
    }
}
