//! What this node tells the region's publishers about its viewers per video or its
//! connections per member (pure, the clock passed in): at each tick the counts that
//! changed since the last report (0 for an id it no longer holds), and every `refresh`
//! all of its counts, so that the publishers' copies never run out while this node
//! lives. Grouped by the id's shard and cut into messages of at most
//! [`MAX_PER_MESSAGE`] ids.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use live_proto::subjects::report_shard;
use tokio::time::Instant;

/// Ids per report message at most (~70 bytes each: well under NATS's 1 MB payload).
pub const MAX_PER_MESSAGE: usize = 2_000;

/// One report message: a shard and its ids' counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<K> {
    pub shard: u32,
    pub counts: Vec<(K, u32)>,
}

#[derive(Debug)]
pub struct Reports<K> {
    /// What the publishers were last told, per id (non-zero only).
    reported: HashMap<K, u32>,
    last_full: Option<Instant>,
    refresh: Duration,
}

impl<K: Hash + Eq + Clone + AsRef<str>> Reports<K> {
    pub fn new(refresh: Duration) -> Self {
        Reports {
            reported: HashMap::new(),
            last_full: None,
            refresh,
        }
    }

    /// The messages to send now, given this node's current counts.
    pub fn tick(
        &mut self,
        current: impl IntoIterator<Item = (K, u64)>,
        now: Instant,
    ) -> Vec<Batch<K>> {
        let full = self
            .last_full
            .is_none_or(|at| now.saturating_duration_since(at) >= self.refresh);
        if full {
            self.last_full = Some(now);
        }
        let mut out: Vec<(K, u32)> = Vec::new();
        let mut next = HashMap::with_capacity(self.reported.len());
        for (video, n) in current {
            let n = n.min(u64::from(u32::MAX)) as u32;
            if n == 0 {
                continue;
            }
            let old = self.reported.remove(&video);
            if full || old != Some(n) {
                out.push((video.clone(), n));
            }
            next.insert(video, n);
        }
        // Whatever is left was reported and is gone now.
        out.extend(self.reported.drain().map(|(video, _)| (video, 0)));
        self.reported = next;
        batches(out)
    }

    /// Every id reported as gone: what a stopping node sends last.
    pub fn goodbye(&mut self) -> Vec<Batch<K>> {
        batches(self.reported.drain().map(|(video, _)| (video, 0)).collect())
    }
}

fn batches<K: Clone + AsRef<str>>(entries: Vec<(K, u32)>) -> Vec<Batch<K>> {
    let mut by_shard: HashMap<u32, Vec<(K, u32)>> = HashMap::new();
    for (id, n) in entries {
        by_shard
            .entry(report_shard(id.as_ref()))
            .or_default()
            .push((id, n));
    }
    let mut out: Vec<Batch<K>> = by_shard
        .into_iter()
        .flat_map(|(shard, ids)| {
            ids.chunks(MAX_PER_MESSAGE)
                .map(|chunk| Batch {
                    shard,
                    counts: chunk.to_vec(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by_key(|b| b.shard);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use live_proto::VideoId;

    const S: Duration = Duration::from_secs(1);

    fn v(id: &str) -> VideoId {
        VideoId::parse(id).unwrap()
    }

    fn entries(batches: &[Batch<VideoId>]) -> Vec<(VideoId, u32)> {
        let mut all: Vec<_> = batches.iter().flat_map(|b| b.counts.clone()).collect();
        all.sort();
        all
    }

    #[test]
    fn sends_changes_then_refreshes_everything() {
        let t0 = Instant::now();
        let mut r = Reports::new(3 * S);
        let first = r.tick([(v("a"), 2), (v("b"), 1), (v("idle"), 0)], t0);
        assert_eq!(entries(&first), [(v("a"), 2), (v("b"), 1)]);
        // Nothing changed: nothing sent.
        assert!(r.tick([(v("a"), 2), (v("b"), 1)], t0 + S).is_empty());
        // a changed, b left (its room emptied, or closed): both said.
        let changed = r.tick([(v("a"), 3), (v("b"), 0)], t0 + 2 * S);
        assert_eq!(entries(&changed), [(v("a"), 3), (v("b"), 0)]);
        // The refresh repeats every live count, and no zeros.
        let refresh = r.tick([(v("a"), 3)], t0 + 3 * S);
        assert_eq!(entries(&refresh), [(v("a"), 3)]);
        assert_eq!(entries(&r.goodbye()), [(v("a"), 0)]);
        assert!(r.goodbye().is_empty());
    }

    #[test]
    fn groups_by_shard_and_cuts_long_batches() {
        let t0 = Instant::now();
        let mut r = Reports::new(3 * S);
        let n = 3 * MAX_PER_MESSAGE;
        let batches = r.tick((0..n).map(|i| (v(&format!("v{i}")), 1)), t0);
        assert!(batches.iter().all(|b| b.counts.len() <= MAX_PER_MESSAGE));
        assert!(batches.iter().all(|b| {
            b.counts
                .iter()
                .all(|(video, _)| report_shard(video.as_str()) == b.shard)
        }));
        assert_eq!(entries(&batches).len(), n);
        // 16 shards of ~375 videos: one message each.
        assert_eq!(batches.len(), 16);
    }
}
