//! Like latency: from a like's send to the first `likes` event at a viewer whose `total`
//! includes it.
//!
//! Each accepted like comes back with the video's durable total after it (`202 {"total"}`
//! or `IngestReply.total`); the likes of one group commit share that total. The ledger
//! keeps, per video and total, how many likes got it and the sum of their send times.
//! Sampled viewers (`--likes-sample`) keep the totals they saw with the time they saw
//! them. After the window each batch is matched to the first total at or above it, per
//! sampled viewer, so the race between the reply and the event does not matter. A batch
//! is timed from the mean send time of its likes (group commits span a few ms).

use std::collections::BTreeMap;
use std::sync::Mutex;

use hdrhistogram::Histogram;

use crate::stats::{self, new_histogram};

/// Likes of one durable total.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch {
    pub likes: u64,
    pub sum_send_us: u128,
}

/// Accepted likes per video (index) and total.
pub struct Ledger {
    videos: Box<[Mutex<BTreeMap<u64, Batch>>]>,
}

impl Ledger {
    pub fn new(videos: usize) -> Ledger {
        Ledger {
            videos: (0..videos).map(|_| Mutex::default()).collect(),
        }
    }

    /// `likes` likes sent together at `send_us` (UNIX µs; one like, or one `LikeBatch`)
    /// were accepted with the durable `total`.
    pub fn record_n(&self, video: usize, total: u64, send_us: u64, likes: u64) {
        let mut m = self.videos[video].lock().unwrap_or_else(|e| e.into_inner());
        let b = m.entry(total).or_default();
        b.likes += likes;
        b.sum_send_us += u128::from(send_us) * u128::from(likes);
    }

    /// Everything recorded so far, emptying the ledger (one window's worth).
    pub fn take(&self) -> Vec<BTreeMap<u64, Batch>> {
        self.videos
            .iter()
            .map(|m| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner())))
            .collect()
    }
}

/// The latency of every ledger like at every sampled viewer of its video: the histogram
/// (µs, one count per like and viewer) and how many (like, viewer) pairs never saw it.
///
/// `seen` yields, per sampled viewer, its video index and the `(total, UNIX µs)` of the
/// `likes` events it received, in order.
pub fn latency<'a>(
    ledger: &[BTreeMap<u64, Batch>],
    seen: impl Iterator<Item = (usize, &'a [(u64, u64)])>,
) -> (Histogram<u64>, u64) {
    let mut h = new_histogram();
    let mut unseen = 0;
    for (video, timeline) in seen {
        let Some(batches) = ledger.get(video) else {
            continue;
        };
        for (&total, b) in batches {
            if b.likes == 0 {
                continue;
            }
            let at = timeline.partition_point(|&(t, _)| t < total);
            match timeline.get(at) {
                Some(&(_, recv_us)) => {
                    let sent = (b.sum_send_us / u128::from(b.likes)) as u64;
                    let us = recv_us.saturating_sub(sent).max(1);
                    h.saturating_record_n(us.min(stats::MAX_US), b.likes);
                }
                None => unseen += b.likes,
            }
        }
    }
    (h, unseen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_each_batch_to_the_first_total_covering_it() {
        let ledger = Ledger::new(2);
        ledger.record_n(0, 10, 1_000, 1);
        ledger.record_n(0, 10, 3_000, 1); // same batch: mean send 2 ms
        ledger.record_n(0, 12, 5_000, 1);
        ledger.record_n(0, 20, 6_000, 1); // never seen
        ledger.record_n(1, 3, 1_000, 1); // video without a sampled viewer
        ledger.record_n(0, 14, 8_000, 100); // a batch of 100, first covered by 15 at 9 ms
        let taken = ledger.take();
        assert!(ledger.take()[0].is_empty());
        let timeline = [(9, 1_500), (12, 7_000), (15, 9_000)];
        let (h, unseen) = latency(&taken, [(0usize, &timeline[..])].into_iter());
        // Two likes of total 10 and one of 12 are first covered by 12 at 7 ms; the batch
        // of 100 (total 14) by 15 at 9 ms, 1 ms after it was sent.
        assert_eq!(h.len(), 103);
        assert_eq!(h.value_at_quantile(0.0), h.lowest_equivalent(1_000));
        assert_eq!(h.count_between(1_000, 1_000), 100);
        assert_eq!(h.max(), h.highest_equivalent(5_000));
        assert_eq!(unseen, 1);
    }
}
