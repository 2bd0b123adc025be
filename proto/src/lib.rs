//! The wire contract between the services: protobuf messages (`live.v1`), the NATS
//! subjects they travel on, and the validated identifiers that may appear in a subject.
//!
//! # Layout
//! - [`v1`]: the prost-generated messages of `live/v1/live.proto`.
//! - [`ids`]: [`VideoId`], [`UserId`], [`ConversationId`], [`MessageId`] and
//!   [`CommentText`], the only way a user-supplied string gets into a subject or a stored
//!   message.
//! - [`topics`]: [`Topic`], the `video:…`, `conversation:…`, `presence:…` topics of
//!   `/v1/stream`.
//! - [`conversations`]: read receipts merged from the KV snapshot and live events.
//! - [`regions`]: [`Region`], [`Regions`], comment ids and resume cursors across regions.
//! - [`partitions`]: [`Partitions`]: which of a region's N streams stores a video.
//! - [`subjects`]: every subject name, built from validated ids.

pub mod conversations;
pub mod ids;
pub mod partitions;
pub mod regions;
pub mod subjects;
pub mod topics;

/// Messages of the `live.v1` protobuf package.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/live.v1.rs"));
}

pub use ids::{CommentText, ConversationId, InvalidInput, MemberId, MessageId, UserId, VideoId};
pub use partitions::{Partition, Partitions};
pub use regions::{Region, Regions};
pub use topics::{Topic, TopicError};

/// Milliseconds since the UNIX epoch, the clock every `*_at_ms` field uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
