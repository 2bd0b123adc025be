//! The publisher's operations (likes, comments; conversations in
//! [`crate::conversations`]), shared by both edges (HTTP and NATS ingest): checks
//! the rate limit, then stores the like or comment. Inputs arrive already validated and
//! the user already authenticated (see [`crate::auth`]), so a flood in someone else's
//! name never spends that user's rate limit.

use async_nats::jetstream::kv::CreateErrorKind;
use live_proto::{CommentText, UserId, VideoId};

use crate::auth::Auth;
use crate::comments::{self, CommentId, CommentStore};
use crate::conversations::Conversations;
use crate::likes::{Like, LikeBatcher, LikeError, Waiter};
use crate::moderation::Moderation;
use crate::ratelimit::RateLimiter;
use crate::store_full::{Observation, classify};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RefusedError {
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("banned from this video for {secs_left} more seconds")]
    Banned { secs_left: u64 },
    #[error("slow mode: one comment per {seconds} s on this video")]
    SlowMode { seconds: u64, retry_after_secs: u64 },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// The store refused the write for want of room (answered at once, not retried).
    #[error("the store is full: {0}")]
    StoreFull(String),
}

impl RefusedError {
    /// A failed store write: full, or unavailable.
    pub fn store(e: crate::store_full::WriteError) -> Self {
        match e {
            crate::store_full::WriteError::Full(cause) => RefusedError::StoreFull(cause),
            crate::store_full::WriteError::Failed(e) => RefusedError::Unavailable(e),
        }
    }
}

impl From<RefusedError> for live_common::ApiError {
    fn from(e: RefusedError) -> Self {
        match e {
            RefusedError::RateLimited { retry_after_secs } => {
                live_common::ApiError::RateLimited { retry_after_secs }
            }
            RefusedError::Banned { .. } => live_common::ApiError::Forbidden(e.to_string()),
            RefusedError::SlowMode {
                seconds,
                retry_after_secs,
            } => live_common::ApiError::SlowMode {
                seconds,
                retry_after_secs,
            },
            RefusedError::Unavailable(cause) => {
                live_common::ApiError::unavailable("storage", cause)
            }
            RefusedError::StoreFull(_) => live_common::ApiError::Unavailable {
                message: e.to_string(),
                retry_after_secs: STORE_FULL_RETRY_AFTER_SECS,
            },
        }
    }
}

/// `Retry-After` of a write refused because the store is full: room comes back when an
/// operator acts, not within a leader election.
pub const STORE_FULL_RETRY_AFTER_SECS: u64 = 5;

impl From<LikeError> for RefusedError {
    fn from(e: LikeError) -> Self {
        match e {
            LikeError::Full(cause) => RefusedError::StoreFull(cause),
            e => RefusedError::Unavailable(e.to_string()),
        }
    }
}

pub struct Service {
    pub auth: Auth,
    pub comments: CommentStore,
    pub likes: LikeBatcher,
    /// `Idempotency-Key`s of recent likes (JetStream key-value bucket).
    pub like_keys: async_nats::jetstream::kv::Store,
    pub like_limit: Option<RateLimiter>,
    pub comment_limit: Option<RateLimiter>,
    pub moderation: Moderation,
    /// Typing indicators and read receipts of conversations.
    pub conversations: Conversations,
    /// Whether the store refuses writes as full (the idempotency keys' writes tell too).
    pub store_health: std::sync::Arc<crate::store_full::StoreHealth>,
}

impl Service {
    /// 403 while `user` is banned from `video`.
    fn check_ban(&self, video: &VideoId, user: &UserId) -> Result<(), RefusedError> {
        match self.moderation.banned_until(video, user) {
            Some(until_ms) => {
                metrics::counter!("publisher_banned_refused_total").increment(1);
                let left_ms = (until_ms - live_proto::now_ms()).max(0) as u64;
                Err(RefusedError::Banned {
                    secs_left: left_ms.div_ceil(1000).max(1),
                })
            }
            None => Ok(()),
        }
    }

    fn limit(
        limiter: &Option<RateLimiter>,
        user: &UserId,
        video: &VideoId,
    ) -> Result<(), RefusedError> {
        match limiter {
            Some(l) => l.check(user, video).map_err(|refused| {
                metrics::counter!("publisher_rate_limited_total", "scope" => refused.scope.as_str())
                    .increment(1);
                RefusedError::RateLimited {
                    retry_after_secs: refused.retry_after_secs,
                }
            }),
            None => Ok(()),
        }
    }

    /// Stores a like and waits for the durable write; returns the video's new total.
    /// A like retried with the same `idempotency_key` within 2 minutes is counted once
    /// (the retry gets the current total).
    pub async fn like(
        &self,
        video: VideoId,
        user: &UserId,
        idempotency_key: Option<&str>,
    ) -> Result<u64, RefusedError> {
        self.check_ban(&video, user)?;
        Self::limit(&self.like_limit, user, &video)?;
        let claimed = match idempotency_key {
            Some(key) => {
                let kv_key = format!("{video}.{user}.{key}");
                let created = self.like_keys.create(&kv_key, bytes::Bytes::new()).await;
                let observed = match &created {
                    Ok(_) => Observation::Stored,
                    // Stored before: no news about room.
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Observation::Failed,
                    Err(e) => Observation::from(&Err::<(), _>(classify(e))),
                };
                self.store_health.observe("like", observed);
                match created {
                    Ok(_) => Some(kv_key),
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                        metrics::counter!("publisher_likes_duplicate_total").increment(1);
                        return Ok(self.likes.total(&video).await?);
                    }
                    Err(e) => return Err(RefusedError::store(classify(&e))),
                }
            }
            None => None,
        };
        match self.likes.like(video, 1).await {
            Ok(total) => Ok(total),
            Err(e) => {
                // Not counted: let a retry with the same key count it.
                if let Some(kv_key) = claimed {
                    let _ = self.like_keys.delete(kv_key).await;
                }
                Err(e.into())
            }
        }
    }

    /// Stores `count` likes of `video` at once (an edge tier's batch); a retry with the
    /// same `key` within 2 minutes is counted once. The batch acts as `user` (the edge's
    /// account) and spends one request of its rate limit: the edge tier has aggregated
    /// and limited its own users. Returns the video's total.
    pub async fn like_batch(
        &self,
        video: &VideoId,
        user: &UserId,
        count: u64,
        key: &str,
    ) -> Result<u64, RefusedError> {
        // An edge account banned from the video is refused like a single like.
        self.check_ban(video, user)?;
        Self::limit(&self.like_limit, user, video)?;
        let msg_id = format!("{video}.{user}.{key}");
        Ok(self.likes.store_batch(video, count, &msg_id).await?)
    }

    /// Queues a like whose outcome is answered by the batcher itself (NATS ingest).
    pub async fn like_answered_by(
        &self,
        video: VideoId,
        user: &UserId,
        waiter: Waiter,
    ) -> Result<(), RefusedError> {
        self.check_ban(&video, user)?;
        Self::limit(&self.like_limit, user, &video)?;
        let like = Like {
            video,
            count: 1,
            accepted_at_ms: live_proto::now_ms(),
            waiter,
        };
        Ok(self.likes.submit(like).await?)
    }

    /// Stores a comment; returns its id after JetStream acknowledged it. A retry with
    /// the same `idempotency_key` is stored once and gets the same id.
    pub async fn comment(
        &self,
        video: &VideoId,
        user: &UserId,
        text: CommentText,
        idempotency_key: Option<&str>,
    ) -> Result<CommentId, RefusedError> {
        self.check_ban(video, user)?;
        let turn = self.moderation.slow_mode_turn(video, user).map_err(
            |(seconds, retry_after_secs)| {
                metrics::counter!("publisher_slow_mode_refused_total").increment(1);
                RefusedError::SlowMode {
                    seconds,
                    retry_after_secs,
                }
            },
        )?;
        let limited = Self::limit(&self.comment_limit, user, video);
        let key = match idempotency_key {
            Some(k) => format!("{video}.{user}.{k}"),
            None => comments::random_key(),
        };
        let stored = match limited {
            Ok(()) => self
                .comments
                .store(video, user, text, key)
                .await
                .map_err(|e| match e {
                    comments::StoreError::Full(cause) => RefusedError::StoreFull(cause),
                    e => RefusedError::Unavailable(e.to_string()),
                }),
            Err(e) => Err(e),
        };
        if stored.is_err()
            && let Some(at) = turn
        {
            // Not stored: the turn is not used up.
            self.moderation.give_back(video, user, at);
        }
        stored
    }
}

/// Validates an `Idempotency-Key`: like an id, 1–64 of `[A-Za-z0-9_-]`.
pub fn idempotency_key(raw: &str) -> Result<&str, live_proto::InvalidInput> {
    live_proto::ids::UserId::parse(raw)
        .map(|_| raw)
        .map_err(|_| {
            live_proto::InvalidInput(
                "Idempotency-Key must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-'".into(),
            )
        })
}
