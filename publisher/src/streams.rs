//! The JetStream streams of a region, created or updated idempotently at start.
//!
//! Every region has `--partitions N` of each stream (`p` = 0…N-1); a video's comments and
//! likes are all in its partition ([`live_proto::Partitions::of`]), so each partition is
//! its own Raft group with its own leader: writes scale with N and a failed leader stalls
//! only its partition.
//!
//! - `COMMENTS_{region}_p{p}` (`store.v1.{region}.{p}.*.comment`): every comment the
//!   region accepts, file storage, kept for `--comment-retention` and at most
//!   `--comments-per-video` per video. JetStream republishes each stored comment to
//!   `live.v1.{region}.{video}.comment` with its sequence (the comment id) in
//!   `Nats-Sequence` and the video's previous one in `Nats-Last-Sequence`, so viewers only
//!   ever see stored comments and frontends can detect gaps.
//! - `LIKES_{region}_p{p}` (`likes.v1.{region}.{p}.*`): a counter stream (nats-server
//!   2.12+); a publish with `Nats-Incr: +n` adds n to the video's regional total and the
//!   ack returns the new total. A video's total is the sum over regions.
//! - With several regions (`--regions`), mirrors of the other regions' streams,
//!   `COMMENTS_{other}_p{p}_{region}` and `LIKES_{other}_p{p}_{region}`, placed in this
//!   region: same subjects and sequences, so comments accepted elsewhere replay here, and
//!   totals are known here, even while the other region is unreachable.
//! - `LIKE_KEYS_{region}`: a key-value bucket of recent likes' `Idempotency-Key`s.
//! - `MODERATION_{region}`: a key-value bucket of bans and slow modes (see
//!   [`crate::moderation`]), mirrored into the other regions like the streams above.
//! - `RECEIPTS_{region}`: a key-value bucket of conversations' read receipts (key
//!   `{conversation}.{user}`, the latest per user), mirrored into the other regions
//!   like the moderation bucket (`KV_RECEIPTS_{region}_{other}`), so a reader in any
//!   region reads every region's receipts from its own region.
//! - Tombstones of deleted comments are in the video's `COMMENTS_{region}_p{p}` too, on
//!   `store.v1.{region}.{p}.*.deleted`.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{Config as StreamConfig, DiscardPolicy, Placement, Republish, Source, StorageType},
};
use live_proto::{Partition, Partitions, Region, Regions, subjects};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::retry;

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

/// Partition `p` of the region's COMMENTS streams.
pub fn comments_config(config: &Config, regions: &Regions, p: Partition) -> StreamConfig {
    let own = regions.own();
    let (source, destination) = subjects::republish(own, p);
    StreamConfig {
        name: subjects::comments_stream(own, p),
        description: Some(format!(
            "Comments accepted in {own}, partition {p}; republished to live.v1.{own}.{{video}}.comment"
        )),
        subjects: vec![
            subjects::store_comments_all(own, p),
            subjects::store_deleted_all(own, p),
        ],
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

/// Partition `p` of the region's LIKES counter streams.
pub fn likes_config(config: &Config, regions: &Regions, p: Partition) -> StreamConfig {
    let own = regions.own();
    StreamConfig {
        name: subjects::likes_stream(own, p),
        description: Some(format!(
            "Likes totals per video accepted in {own}, partition {p} (counters)"
        )),
        subjects: vec![subjects::likes_all(own, p)],
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

/// A mirror, in this region, of another region's stream `origin`, which has the same
/// retention limits as the origin (`origin` is the origin's configuration): a comments
/// mirror keeps what is replayable there, a likes mirror the latest total of every
/// video, however old.
pub fn mirror_config(config: &Config, regions: &Regions, origin: &StreamConfig) -> StreamConfig {
    let origin_stream = origin.name.clone();
    StreamConfig {
        name: subjects::mirror_stream(&origin_stream, regions.own()),
        description: Some(format!("Mirror of {origin_stream} in {}", regions.own())),
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        max_age: origin.max_age,
        max_messages_per_subject: origin.max_messages_per_subject,
        discard: DiscardPolicy::Old,
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

/// The region's moderation bucket: bans and slow modes, kept until overwritten.
pub fn moderation_config(config: &Config, regions: &Regions) -> jetstream::kv::Config {
    let own = regions.own();
    jetstream::kv::Config {
        bucket: subjects::moderation_bucket(own),
        description: format!("Bans and slow modes set in {own}"),
        history: 1,
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        placement: placement(regions),
        ..Default::default()
    }
}

/// The stream behind a region's moderation bucket as the region's publisher creates it
/// (what the other regions mirror).
fn moderation_stream_config(region: &Region) -> StreamConfig {
    StreamConfig {
        name: subjects::moderation_stream(region),
        max_messages_per_subject: 1,
        ..Default::default()
    }
}

/// Largest value of a receipts entry (a `ReadReceipt` of ids of at most 64 bytes).
const MAX_RECEIPT_BYTES: i32 = 1024;

/// The region's read receipts bucket: the latest receipt per conversation and user,
/// kept until overwritten (one entry per member of a conversation).
pub fn receipts_config(config: &Config, regions: &Regions) -> jetstream::kv::Config {
    let own = regions.own();
    jetstream::kv::Config {
        bucket: subjects::receipts_bucket(own),
        description: format!("Read receipts of conversations accepted in {own}"),
        history: 1,
        max_value_size: MAX_RECEIPT_BYTES,
        storage: StorageType::File,
        num_replicas: config.replicas.into(),
        placement: placement(regions),
        ..Default::default()
    }
}

/// The stream behind a region's receipts bucket (what the other regions mirror).
fn receipts_stream_config(region: &Region) -> StreamConfig {
    StreamConfig {
        name: subjects::receipts_stream(region),
        max_messages_per_subject: 1,
        ..Default::default()
    }
}

/// Every stream this region's publisher owns: its partitions, then the mirrors of the
/// other regions' partitions, moderation and receipts buckets.
pub fn all_configs(
    config: &Config,
    regions: &Regions,
    partitions: Partitions,
) -> Vec<StreamConfig> {
    let mut configs = Vec::new();
    for p in partitions.all() {
        configs.push(comments_config(config, regions, p));
        configs.push(likes_config(config, regions, p));
    }
    for (i, other) in regions.all().iter().enumerate() {
        if i != regions.own_index() {
            // The other region's streams as its publisher configures them.
            let theirs = Regions::new(other.as_str(), &[]).expect("a valid region");
            for p in partitions.all() {
                for origin in [
                    comments_config(config, &theirs, p),
                    likes_config(config, &theirs, p),
                ] {
                    configs.push(mirror_config(config, regions, &origin));
                }
            }
            configs.push(mirror_config(
                config,
                regions,
                &moderation_stream_config(other),
            ));
            configs.push(mirror_config(
                config,
                regions,
                &receipts_stream_config(other),
            ));
        }
    }
    configs
}

/// The key-value buckets the publisher uses.
pub struct Buckets {
    /// Idempotency keys of likes.
    pub like_keys: jetstream::kv::Store,
    /// Bans and slow modes.
    pub moderation: jetstream::kv::Store,
    /// Read receipts of conversations.
    pub receipts: jetstream::kv::Store,
}

/// Creates the streams and the buckets, or updates them to this configuration.
/// Mirrors are created in the background (see [`keep_mirroring`]), which runs until
/// `stopped`.
pub async fn ensure(
    js: &jetstream::Context,
    config: &Config,
    regions: &Regions,
    partitions: Partitions,
    stopped: CancellationToken,
    tasks: &TaskTracker,
) -> Result<Buckets, StreamSetupError> {
    for cfg in all_configs(config, regions, partitions) {
        if cfg.mirror.is_some() {
            tasks.spawn(keep_mirroring(js.clone(), cfg, stopped.clone()));
            continue;
        }
        let name = cfg.name.clone();
        if let Err(source) = js.create_or_update_stream(cfg.clone()).await {
            // While a region is cut off, the supercluster's JetStream meta leader may be
            // out of reach: a stream that already exists can still be used.
            if js.get_stream(&name).await.is_ok() {
                tracing::warn!(stream = %name, error = %source, "stream not updated; using it as it is");
                continue;
            }
            // Not there yet: a cluster that just started may still be electing its
            // JetStream meta leader. Retry for a while before giving up.
            tracing::warn!(stream = %name, error = %source, "stream setup failed, retrying");
            retry::until_deadline(SETUP_DEADLINE, || js.create_or_update_stream(cfg.clone()))
                .await
                .map_err(|source| StreamSetupError::Stream {
                    stream: name,
                    source,
                })?;
        }
    }
    Ok(Buckets {
        like_keys: bucket(js, like_keys_config(config, regions.own())).await?,
        moderation: bucket(js, moderation_config(config, regions)).await?,
        receipts: bucket(js, receipts_config(config, regions)).await?,
    })
}

async fn bucket(
    js: &jetstream::Context,
    kv: jetstream::kv::Config,
) -> Result<jetstream::kv::Store, StreamSetupError> {
    retry::until_deadline(SETUP_DEADLINE, || async {
        match js.create_or_update_key_value(kv.clone()).await {
            Ok(store) => Ok(store),
            Err(e) => js
                .get_key_value(&kv.bucket)
                .await
                .map_err(|_| StreamSetupError::Bucket(e.to_string())),
        }
    })
    .await
}

/// How long the publisher keeps trying to create its streams at start.
const SETUP_DEADLINE: Duration = Duration::from_secs(60);

/// Creates or updates a mirror once its origin stream exists (in the other region),
/// then keeps it moving, until `stopped`; the publisher does not wait for it.
///
/// A mirror created before its origin does not start when the origin appears: nats-server
/// retries a missing origin with a growing backoff (measured: 38 s with the origin
/// created 3 s later), and the region whose publisher started first would not have the
/// other region's comments for that long. Likewise, a mirror that lost contact with its
/// origin (the gateway between the regions was cut) is restarted by nats-server only
/// after a retry backoff of 10 s to 2 minutes once the link is back. So every second the
/// mirror is compared with its origin (stream info of both); one that is behind where
/// its origin was two seconds earlier (a healthy mirror lags by milliseconds) has its
/// stream leader step down: the new leader restarts the mirror at once. With one replica
/// there is no other leader, and the mirror resumes on nats-server's schedule.
async fn keep_mirroring(js: jetstream::Context, cfg: StreamConfig, stopped: CancellationToken) {
    let Some(origin) = cfg.mirror.as_ref().map(|m| m.name.clone()) else {
        return;
    };
    let name = cfg.name.clone();
    let mut delay = Duration::from_millis(250);
    let mut waited = false;
    loop {
        match js.get_stream(&origin).await {
            Ok(_) => match js.create_or_update_stream(cfg.clone()).await {
                Ok(_) => {
                    tracing::info!(stream = %name, %origin, "mirroring");
                    break;
                }
                // E.g. while the regions are cut apart, the JetStream meta group has no
                // leader: an existing mirror keeps working meanwhile.
                Err(e) => {
                    tracing::warn!(stream = %name, error = %e, "mirror not created or updated yet; retrying")
                }
            },
            Err(e) if !waited => {
                tracing::info!(stream = %name, %origin, error = %e, "waiting for the origin stream before mirroring it");
                waited = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The origin's last sequence at the latest ticks, oldest first.
    let mut origin_seen: VecDeque<u64> = VecDeque::new();
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.cancelled() => return,
        }
        let (Some(origin_last), Some(mirror_last)) =
            (last_seq(&js, &origin).await, last_seq(&js, &name).await)
        else {
            // The origin is unreachable (or the mirror's leader is being elected): the
            // mirror cannot move; nothing to compare.
            origin_seen.clear();
            continue;
        };
        origin_seen.push_back(origin_last);
        if origin_seen.len() > 3 {
            origin_seen.pop_front();
        }
        if origin_seen.len() < 3 || mirror_last >= origin_seen[0] {
            continue;
        }
        origin_seen.clear();
        if cfg.num_replicas < 2 {
            if !warned {
                tracing::warn!(stream = %name, %origin, "mirror stalled; with one replica it resumes when nats-server retries");
                warned = true;
            }
            continue;
        }
        let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{name}");
        match tokio::time::timeout(
            Duration::from_secs(2),
            js.client().request(subject, bytes::Bytes::new()),
        )
        .await
        {
            Ok(Ok(reply)) if reply.payload.windows(14).any(|w| w == b"\"success\":true") => {
                metrics::counter!("publisher_mirror_restarts_total").increment(1);
                tracing::info!(stream = %name, %origin, behind = origin_last - mirror_last, "mirror stalled behind its origin: its leader stepped down to restart it");
            }
            Ok(Ok(reply)) => {
                tracing::warn!(stream = %name, reply = %String::from_utf8_lossy(&reply.payload), "mirror stalled; leader step-down refused")
            }
            Ok(Err(e)) => {
                tracing::warn!(stream = %name, error = %e, "mirror stalled; leader step-down failed")
            }
            Err(_) => tracing::warn!(stream = %name, "mirror stalled; leader step-down timed out"),
        }
    }
}

/// A stream's last sequence, from its leader wherever it is; `None` if not known within
/// a second.
async fn last_seq(js: &jetstream::Context, stream: &str) -> Option<u64> {
    match tokio::time::timeout(Duration::from_secs(1), js.get_stream(stream)).await {
        Ok(Ok(s)) => Some(s.cached_info().state.last_sequence),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_region_is_mirrored_with_its_buckets() {
        use clap::Parser;
        let config =
            Config::parse_from(["publisher", "--region", "east", "--regions", "east,west"]);
        let regions = Regions::new("east", &config.regions).unwrap();
        let names: Vec<String> = all_configs(&config, &regions, config.partitions)
            .into_iter()
            .filter(|c| c.mirror.is_some())
            .map(|c| format!("{} <- {}", c.name, c.mirror.unwrap().name))
            .collect();
        assert_eq!(
            names,
            [
                "COMMENTS_west_p0_east <- COMMENTS_west_p0",
                "LIKES_west_p0_east <- LIKES_west_p0",
                "KV_MODERATION_west_east <- KV_MODERATION_west",
                "KV_RECEIPTS_west_east <- KV_RECEIPTS_west",
            ]
        );
        let receipts = receipts_config(&config, &regions);
        assert_eq!(receipts.bucket, "RECEIPTS_east");
        assert_eq!(receipts.history, 1);
        assert_eq!(receipts.placement.unwrap().cluster.as_deref(), Some("east"));
    }
}
