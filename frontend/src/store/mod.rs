//! What the frontend reads of what was stored: the [`History`] of a video in one region
//! (its likes total, the first and last comment sequences still retained, the comments
//! between two sequences, the tombstones of deleted comments). [`JetStreamHistory`]
//! reads JetStream; [`MemoryHistory`] keeps it in memory, so the logic built on reads
//! (resuming a viewer, closing a gap) is tested without a server.
//!
//! The trait returns boxed futures so a node can hold it as `Arc<dyn History>`; a read
//! is a network round trip, next to which the box costs nothing.
//!
//! Every read [`JetStreamHistory`] makes is counted in `frontend_history_reads_total`
//! by [`ReadKind`] (a request, however many messages it returns), so what a reconnect
//! storm costs JetStream shows in `/metrics`; [`MemoryHistory::reads`] counts the same
//! for tests.

mod jetstream;
mod memory;

use std::future::Future;
use std::pin::Pin;

use live_proto::{ConversationId, VideoId, v1};

pub use jetstream::JetStreamHistory;
pub use memory::MemoryHistory;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum HistoryError {
    #[error("JetStream stream {0} is unavailable: {1}")]
    Stream(String, String),
    #[error("JetStream read failed: {0}")]
    Read(String),
    #[error("JetStream read timed out")]
    Timeout,
}

/// What a read of history is for: the `kind` label of `frontend_history_reads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// Comments between two sequences: a resuming viewer's replay, a room's gap backfill.
    Comments,
    /// The oldest retained comment's sequence (a resume checks nothing was lost).
    FirstSeq,
    /// The newest comment's sequence (a room opening or catching up).
    LastSeq,
    /// The durable likes total (a room opening or catching up).
    Likes,
    /// Tombstones of deleted comments (a room opening, or one was missed).
    Tombstones,
    /// Read receipts of a conversation.
    Receipts,
}

impl ReadKind {
    pub fn label(self) -> &'static str {
        match self {
            ReadKind::Comments => "comments",
            ReadKind::FirstSeq => "first_seq",
            ReadKind::LastSeq => "last_seq",
            ReadKind::Likes => "likes",
            ReadKind::Tombstones => "tombstones",
            ReadKind::Receipts => "receipts",
        }
    }
}

/// Counts one read of JetStream history.
pub(crate) fn count_read(kind: ReadKind) {
    metrics::counter!("frontend_history_reads_total", "kind" => kind.label()).increment(1);
}

/// A stored comment: its sequence in its region's stream, and the comment.
pub type Stored = (u64, v1::Comment);

/// A KV entry as stored: its subject (`$KV.{bucket}.{key}`), revision and value.
pub type StoredEntry = (String, u64, bytes::Bytes);

/// A stored tombstone: its sequence in its region's stream, and the tombstone.
pub type Tombstone = (u64, v1::CommentDeleted);

/// Reads of one video's stored history in region `r` (an index in `--regions`).
/// Sequences are per region's stream, shared by every video of its partition.
pub trait History: Send + Sync + 'static {
    /// The video's durable likes total in region `r` (0 if it never had a like there).
    fn likes_total<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<u64, HistoryError>>;

    /// The sequence of the video's newest comment from region `r` (0 if none).
    fn last_comment_seq<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<u64, HistoryError>>;

    /// The sequence of the video's oldest retained comment from region `r`, `None` if
    /// none is retained.
    fn first_comment_seq<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<Option<u64>, HistoryError>>;

    /// The video's comments from region `r` with `after < seq <= upto`, oldest first, at
    /// most `max`.
    fn comments<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>, HistoryError>>;

    /// Every read receipt of `conversation` stored in region `r`'s receipts bucket, as
    /// readable here: `(subject, revision, payload)` of each entry.
    fn receipts<'a>(
        &'a self,
        r: usize,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Vec<StoredEntry>, HistoryError>>;

    /// The video's tombstones stored in region `r` after sequence `after`, oldest first.
    fn deletions<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Tombstone>, HistoryError>>;
}
