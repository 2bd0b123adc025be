//! The JetStream streams the publisher owns, created or updated idempotently at start.
//!
//! - `COMMENTS` (`store.v1.*.comment`): every accepted comment, file storage, kept for
//!   `--comment-retention` and at most `--comments-per-video` per video. JetStream
//!   republishes each stored comment to `live.v1.{video}.comment` with its sequence (the
//!   comment id) in `Nats-Sequence`, so viewers only ever see stored comments and the
//!   frontends learn the id without another round trip.
//! - `LIKES` (`likes.v1.*`): a counter stream (nats-server 2.12+); a publish with
//!   `Nats-Incr: +n` adds n to the video's durable total and the ack returns the new total.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{Config as StreamConfig, DiscardPolicy, Republish, StorageType},
};
use live_proto::subjects;

use crate::Config;

#[derive(Debug, thiserror::Error)]
#[error("cannot create or update stream {stream}: {source}")]
pub struct StreamSetupError {
    stream: &'static str,
    source: async_nats::jetstream::context::CreateStreamError,
}

/// The COMMENTS stream's configuration.
pub fn comments_config(config: &Config) -> StreamConfig {
    StreamConfig {
        name: subjects::COMMENTS_STREAM.into(),
        description: Some(
            "Accepted comments per video; republished to live.v1.{video}.comment".into(),
        ),
        subjects: vec![subjects::STORE_COMMENTS_ALL.into()],
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        max_age: config.comment_retention,
        max_messages_per_subject: config.comments_per_video,
        discard: DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        republish: Some(Republish {
            source: subjects::REPUBLISH_SRC.into(),
            destination: subjects::REPUBLISH_DEST.into(),
            headers_only: false,
        }),
        ..Default::default()
    }
}

/// The LIKES counter stream's configuration.
pub fn likes_config(config: &Config) -> StreamConfig {
    StreamConfig {
        name: subjects::LIKES_STREAM.into(),
        description: Some("Durable likes total per video (counter stream)".into()),
        subjects: vec![subjects::LIKES_ALL.into()],
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        max_messages_per_subject: 1,
        discard: DiscardPolicy::Old,
        allow_direct: true,
        allow_message_counter: true,
        ..Default::default()
    }
}

/// Creates both streams, or updates them to this configuration.
pub async fn ensure(js: &jetstream::Context, config: &Config) -> Result<(), StreamSetupError> {
    for (name, cfg) in [
        (subjects::COMMENTS_STREAM, comments_config(config)),
        (subjects::LIKES_STREAM, likes_config(config)),
    ] {
        js.create_or_update_stream(cfg)
            .await
            .map_err(|source| StreamSetupError {
                stream: name,
                source,
            })?;
    }
    Ok(())
}
