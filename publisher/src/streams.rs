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
pub enum StreamSetupError {
    #[error("cannot create or update stream {stream}: {source}")]
    Stream {
        stream: &'static str,
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("cannot create or update the LIKE_KEYS bucket: {0}")]
    Bucket(String),
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

/// Key-value bucket of the `Idempotency-Key`s of likes seen in the last 2 minutes.
pub const LIKE_KEYS_BUCKET: &str = "LIKE_KEYS";
/// How long a like's `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(120);

/// The LIKE_KEYS bucket's configuration: a like retried with the same key within
/// [`IDEMPOTENCY_WINDOW`] is counted once.
pub fn like_keys_config(config: &Config) -> jetstream::kv::Config {
    jetstream::kv::Config {
        bucket: LIKE_KEYS_BUCKET.into(),
        description: "Idempotency keys of recent likes".into(),
        history: 1,
        max_age: IDEMPOTENCY_WINDOW,
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        ..Default::default()
    }
}

/// Creates the streams and the idempotency bucket, or updates them to this
/// configuration; returns the bucket.
pub async fn ensure(
    js: &jetstream::Context,
    config: &Config,
) -> Result<jetstream::kv::Store, StreamSetupError> {
    for (name, cfg) in [
        (subjects::COMMENTS_STREAM, comments_config(config)),
        (subjects::LIKES_STREAM, likes_config(config)),
    ] {
        js.create_or_update_stream(cfg)
            .await
            .map_err(|source| StreamSetupError::Stream {
                stream: name,
                source,
            })?;
    }
    js.create_or_update_key_value(like_keys_config(config))
        .await
        .map_err(|e| StreamSetupError::Bucket(e.to_string()))
}
