//! The wire contract between the services: protobuf messages (`live.v1`), the NATS
//! subjects they travel on, and the validated identifiers that may appear in a subject.
//!
//! # Layout
//! - [`v1`]: the prost-generated messages of `live/v1/live.proto`.
//! - [`ids`]: [`VideoId`], [`UserId`] and [`CommentText`], the only way a user-supplied
//!   string gets into a subject or a stored message.
//! - [`regions`]: [`Region`], [`Regions`], comment ids and resume cursors across regions.
//! - [`partitions`]: [`Partitions`]: which of a region's N streams stores a video.
//! - [`subjects`]: every subject name, built from a [`VideoId`].

pub mod ids;
pub mod partitions;
pub mod regions;
pub mod subjects;

/// Messages of the `live.v1` protobuf package.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/live.v1.rs"));
}

pub use ids::{CommentText, InvalidInput, UserId, VideoId};
pub use partitions::{Partition, Partitions};
pub use regions::{Region, Regions};

/// Milliseconds since the UNIX epoch, the clock every `*_at_ms` field uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
