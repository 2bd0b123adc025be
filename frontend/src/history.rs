//! Reading what JetStream stored, for one region at a time (its own streams, or this
//! region's mirrors of another region's): a video's likes total, the first and last
//! comment sequences still retained, and the comments between two sequences (for
//! resuming viewers and for closing gaps in the live feed).

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    stream::DirectGetErrorKind,
};
use futures::StreamExt;
use live_proto::{Regions, VideoId, subjects, v1};
use prost::Message as _;

/// How long one history read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("JetStream stream {0} is unavailable: {1}")]
    Stream(String, String),
    #[error("JetStream read failed: {0}")]
    Read(String),
    #[error("JetStream read timed out")]
    Timeout,
}

/// A stored comment: its sequence in its region's stream, and the comment.
pub type Stored = (u64, v1::Comment);

#[derive(Clone)]
pub struct History {
    js: jetstream::Context,
    regions: Regions,
}

impl History {
    pub fn new(js: jetstream::Context, regions: Regions) -> Self {
        Self { js, regions }
    }

    async fn stream(&self, name: String) -> Result<jetstream::stream::Stream<()>, HistoryError> {
        self.js
            .get_stream_no_info(&name)
            .await
            .map_err(|e| HistoryError::Stream(name, e.to_string()))
    }

    /// Region `r`'s comments stream as readable here.
    fn comments_stream(&self, r: usize) -> String {
        let origin = &self.regions.all()[r];
        subjects::readable_stream(
            subjects::comments_stream(origin),
            origin,
            self.regions.own(),
        )
    }

    fn comment_subject(&self, r: usize, video: &VideoId) -> String {
        subjects::store_comment(&self.regions.all()[r], video)
    }

    /// The video's durable likes total in region `r` (0 if it never had a like there).
    pub async fn likes_total(&self, r: usize, video: &VideoId) -> Result<u64, HistoryError> {
        let origin = &self.regions.all()[r];
        let stream = self
            .stream(subjects::readable_stream(
                subjects::likes_stream(origin),
                origin,
                self.regions.own(),
            ))
            .await?;
        match stream
            .direct_get_last_for_subject(subjects::likes_counter(origin, video))
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

    /// The sequence of the video's newest comment from region `r` (0 if none).
    pub async fn last_comment_seq(&self, r: usize, video: &VideoId) -> Result<u64, HistoryError> {
        let stream = self.stream(self.comments_stream(r)).await?;
        match stream
            .direct_get_last_for_subject(self.comment_subject(r, video))
            .await
        {
            Ok(msg) => Ok(msg.sequence),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(0),
            Err(e) => Err(HistoryError::Read(e.to_string())),
        }
    }

    /// The sequence of the video's oldest retained comment from region `r`, `None` if
    /// none is retained.
    pub async fn first_comment_seq(
        &self,
        r: usize,
        video: &VideoId,
    ) -> Result<Option<u64>, HistoryError> {
        let stream = self.stream(self.comments_stream(r)).await?;
        match stream
            .direct_get_first_for_subject(self.comment_subject(r, video))
            .await
        {
            Ok(msg) => Ok(Some(msg.sequence)),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(HistoryError::Read(e.to_string())),
        }
    }

    /// The video's comments from region `r` with `after < seq <= upto`, oldest first, at
    /// most `max`.
    pub async fn comments(
        &self,
        r: usize,
        video: &VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<Stored>, HistoryError> {
        if upto <= after || max == 0 {
            return Ok(Vec::new());
        }
        tokio::time::timeout(READ_TIMEOUT, self.read_comments(r, video, after, upto, max))
            .await
            .map_err(|_| HistoryError::Timeout)?
    }

    async fn read_comments(
        &self,
        r: usize,
        video: &VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<Stored>, HistoryError> {
        let stream = self.stream(self.comments_stream(r)).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.comment_subject(r, video),
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
        let mut comments = Vec::new();
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| HistoryError::Read(e.to_string()))?;
            let info = msg.info().map_err(|e| HistoryError::Read(e.to_string()))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq > upto {
                break;
            }
            match v1::Comment::decode(msg.payload.clone()) {
                Ok(comment) => comments.push((seq, comment)),
                Err(_) => metrics::counter!("frontend_undecodable_total").increment(1),
            }
            if seq == upto || pending == 0 || comments.len() >= max {
                break;
            }
        }
        Ok(comments)
    }
}
