//! Accepting a comment: store it in the COMMENTS stream and answer with its id once
//! JetStream acknowledged the write. JetStream's republish then delivers it live.

use async_nats::jetstream::{self, message::PublishMessage};
use live_proto::{CommentText, Regions, UserId, VideoId, subjects, v1};
use prost::Message as _;

use crate::retry;

/// Why a comment could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("JetStream publish failed: {0}")]
    Publish(#[from] async_nats::jetstream::context::PublishError),
}

#[derive(Clone)]
pub struct CommentStore {
    js: jetstream::Context,
    regions: Regions,
}

/// A stored comment's id: its sequence in its region's COMMENTS stream (`"42"`, or
/// `"east:42"` with several regions), the cursor viewers resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentId(pub String);

impl std::fmt::Display for CommentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl CommentStore {
    pub fn new(js: jetstream::Context, regions: Regions) -> Self {
        Self { js, regions }
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
        let payload = bytes::Bytes::from(comment.encode_to_vec());
        let subject = subjects::store_comment(self.regions.own(), video);
        // The same message with the same Nats-Msg-Id on every attempt: stored once.
        let ack = retry::until_deadline(retry::WRITE_DEADLINE, || {
            let publish = PublishMessage::build()
                .payload(payload.clone())
                .message_id(&dedupe_key);
            let subject = subject.clone();
            async move {
                let ack = self.js.send_publish(subject, publish).await?;
                Ok::<_, StoreError>(ack.await?)
            }
        })
        .await?;
        metrics::counter!("publisher_comments_stored_total").increment(1);
        if ack.duplicate {
            metrics::counter!("publisher_comments_duplicate_total").increment(1);
        }
        Ok(CommentId(
            self.regions
                .comment_id(self.regions.own_index(), ack.sequence),
        ))
    }
}

/// A random message id for requests without an `Idempotency-Key`.
pub fn random_key() -> String {
    use rand::Rng;
    format!("{:032x}", rand::rng().random::<u128>())
}
