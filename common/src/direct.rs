//! Batched direct gets (nats-server 2.11+): reading a stream's messages on a subject
//! (wildcards allowed) between two sequences without creating a consumer. Any replica
//! of the stream (or a mirror with `allow_direct`) answers, so a read works while the
//! JetStream meta group is out of reach (regions cut apart), which a consumer does not.
//! async-nats has no batched direct get, hence this small request loop.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

/// Messages asked for in one batched direct get.
const BATCH: usize = 256;
/// How long one whole read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("JetStream direct get failed: {0}")]
    Read(String),
    #[error("JetStream direct get timed out")]
    Timeout,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct StoredMsg {
    pub seq: u64,
    /// The subject it was stored on.
    pub subject: String,
    pub headers: Option<async_nats::HeaderMap>,
    pub payload: Bytes,
}

/// Reads the messages of `stream` on `subject` with `after < seq <= upto`, oldest
/// first, at most `max`, through the JetStream API at `api_prefix` (`$JS.API`, or
/// `$JS.{domain}.API`).
pub async fn read(
    client: &async_nats::Client,
    api_prefix: &str,
    stream: &str,
    subject: &str,
    after: u64,
    upto: u64,
    max: usize,
) -> Result<Vec<StoredMsg>, DirectError> {
    if upto <= after || max == 0 {
        return Ok(Vec::new());
    }
    tokio::time::timeout(
        READ_TIMEOUT,
        read_batches(client, api_prefix, stream, subject, after, upto, max),
    )
    .await
    .map_err(|_| DirectError::Timeout)?
}

/// Each request asks for the next [`BATCH`] messages on the subject and gets them one
/// by one, then an end-of-batch status.
async fn read_batches(
    client: &async_nats::Client,
    api_prefix: &str,
    stream: &str,
    subject: &str,
    after: u64,
    upto: u64,
    max: usize,
) -> Result<Vec<StoredMsg>, DirectError> {
    let read = |e: &dyn std::fmt::Display| DirectError::Read(e.to_string());
    let api = format!("{api_prefix}.DIRECT.GET.{stream}");
    let mut out = Vec::new();
    let mut next = after + 1;
    loop {
        let batch = BATCH.min(max - out.len());
        let request = serde_json::json!({ "seq": next, "next_by_subj": subject, "batch": batch });
        let inbox = client.new_inbox();
        let mut replies = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| read(&e))?;
        client
            .publish_with_reply(api.clone(), inbox, request.to_string().into())
            .await
            .map_err(|e| read(&e))?;
        let mut more = false;
        while let Some(msg) = replies.next().await {
            match msg.status.map(|s| s.as_u16()) {
                None => {}
                // End of the batch: more may follow.
                Some(204) => {
                    more = true;
                    break;
                }
                // Nothing (more) on this subject.
                Some(404) => break,
                Some(status) => {
                    let why = msg.description.unwrap_or_default();
                    return Err(DirectError::Read(format!("direct get: {status} {why}")));
                }
            }
            let header = |name: &str| -> Option<&str> {
                msg.headers.as_ref()?.get(name).map(|v| v.as_str())
            };
            let Some(seq) = header("Nats-Sequence").and_then(|s| s.parse::<u64>().ok()) else {
                return Err(DirectError::Read("direct get without a sequence".into()));
            };
            if seq > upto {
                return Ok(out);
            }
            let last = seq == upto || header("Nats-Num-Pending") == Some("0");
            out.push(StoredMsg {
                seq,
                subject: header("Nats-Subject").unwrap_or_default().to_owned(),
                headers: msg.headers.clone(),
                payload: msg.payload.clone(),
            });
            next = seq + 1;
            if last || out.len() >= max {
                return Ok(out);
            }
        }
        if !more {
            return Ok(out);
        }
    }
}
