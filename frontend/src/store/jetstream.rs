//! [`History`] read from JetStream, for one region at a time (its own streams, or this
//! region's mirrors of another region's), always from the video's partition.
//!
//! Every read is a direct get, answered by any replica of the stream (or of the mirror)
//! in this region: no consumer is created. In a supercluster a consumer is created
//! through the JetStream meta group, which spans every region: that is a round trip to
//! wherever its leader is, and no consumer at all while the regions are cut apart (the
//! meta group then has no majority on either side). Direct gets work in both cases.

use std::time::Duration;

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use futures::FutureExt;
use live_proto::{ConversationId, Partitions, Regions, VideoId, subjects};

use super::{
    BoxFuture, History, HistoryError, ReadKind, Stored, StoredEntry, Tombstone, count_read,
};

/// Receipts read at most per conversation and region (one per member who read it).
const MAX_RECEIPTS: usize = 10_000;

/// How long one JetStream request (a direct get) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct JetStreamHistory {
    js: jetstream::Context,
    client: async_nats::Client,
    /// `$JS.API`, or `$JS.{domain}.API` for the JetStream of domain `--js-domain`.
    api_prefix: String,
    regions: Regions,
    partitions: Partitions,
}

impl JetStreamHistory {
    /// Reads through `client` from the JetStream of its servers, or of `domain` (a leaf
    /// server's clients reach the hub's JetStream through the hub's domain).
    pub fn new(
        client: async_nats::Client,
        domain: Option<&str>,
        regions: Regions,
        partitions: Partitions,
    ) -> Self {
        let (mut js, api_prefix) = match domain {
            Some(d) => (
                jetstream::with_domain(client.clone(), d),
                format!("$JS.{d}.API"),
            ),
            None => (jetstream::new(client.clone()), "$JS.API".to_owned()),
        };
        // A request nobody answers (through a leaf connection, one for a stream that does
        // not exist yet gets no "no responders" status) must not hold a room for long.
        js.set_timeout(REQUEST_TIMEOUT);
        Self {
            js,
            client,
            api_prefix,
            regions,
            partitions,
        }
    }

    async fn stream(&self, name: String) -> Result<jetstream::stream::Stream<()>, HistoryError> {
        self.js
            .get_stream_no_info(&name)
            .await
            .map_err(|e| HistoryError::Stream(name, e.to_string()))
    }

    /// Region `r`'s comments stream of the video's partition, as readable here.
    fn comments_stream(&self, r: usize, video: &VideoId) -> String {
        let origin = &self.regions.all()[r];
        subjects::readable_stream(
            subjects::comments_stream(origin, self.partitions.of(video)),
            origin,
            self.regions.own(),
        )
    }

    fn comment_subject(&self, r: usize, video: &VideoId) -> String {
        subjects::store_comment(&self.regions.all()[r], self.partitions.of(video), video)
    }

    /// The video's durable likes total in region `r` (0 if it never had a like there).
    pub async fn likes_total(&self, r: usize, video: &VideoId) -> Result<u64, HistoryError> {
        count_read(ReadKind::Likes);
        let origin = &self.regions.all()[r];
        let p = self.partitions.of(video);
        let stream = self
            .stream(subjects::readable_stream(
                subjects::likes_stream(origin, p),
                origin,
                self.regions.own(),
            ))
            .await?;
        match stream
            .direct_get_last_for_subject(subjects::likes_counter(origin, p, video))
            .await
        {
            Ok(msg) => subjects::counter_value(&msg.payload)
                .ok_or_else(|| HistoryError::Read("counter value is not a number".into())),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(0),
            Err(e) => Err(HistoryError::Read(e.to_string())),
        }
    }

    /// The sequence of the video's newest comment from region `r` (0 if none).
    pub async fn last_comment_seq(&self, r: usize, video: &VideoId) -> Result<u64, HistoryError> {
        count_read(ReadKind::LastSeq);
        let stream = self.stream(self.comments_stream(r, video)).await?;
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
        count_read(ReadKind::FirstSeq);
        let stream = self.stream(self.comments_stream(r, video)).await?;
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
        count_read(ReadKind::Comments);
        let stream = self.comments_stream(r, video);
        let msgs = self
            .read(&stream, &self.comment_subject(r, video), after, upto, max)
            .await?;
        Ok(decoded(msgs))
    }

    /// The video's comment tombstones stored in region `r`'s stream after sequence
    /// `after`, oldest first: `(sequence of the tombstone, the tombstone)`.
    pub async fn deletions(
        &self,
        r: usize,
        video: &VideoId,
        after: u64,
    ) -> Result<Vec<Tombstone>, HistoryError> {
        count_read(ReadKind::Tombstones);
        let subject =
            subjects::store_deleted(&self.regions.all()[r], self.partitions.of(video), video);
        let stream = self.comments_stream(r, video);
        let msgs = self
            .read(&stream, &subject, after, u64::MAX, usize::MAX)
            .await?;
        Ok(decoded(msgs))
    }

    /// Every receipt of `conversation` in region `r`'s bucket (or this region's mirror
    /// of it), at most [`MAX_RECEIPTS`].
    pub async fn receipts(
        &self,
        r: usize,
        conversation: &ConversationId,
    ) -> Result<Vec<StoredEntry>, HistoryError> {
        count_read(ReadKind::Receipts);
        let origin = &self.regions.all()[r];
        let stream = subjects::readable_stream(
            subjects::receipts_stream(origin),
            origin,
            self.regions.own(),
        );
        let msgs = self
            .read(
                &stream,
                &subjects::receipts_of(origin, conversation),
                0,
                u64::MAX,
                MAX_RECEIPTS,
            )
            .await?;
        Ok(msgs
            .into_iter()
            .map(|m| (m.subject, m.seq, m.payload))
            .collect())
    }

    /// The messages of `stream` on `subject` with `after < seq <= upto`, at most `max`.
    async fn read(
        &self,
        stream: &str,
        subject: &str,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<live_common::direct::StoredMsg>, HistoryError> {
        live_common::direct::read(
            &self.client,
            &self.api_prefix,
            stream,
            subject,
            after,
            upto,
            max,
        )
        .await
        .map_err(|e| match e {
            live_common::direct::DirectError::Timeout => HistoryError::Timeout,
            e => HistoryError::Read(e.to_string()),
        })
    }
}

/// Each message decoded with its sequence; one that does not decode is counted and
/// left out.
fn decoded<M: prost::Message + Default>(
    msgs: Vec<live_common::direct::StoredMsg>,
) -> Vec<(u64, M)> {
    msgs.into_iter()
        .filter_map(|m| match M::decode(m.payload) {
            Ok(message) => Some((m.seq, message)),
            Err(_) => {
                metrics::counter!("frontend_undecodable_total").increment(1);
                None
            }
        })
        .collect()
}

/// The trait over the inherent reads above (which take precedence in these paths).
impl History for JetStreamHistory {
    fn likes_total<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<u64, HistoryError>> {
        JetStreamHistory::likes_total(self, r, video).boxed()
    }

    fn last_comment_seq<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<u64, HistoryError>> {
        JetStreamHistory::last_comment_seq(self, r, video).boxed()
    }

    fn first_comment_seq<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
    ) -> BoxFuture<'a, Result<Option<u64>, HistoryError>> {
        JetStreamHistory::first_comment_seq(self, r, video).boxed()
    }

    fn comments<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
        after: u64,
        upto: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>, HistoryError>> {
        JetStreamHistory::comments(self, r, video, after, upto, max).boxed()
    }

    fn deletions<'a>(
        &'a self,
        r: usize,
        video: &'a VideoId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Tombstone>, HistoryError>> {
        JetStreamHistory::deletions(self, r, video, after).boxed()
    }

    fn receipts<'a>(
        &'a self,
        r: usize,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Vec<StoredEntry>, HistoryError>> {
        JetStreamHistory::receipts(self, r, conversation).boxed()
    }
}
