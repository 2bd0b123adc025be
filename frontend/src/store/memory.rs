//! [`History`] kept in memory, for tests of the logic built on reads: one sequence per
//! region's stream shared by every video (as a JetStream stream's is), retention that
//! drops the oldest comments, and an outage switch that fails every read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::FutureExt;
use live_proto::{ConversationId, VideoId, v1};

use super::{BoxFuture, History, HistoryError, Stored, StoredEntry, Tombstone};

#[derive(Default)]
pub struct MemoryHistory {
    regions: Mutex<Vec<Region>>,
    unavailable: AtomicBool,
    /// Reads made, as `frontend_history_reads_total` counts JetStream's.
    reads: AtomicU64,
}

#[derive(Default, Clone)]
struct Region {
    /// The stream's last sequence (comments and tombstones of every video).
    seq: u64,
    comments: HashMap<VideoId, Vec<Stored>>,
    deletions: HashMap<VideoId, Vec<Tombstone>>,
    likes: HashMap<VideoId, u64>,
    receipts: HashMap<ConversationId, Vec<StoredEntry>>,
}

impl MemoryHistory {
    pub fn new(regions: usize) -> Self {
        MemoryHistory {
            regions: Mutex::new(vec![Region::default(); regions]),
            unavailable: AtomicBool::new(false),
            reads: AtomicU64::new(0),
        }
    }

    fn with<T>(&self, r: usize, f: impl FnOnce(&mut Region) -> T) -> T {
        let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut regions[r])
    }

    /// Stores a comment in region `r`'s stream; returns its sequence.
    pub fn add_comment(&self, r: usize, video: &VideoId, comment: v1::Comment) -> u64 {
        self.with(r, |region| {
            region.seq += 1;
            let seq = region.seq;
            region
                .comments
                .entry(video.clone())
                .or_default()
                .push((seq, comment));
            seq
        })
    }

    /// Takes a sequence of region `r`'s stream for another video's message (so the
    /// video's own sequences have holes, as in a shared stream).
    pub fn skip(&self, r: usize) {
        self.with(r, |region| region.seq += 1);
    }

    /// Stores a tombstone of comment `id` in region `r`'s stream.
    pub fn add_deletion(&self, r: usize, video: &VideoId, id: &str) -> u64 {
        self.with(r, |region| {
            region.seq += 1;
            let seq = region.seq;
            let tombstone = v1::CommentDeleted {
                id: id.into(),
                ..Default::default()
            };
            region
                .deletions
                .entry(video.clone())
                .or_default()
                .push((seq, tombstone));
            seq
        })
    }

    /// Stores a KV entry (`subject`, `payload`) of `conversation` in region `r`.
    pub fn add_receipt(
        &self,
        r: usize,
        conversation: &ConversationId,
        subject: &str,
        payload: Vec<u8>,
    ) {
        self.with(r, |region| {
            region.seq += 1;
            let seq = region.seq;
            region
                .receipts
                .entry(conversation.clone())
                .or_default()
                .push((subject.to_owned(), seq, payload.into()));
        });
    }

    pub fn set_likes(&self, r: usize, video: &VideoId, total: u64) {
        self.with(r, |region| region.likes.insert(video.clone(), total));
    }

    /// Drops region `r`'s comments of `video` with a sequence below `seq` (retention).
    pub fn retain_from(&self, r: usize, video: &VideoId, seq: u64) {
        self.with(r, |region| {
            if let Some(c) = region.comments.get_mut(video) {
                c.retain(|(s, _)| *s >= seq);
            }
        });
    }

    /// Reads made so far (every call of a [`History`] method).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// While set, every read fails as an unreachable JetStream would.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::Relaxed);
    }

    fn read<T: Send + 'static>(
        &self,
        r: usize,
        f: impl FnOnce(&Region) -> T,
    ) -> BoxFuture<'static, Result<T, HistoryError>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let result = if self.unavailable.load(Ordering::Relaxed) {
            Err(HistoryError::Timeout)
        } else {
            Ok(self.with(r, |region| f(region)))
        };
        futures::future::ready(result).boxed()
    }
}

impl History for MemoryHistory {
    fn likes_total<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<u64, HistoryError>> {
        self.read(r, |region| region.likes.get(video).copied().unwrap_or(0))
    }

    fn last_comment_seq<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<u64, HistoryError>> {
        self.read(r, |region| {
            region
                .comments
                .get(video)
                .and_then(|c| c.last())
                .map_or(0, |(s, _)| *s)
        })
    }

    fn first_comment_seq<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<Option<u64>, HistoryError>> {
        self.read(r, |region| {
            region
                .comments
                .get(video)
                .and_then(|c| c.first())
                .map(|(s, _)| *s)
        })
    }

    fn comments<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>, HistoryError>> {
        self.read(r, |region| {
            region
                .comments
                .get(video)
                .into_iter()
                .flatten()
                .filter(|(s, _)| *s > after && *s <= upto)
                .take(max)
                .cloned()
                .collect()
        })
    }

    fn deletions<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Tombstone>, HistoryError>> {
        self.read(r, |region| {
            region
                .deletions
                .get(video)
                .into_iter()
                .flatten()
                .filter(|(s, _)| *s > after)
                .cloned()
                .collect()
        })
    }

    fn receipts<'a>(
        &'a self,
        r: usize,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Vec<StoredEntry>, HistoryError>> {
        self.read(r, |region| {
            region
                .receipts
                .get(conversation)
                .cloned()
                .unwrap_or_default()
        })
    }
}
