//! The JetStream streams of a region, created or updated idempotently at start.
//!
//! - `COMMENTS_{region}` (`store.v1.{region}.*.comment`): every comment the region
//!   accepts, file storage, kept for `--comment-retention` and at most
//!   `--comments-per-video` per video. JetStream republishes each stored comment to
//!   `live.v1.{region}.{video}.comment` with its sequence (the comment id) in
//!   `Nats-Sequence` and the video's previous one in `Nats-Last-Sequence`, so viewers only
//!   ever see stored comments and frontends can detect gaps.
//! - `LIKES_{region}` (`likes.v1.{region}.*`): a counter stream (nats-server 2.12+); a
//!   publish with `Nats-Incr: +n` adds n to the video's regional total and the ack
//!   returns the new total. A video's total is the sum over regions.
//! - With several regions (`--regions`), mirrors of the other regions' streams,
//!   `COMMENTS_{other}_{region}` and `LIKES_{other}_{region}`, placed in this region:
//!   same subjects and sequences, so comments accepted elsewhere replay here, and totals
//!   are known here, even while the other region is unreachable.
//! - `LIKE_KEYS_{region}`: a key-value bucket of recent likes' `Idempotency-Key`s.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{Config as StreamConfig, DiscardPolicy, Placement, Republish, Source, StorageType},
};
use live_proto::{Region, Regions, subjects};

use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    #[error("cannot create or update stream {stream}: {source}")]
    Stream {
        stream: String,
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("cannot create or update the idempotency bucket: {0}")]
    Bucket(String),
}

/// How long a like's `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(120);

/// With several regions, everything a region stores stays in that region's cluster.
fn placement(regions: &Regions) -> Option<Placement> {
    regions.is_multi().then(|| Placement {
        cluster: Some(regions.own().to_string()),
        tags: Vec::new(),
    })
}

/// The region's COMMENTS stream.
pub fn comments_config(config: &Config, regions: &Regions) -> StreamConfig {
    let own = regions.own();
    let (source, destination) = subjects::republish(own);
    StreamConfig {
        name: subjects::comments_stream(own),
        description: Some(format!(
            "Comments accepted in {own}; republished to live.v1.{own}.{{video}}.comment"
        )),
        subjects: vec![subjects::store_comments_all(own)],
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        max_age: config.comment_retention,
        max_messages_per_subject: config.comments_per_video,
        discard: DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        republish: Some(Republish {
            source,
            destination,
            headers_only: false,
        }),
        placement: placement(regions),
        ..Default::default()
    }
}

/// The region's LIKES counter stream.
pub fn likes_config(config: &Config, regions: &Regions) -> StreamConfig {
    let own = regions.own();
    StreamConfig {
        name: subjects::likes_stream(own),
        description: Some(format!(
            "Likes totals per video accepted in {own} (counters)"
        )),
        subjects: vec![subjects::likes_all(own)],
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        max_messages_per_subject: 1,
        discard: DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        allow_message_counter: true,
        placement: placement(regions),
        ..Default::default()
    }
}

/// A mirror, in this region, of another region's stream `origin_stream`.
pub fn mirror_config(config: &Config, regions: &Regions, origin_stream: String) -> StreamConfig {
    StreamConfig {
        name: subjects::mirror_stream(&origin_stream, regions.own()),
        description: Some(format!("Mirror of {origin_stream} in {}", regions.own())),
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        max_age: config.comment_retention,
        allow_direct: true,
        mirror_direct: true,
        mirror: Some(Source {
            name: origin_stream,
            ..Default::default()
        }),
        placement: placement(regions),
        ..Default::default()
    }
}

/// The region's idempotency bucket: a like retried with the same key within
/// [`IDEMPOTENCY_WINDOW`] is counted once.
pub fn like_keys_config(config: &Config, region: &Region) -> jetstream::kv::Config {
    jetstream::kv::Config {
        bucket: format!("LIKE_KEYS_{region}"),
        description: "Idempotency keys of recent likes".into(),
        history: 1,
        max_age: IDEMPOTENCY_WINDOW,
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        ..Default::default()
    }
}

/// Every stream this region's publisher owns.
pub fn all_configs(config: &Config, regions: &Regions) -> Vec<StreamConfig> {
    let mut configs = vec![
        comments_config(config, regions),
        likes_config(config, regions),
    ];
    for (i, other) in regions.all().iter().enumerate() {
        if i != regions.own_index() {
            configs.push(mirror_config(
                config,
                regions,
                subjects::comments_stream(other),
            ));
            configs.push(mirror_config(
                config,
                regions,
                subjects::likes_stream(other),
            ));
        }
    }
    configs
}

/// Creates the streams and the idempotency bucket, or updates them to this
/// configuration; returns the bucket.
pub async fn ensure(
    js: &jetstream::Context,
    config: &Config,
    regions: &Regions,
) -> Result<jetstream::kv::Store, StreamSetupError> {
    for cfg in all_configs(config, regions) {
        let name = cfg.name.clone();
        if let Err(source) = js.create_or_update_stream(cfg).await {
            // While a region is cut off, the supercluster's JetStream meta leader may be
            // out of reach: a stream that already exists can still be used.
            if js.get_stream(&name).await.is_ok() {
                tracing::warn!(stream = %name, error = %source, "stream not updated; using it as it is");
                continue;
            }
            return Err(StreamSetupError::Stream {
                stream: name,
                source,
            });
        }
    }
    let kv = like_keys_config(config, regions.own());
    match js.create_or_update_key_value(kv.clone()).await {
        Ok(store) => Ok(store),
        Err(e) => js
            .get_key_value(&kv.bucket)
            .await
            .map_err(|_| StreamSetupError::Bucket(e.to_string())),
    }
}
