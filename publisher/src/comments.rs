//! Accepting a comment: store it in its video's partition of the COMMENTS streams and
//! answer with its id once JetStream acknowledged the write. JetStream's republish then
//! delivers it live.
//!
//! Writes are group-committed per partition: one writer task per partition takes every
//! comment waiting for it (of any video of the partition, up to [`MAX_BATCH`]), publishes
//! them back to back and awaits their acks together; while that batch is in flight the
//! next one gathers. At most [`MAX_BATCHES_IN_FLIGHT`] batches per partition are in flight,
//! so under load the batches grow instead of the queue of round trips, and a partition
//! whose leader is being re-elected holds up only its own comments. A comment whose ack
//! does not come is retried alone, with the same `Nats-Msg-Id` (stored once).
//!
//! Why pipelined publishes and not JetStream's atomic batch publish (nats-server 2.12,
//! `allow_atomic`; the `jetstream-extra` crate): an atomic batch is all-or-nothing, which
//! would tie unrelated users' comments together (one refused message fails everybody's
//! request), and `jetstream-extra` 0.3 is built on async-nats 0.48, not the 0.51 client
//! we use. docs/performance.md has the measurements.

use std::sync::Arc;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use bytes::Bytes;
use futures::future::join_all;
use live_proto::{CommentText, Partitions, Regions, UserId, VideoId, subjects, v1};
use prost::Message as _;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::retry;
use crate::store_full::{StoreHealth, WriteError, classify};

/// Most comments published as one group.
pub const MAX_BATCH: usize = 256;
/// Groups of one partition in flight at once.
pub const MAX_BATCHES_IN_FLIGHT: usize = 2;
/// Comments waiting for a partition's writer; beyond it, requests wait (backpressure).
pub const QUEUE: usize = 4096;

/// Why a comment could not be stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("JetStream publish failed: {0}")]
    Publish(String),
    /// JetStream refused it for want of room (not retried).
    #[error("the store is full: {0}")]
    Full(String),
    #[error("the publisher is shutting down")]
    Closed,
}

/// A stored comment's id: its sequence in its region's COMMENTS stream of the video's
/// partition (`"42"`, or `"east:42"` with several regions), the cursor viewers resume
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentId(pub String);

impl std::fmt::Display for CommentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One comment waiting for its partition's writer.
struct Pending {
    subject: String,
    payload: Bytes,
    msg_id: String,
    done: oneshot::Sender<Result<u64, StoreError>>,
}

/// The handle request handlers use; cheap to clone. Writer tasks end when every handle
/// is dropped, after the comments they hold are written.
#[derive(Clone)]
pub struct CommentStore {
    writers: Arc<[mpsc::Sender<Pending>]>,
    regions: Regions,
    partitions: Partitions,
}

impl CommentStore {
    /// Starts one writer per partition; what their writes show about room in the store
    /// goes to `health`.
    pub fn new(
        js: jetstream::Context,
        regions: Regions,
        partitions: Partitions,
        health: Arc<StoreHealth>,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let writers = partitions
            .all()
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tasks.spawn(write_partition(js.clone(), health.clone(), rx));
                tx
            })
            .collect();
        Self {
            writers,
            regions,
            partitions,
        }
    }

    /// Stores the comment; returns after JetStream acknowledged it. `dedupe_key` becomes
    /// the `Nats-Msg-Id`: a retry with the same key within the duplicate window is stored
    /// once and answered with the original id.
    pub async fn store(
        &self,
        video: &VideoId,
        user: &UserId,
        text: CommentText,
        dedupe_key: String,
    ) -> Result<CommentId, StoreError> {
        let comment = v1::Comment {
            video: video.to_string(),
            user: user.to_string(),
            text: text.into_string(),
            accepted_at_ms: live_proto::now_ms(),
            region: self.regions.own().to_string(),
        };
        let p = self.partitions.of(video);
        let (done, rx) = oneshot::channel();
        let pending = Pending {
            subject: subjects::store_comment(self.regions.own(), p, video),
            payload: Bytes::from(comment.encode_to_vec()),
            msg_id: dedupe_key,
            done,
        };
        self.writers[p.index()]
            .send(pending)
            .await
            .map_err(|_| StoreError::Closed)?;
        let sequence = rx.await.map_err(|_| StoreError::Closed)??;
        Ok(CommentId(
            self.regions.comment_id(self.regions.own_index(), sequence),
        ))
    }
}

/// A partition's writer: gathers what waits, writes it as one group, repeats.
async fn write_partition(
    js: jetstream::Context,
    health: Arc<StoreHealth>,
    mut rx: mpsc::Receiver<Pending>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // `recv_many` takes everything already queued (up to the limit) without waiting.
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Waiting for a slot lets the next group grow while earlier ones finish.
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        metrics::histogram!("publisher_comment_batch_size").record(batch.len() as f64);
        let group = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let (js, health) = (js.clone(), health.clone());
        tokio::spawn(async move {
            write_group(&js, &health, group).await;
            drop(permit);
        });
    }
    // Every handle dropped: wait for the groups in flight.
    let _ = in_flight.acquire_many(MAX_BATCHES_IN_FLIGHT as u32).await;
}

/// Publishes the group back to back, then awaits the acks; retries the ones that failed,
/// except those the store refused as full (answered at once).
async fn write_group(js: &jetstream::Context, health: &StoreHealth, group: Vec<Pending>) {
    let mut sent: Vec<(Pending, Option<PublishAckFuture>)> = Vec::with_capacity(group.len());
    for p in group {
        let ack = js.send_publish(p.subject.clone(), message(&p)).await.ok();
        sent.push((p, ack));
    }
    let acks = join_all(sent.into_iter().map(|(p, ack)| async move {
        let first = match ack {
            Some(ack) => ack.await.map_err(|e| classify(&e)),
            None => Err(WriteError::Failed("not sent".to_owned())),
        };
        let result = match first {
            Ok(ack) => Ok(ack),
            Err(full @ WriteError::Full(_)) => Err(full),
            // The same message with the same Nats-Msg-Id: stored once however often sent.
            Err(_) => retry::write(|| async {
                js.send_publish(p.subject.clone(), message(&p))
                    .await
                    .map_err(|e| classify(&e))?
                    .await
                    .map_err(|e| classify(&e))
            })
            .await
            .inspect(|_| metrics::counter!("publisher_write_retries_total").increment(1)),
        };
        (p, health.record("comment", result))
    }));
    for (p, result) in acks.await {
        let result = match result {
            Ok(ack) => {
                metrics::counter!("publisher_comments_stored_total").increment(1);
                if ack.duplicate {
                    metrics::counter!("publisher_comments_duplicate_total").increment(1);
                }
                Ok(ack.sequence)
            }
            Err(e) => {
                metrics::counter!("publisher_comment_write_errors_total").increment(1);
                Err(match e {
                    WriteError::Full(cause) => StoreError::Full(cause),
                    WriteError::Failed(e) => StoreError::Publish(e),
                })
            }
        };
        let _ = p.done.send(result);
    }
}

fn message(p: &Pending) -> PublishMessage {
    PublishMessage::build()
        .payload(p.payload.clone())
        .message_id(&p.msg_id)
}

/// A random message id for requests without an `Idempotency-Key`.
pub fn random_key() -> String {
    use rand::Rng;
    format!("{:032x}", rand::rng().random::<u128>())
}
