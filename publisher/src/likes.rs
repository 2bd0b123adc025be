//! Likes, coalesced by group commit: likes of one video that arrive within the window
//! (`--like-window`) are stored with one `Nats-Incr` write to the video's partition of
//! the LIKES counter streams, and every like of the batch is answered after that write
//! was acknowledged. Then one `Likes {count, total}` event goes to
//! `live.v1.{region}.{video}.likes`. A [`Like`] may itself carry many likes of one video
//! (the batched ingest of an edge tier that aggregates).
//!
//! One batcher task per partition owns that partition's pending batches (no locks), so
//! partitions write in parallel and a partition whose stream leader is being re-elected
//! holds up only its own videos. A partition's flushes run concurrently, at most
//! [`MAX_FLUSHES`] at a time: while they are in flight new likes accumulate, so batches
//! grow with load instead of latency. With `sync_interval: always` every JetStream write
//! is an fsync, so the number of writes, not of likes, is what costs: at most one write
//! per video per flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use live_proto::{Partition, Partitions, Region, VideoId, subjects, v1};
use prost::Message as _;

use crate::retry;
use crate::store_full::{StoreHealth, WriteError, classify};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Flushes in flight at once.
pub const MAX_FLUSHES: usize = 2;
/// Likes waiting for a partition's batcher; beyond it, senders wait (backpressure).
pub const QUEUE: usize = 16_384;

/// Why a like could not be stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LikeError {
    #[error("JetStream counter write failed: {0}")]
    Store(String),
    /// JetStream refused it for want of room (not retried).
    #[error("the store is full: {0}")]
    Full(String),
    #[error("the publisher is shutting down")]
    Closed,
}

impl From<WriteError> for LikeError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Full(cause) => LikeError::Full(cause),
            WriteError::Failed(e) => LikeError::Store(e),
        }
    }
}

/// Who waits for a like's outcome.
pub enum Waiter {
    /// An HTTP request, answered through the channel with the new total.
    Http(oneshot::Sender<Result<u64, LikeError>>),
    /// A NATS ingest request, answered on its reply subject.
    Nats(async_nats::Subject),
    /// Nobody (fire-and-forget ingest).
    None,
}

pub struct Like {
    pub video: VideoId,
    /// How many likes (1, or more from a batched ingest message).
    pub count: u64,
    pub accepted_at_ms: i64,
    pub waiter: Waiter,
}

/// The handle request handlers use; cheap to clone.
#[derive(Clone)]
pub struct LikeBatcher {
    txs: Arc<[mpsc::Sender<Like>]>,
    js: jetstream::Context,
    region: Region,
    partitions: Partitions,
    health: Arc<StoreHealth>,
}

impl LikeBatcher {
    /// Starts a batcher task per partition; they end when every handle is dropped, after
    /// flushing. What their writes show about room in the store goes to `health`.
    pub fn spawn(
        client: async_nats::Client,
        region: Region,
        partitions: Partitions,
        window: Duration,
        health: Arc<StoreHealth>,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let js = crate::retry::context(client.clone());
        let txs = partitions
            .all()
            .map(|partition| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let flusher = Flusher {
                    js: js.clone(),
                    client: client.clone(),
                    region: region.clone(),
                    partition,
                    health: health.clone(),
                };
                tasks.spawn(run(rx, flusher, window));
                tx
            })
            .collect();
        LikeBatcher {
            txs,
            js,
            region,
            partitions,
            health,
        }
    }

    /// The video's durable likes total, read from its partition of the LIKES streams.
    pub async fn total(&self, video: &VideoId) -> Result<u64, LikeError> {
        read_total(&self.js, &self.region, self.partitions.of(video), video).await
    }

    /// Queues likes; waits if the partition's queue is full.
    pub async fn submit(&self, like: Like) -> Result<(), LikeError> {
        let p = self.partitions.of(&like.video);
        self.txs[p.index()]
            .send(like)
            .await
            .map_err(|_| LikeError::Closed)
    }

    /// Stores a batch of `count` likes of `video` at once (batched ingest from an edge
    /// tier) as its own counter write whose `Nats-Msg-Id` is `msg_id`: JetStream counts a
    /// retried batch once. Returns the video's total.
    pub async fn store_batch(
        &self,
        video: &VideoId,
        count: u64,
        msg_id: &str,
    ) -> Result<u64, LikeError> {
        let p = self.partitions.of(video);
        let accepted_at_ms = live_proto::now_ms();
        let (total, duplicate) = increment(
            &self.js,
            &self.health,
            &self.region,
            p,
            video,
            count,
            msg_id,
        )
        .await?;
        if duplicate {
            metrics::counter!("publisher_likes_duplicate_total").increment(count);
        } else {
            metrics::counter!("publisher_likes_stored_total").increment(count);
            metrics::counter!("publisher_like_writes_total").increment(1);
            publish_likes(
                &self.js.client(),
                &self.region,
                video,
                count,
                total,
                accepted_at_ms,
            )
            .await;
        }
        Ok(total)
    }

    /// Queues `count` likes of `video` and waits until they are stored; returns the
    /// video's new total.
    pub async fn like(&self, video: VideoId, count: u64) -> Result<u64, LikeError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Like {
            video,
            count,
            accepted_at_ms: live_proto::now_ms(),
            waiter: Waiter::Http(tx),
        })
        .await?;
        rx.await.map_err(|_| LikeError::Closed)?
    }
}

/// Likes of one video waiting for the next flush.
struct Batch {
    count: u64,
    oldest_ms: i64,
    waiters: Vec<Waiter>,
}

#[derive(Clone)]
struct Flusher {
    js: jetstream::Context,
    client: async_nats::Client,
    region: Region,
    partition: Partition,
    health: Arc<StoreHealth>,
}

async fn run(mut rx: mpsc::Receiver<Like>, flusher: Flusher, window: Duration) {
    let permits = Arc::new(Semaphore::new(MAX_FLUSHES));
    let mut pending: HashMap<VideoId, Batch> = HashMap::new();
    while let Some(first) = rx.recv().await {
        add(&mut pending, first);
        let deadline = tokio::time::Instant::now() + window;
        loop {
            tokio::select! {
                like = rx.recv() => match like {
                    Some(like) => add(&mut pending, like),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Waiting for a permit lets the next batch grow while earlier flushes finish.
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let batches = std::mem::take(&mut pending);
        let flusher = flusher.clone();
        tokio::spawn(async move {
            flusher.flush(batches).await;
            drop(permit);
        });
    }
    // Every handle dropped: wait for the flushes in flight.
    let _ = permits.acquire_many(MAX_FLUSHES as u32).await;
}

fn add(pending: &mut HashMap<VideoId, Batch>, like: Like) {
    let batch = pending.entry(like.video).or_insert_with(|| Batch {
        count: 0,
        oldest_ms: like.accepted_at_ms,
        waiters: Vec::new(),
    });
    batch.count += like.count;
    batch.oldest_ms = batch.oldest_ms.min(like.accepted_at_ms);
    if !matches!(like.waiter, Waiter::None) {
        batch.waiters.push(like.waiter);
    }
}

impl Flusher {
    async fn flush(&self, batches: HashMap<VideoId, Batch>) {
        let mut writes: FuturesUnordered<_> = batches
            .into_iter()
            .map(|(video, batch)| async move {
                let result = self.increment(&video, batch.count).await;
                (video, batch, result)
            })
            .collect();
        while let Some((video, batch, result)) = writes.next().await {
            match &result {
                Ok(total) => {
                    metrics::counter!("publisher_likes_stored_total").increment(batch.count);
                    metrics::counter!("publisher_like_writes_total").increment(1);
                    publish_likes(
                        &self.client,
                        &self.region,
                        &video,
                        batch.count,
                        *total,
                        batch.oldest_ms,
                    )
                    .await;
                }
                Err(e) => {
                    metrics::counter!("publisher_like_write_errors_total").increment(1);
                    tracing::warn!(%video, error = %e, count = batch.count, "storing likes failed");
                }
            }
            for waiter in batch.waiters {
                self.answer(waiter, result.clone()).await;
            }
        }
    }

    /// Adds `count` to the video's counter; returns the new total. Retried through
    /// failures with one `Nats-Msg-Id` per batch, so a batch is counted once.
    async fn increment(&self, video: &VideoId, count: u64) -> Result<u64, LikeError> {
        let msg_id = crate::comments::random_key();
        increment(
            &self.js,
            &self.health,
            &self.region,
            self.partition,
            video,
            count,
            &msg_id,
        )
        .await
        .map(|(total, _)| total)
    }

    async fn answer(&self, waiter: Waiter, result: Result<u64, LikeError>) {
        match waiter {
            Waiter::Http(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Nats(reply) => {
                let reply_msg = match result {
                    Ok(total) => v1::IngestReply {
                        status: 202,
                        total,
                        ..Default::default()
                    },
                    Err(e) => v1::IngestReply {
                        status: 503,
                        error: e.to_string(),
                        ..Default::default()
                    },
                };
                let _ = self
                    .client
                    .publish(reply, reply_msg.encode_to_vec().into())
                    .await;
            }
            Waiter::None => {}
        }
    }
}

/// Adds `count` to the video's counter in partition `p` with the write's `Nats-Msg-Id`
/// `msg_id`, retried through failures with that same id; returns the new total and
/// whether JetStream had already stored that id (a retry: not counted again). A write the
/// store refuses as full is not retried.
async fn increment(
    js: &jetstream::Context,
    health: &StoreHealth,
    region: &Region,
    p: Partition,
    video: &VideoId,
    count: u64,
    msg_id: &str,
) -> Result<(u64, bool), LikeError> {
    let subject = subjects::likes_counter(region, p, video);
    let ack = retry::write(|| {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Incr", format!("+{count}").as_str());
        headers.insert("Nats-Msg-Id", msg_id);
        let subject = subject.clone();
        async move {
            js.publish_with_headers(subject, headers, Bytes::new())
                .await
                .map_err(|e| classify(&e))?
                .await
                .map_err(|e| classify(&e))
        }
    })
    .await;
    let ack = health.record("like", ack)?;
    match ack.value.as_deref().and_then(|v| v.parse().ok()) {
        Some(total) if !ack.duplicate => Ok((total, false)),
        // A duplicate's ack carries no new value; read it.
        _ => Ok((read_total(js, region, p, video).await?, ack.duplicate)),
    }
}

/// Tells the frontends: `count` likes of `video` were stored, the region's total is
/// `total`.
async fn publish_likes(
    client: &async_nats::Client,
    region: &Region,
    video: &VideoId,
    count: u64,
    total: u64,
    accepted_at_ms: i64,
) {
    let event = v1::Likes {
        video: video.to_string(),
        count,
        total,
        accepted_at_ms,
        region: region.to_string(),
    };
    if let Err(e) = client
        .publish(
            subjects::live_likes(region, video),
            event.encode_to_vec().into(),
        )
        .await
    {
        tracing::warn!(%video, error = %e, "publishing likes event failed");
    }
}

/// Reads a video's counter in its partition `p` (0 if the video never had a like).
async fn read_total(
    js: &jetstream::Context,
    region: &Region,
    p: Partition,
    video: &VideoId,
) -> Result<u64, LikeError> {
    let stream = js
        .get_stream_no_info(subjects::likes_stream(region, p))
        .await
        .map_err(|e| LikeError::Store(e.to_string()))?;
    match stream
        .direct_get_last_for_subject(subjects::likes_counter(region, p, video))
        .await
    {
        Ok(msg) => subjects::counter_value(&msg.payload)
            .ok_or_else(|| LikeError::Store("counter value is not a number".into())),
        Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(0),
        Err(e) => Err(LikeError::Store(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(video: &str, at: i64) -> Like {
        Like {
            video: VideoId::parse(video).unwrap(),
            count: 1,
            accepted_at_ms: at,
            waiter: Waiter::None,
        }
    }

    #[test]
    fn likes_are_grouped_per_video_with_the_oldest_time() {
        let mut pending = HashMap::new();
        for (v, at) in [("a", 30), ("b", 5), ("a", 10), ("a", 20)] {
            add(&mut pending, like(v, at));
        }
        let (tx, _rx) = oneshot::channel();
        add(
            &mut pending,
            Like {
                waiter: Waiter::Http(tx),
                ..like("b", 7)
            },
        );
        let a = &pending[&VideoId::parse("a").unwrap()];
        let b = &pending[&VideoId::parse("b").unwrap()];
        assert_eq!((a.count, a.oldest_ms, a.waiters.len()), (3, 10, 0));
        assert_eq!((b.count, b.oldest_ms, b.waiters.len()), (2, 5, 1));
    }
}
