//! Reading what JetStream stored: a video's likes total, the first and last comment
//! sequences it still retains, and the comments between two sequences (for resuming
//! viewers and for closing gaps in the live feed).

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    stream::DirectGetErrorKind,
};
use futures::StreamExt;
use live_proto::{VideoId, subjects, v1};
use prost::Message as _;

use crate::sse::{self, Frame};

/// How long one history read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("JetStream stream {0} is unavailable: {1}")]
    Stream(&'static str, String),
    #[error("JetStream read failed: {0}")]
    Read(String),
    #[error("JetStream read timed out")]
    Timeout,
}

#[derive(Clone)]
pub struct History {
    js: jetstream::Context,
}

impl History {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    async fn stream(
        &self,
        name: &'static str,
    ) -> Result<jetstream::stream::Stream<()>, HistoryError> {
        self.js
            .get_stream_no_info(name)
            .await
            .map_err(|e| HistoryError::Stream(name, e.to_string()))
    }

    /// The video's durable likes total (0 if it never had a like).
    pub async fn likes_total(&self, video: &VideoId) -> Result<u64, HistoryError> {
        let stream = self.stream(subjects::LIKES_STREAM).await?;
        match stream
            .direct_get_last_for_subject(subjects::likes_counter(video))
            .await
        {
            Ok(msg) => {
                #[derive(serde::Deserialize)]
                struct Counter {
                    val: String,
                }
                serde_json::from_slice::<Counter>(&msg.payload)
                    .ok()
                    .and_then(|c| c.val.parse().ok())
                    .ok_or_else(|| HistoryError::Read("counter value is not a number".into()))
            }
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(0),
            Err(e) => Err(HistoryError::Read(e.to_string())),
        }
    }

    /// The sequence of the video's newest stored comment (0 if none).
    pub async fn last_comment_seq(&self, video: &VideoId) -> Result<u64, HistoryError> {
        let stream = self.stream(subjects::COMMENTS_STREAM).await?;
        match stream
            .direct_get_last_for_subject(subjects::store_comment(video))
            .await
        {
            Ok(msg) => Ok(msg.sequence),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(0),
            Err(e) => Err(HistoryError::Read(e.to_string())),
        }
    }

    /// The sequence of the video's oldest retained comment, `None` if none is retained.
    pub async fn first_comment_seq(&self, video: &VideoId) -> Result<Option<u64>, HistoryError> {
        let stream = self.stream(subjects::COMMENTS_STREAM).await?;
        match stream
            .direct_get_first_for_subject(subjects::store_comment(video))
            .await
        {
            Ok(msg) => Ok(Some(msg.sequence)),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(HistoryError::Read(e.to_string())),
        }
    }

    /// The video's comments with `after < seq <= upto`, oldest first, at most `max`.
    pub async fn comments(
        &self,
        video: &VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<Frame>, HistoryError> {
        if upto <= after || max == 0 {
            return Ok(Vec::new());
        }
        tokio::time::timeout(READ_TIMEOUT, self.read_comments(video, after, upto, max))
            .await
            .map_err(|_| HistoryError::Timeout)?
    }

    async fn read_comments(
        &self,
        video: &VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<Frame>, HistoryError> {
        let stream = self.stream(subjects::COMMENTS_STREAM).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subjects::store_comment(video),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| HistoryError::Read(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| HistoryError::Read(e.to_string()))?;
        let mut frames = Vec::new();
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| HistoryError::Read(e.to_string()))?;
            let info = msg.info().map_err(|e| HistoryError::Read(e.to_string()))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq > upto {
                break;
            }
            match v1::Comment::decode(msg.payload.clone()) {
                Ok(comment) => frames.push(sse::comment(seq, &comment)),
                Err(_) => metrics::counter!("frontend_undecodable_total").increment(1),
            }
            if seq == upto || pending == 0 || frames.len() >= max {
                break;
            }
        }
        Ok(frames)
    }
}
