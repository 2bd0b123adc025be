//! Sending one like or comment: HTTP POST to a publisher, protobuf request-reply on the
//! NATS ingest subjects (success is a 202 either way), or, for the nginx + nchan baseline,
//! a POST of the comment JSON to nchan's publisher location (success is any 2xx); and
//! batches of likes (`LikeBatch` on `ingest.v1.{video}.likes`, NATS only).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use anyhow::Context;
use bytes::Bytes;
use live_proto::v1::{CommentRequest, IngestReply, LikeBatch, LikeRequest};
use live_proto::{VideoId, subjects};
use prost::Message;
use serde::Serialize;

use crate::cli::{PublishArgs, Via};
use crate::target::split_list;

/// What is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Comment,
    Like,
}

/// A connected ingest path.
pub enum Ingest {
    Http {
        client: reqwest::Client,
        bases: Vec<String>,
        bearer: Option<String>,
        next: AtomicUsize,
        /// POST `{publisher}/pub/{video}` as nchan expects, instead of our API.
        nchan: bool,
    },
    Nats(async_nats::Client),
}

/// The comment as nchan viewers receive it: what our frontend sends, with `ts` set here.
#[derive(Serialize)]
struct NchanComment<'a> {
    id: String,
    user: &'a str,
    text: &'a str,
    ts: i64,
}

/// The part of a like's `202` that matters here.
#[derive(serde::Deserialize)]
struct LikeAnswer {
    #[serde(default)]
    total: u64,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

impl Ingest {
    pub async fn connect(args: &PublishArgs) -> anyhow::Result<Ingest> {
        let timeout = args.request_timeout.0;
        Ok(match args.via {
            Via::Http | Via::Nchan => {
                let bases: Vec<String> = split_list(&args.publisher)
                    .into_iter()
                    .map(|b| b.trim_end_matches('/').to_owned())
                    .collect();
                anyhow::ensure!(!bases.is_empty(), "--publisher lists no URL");
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .pool_max_idle_per_host(args.concurrency)
                    .tcp_nodelay(true)
                    .build()?;
                Ingest::Http {
                    client,
                    bases,
                    bearer: args.bearer.clone(),
                    next: AtomicUsize::new(0),
                    nchan: args.via == Via::Nchan,
                }
            }
            Via::Nats => {
                let mut opts = async_nats::ConnectOptions::new()
                    .name("loadgen")
                    .request_timeout(Some(timeout));
                if let Some(path) = &args.nats_creds {
                    opts = opts.credentials_file(path).await.context("--nats-creds")?;
                }
                if let (Some(u), Some(p)) = (&args.nats_user, &args.nats_password) {
                    opts = opts.user_and_password(u.clone(), p.clone());
                }
                let urls = split_list(&args.nats);
                let client = async_nats::connect_with_options(urls.as_slice(), opts)
                    .await
                    .with_context(|| format!("connecting to NATS at {}", args.nats))?;
                Ingest::Nats(client)
            }
        })
    }

    /// Sends request `seq`; `Ok` carries the video's likes total for an accepted like (0
    /// otherwise), `Err` says why it was not accepted.
    pub async fn send(
        &self,
        kind: Kind,
        seq: u64,
        video: &str,
        user: &str,
        text: &str,
    ) -> Result<u64, String> {
        match self {
            Ingest::Http {
                client,
                bases,
                next,
                nchan: true,
                ..
            } => {
                if kind == Kind::Like {
                    return Err("nchan has no likes".into());
                }
                let base = &bases[next.fetch_add(1, Relaxed) % bases.len()];
                let body = NchanComment {
                    id: seq.to_string(),
                    user,
                    text,
                    ts: live_proto::now_ms(),
                };
                let resp = client
                    .post(format!("{base}/pub/{video}"))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).map_err(|e| e.to_string())?)
                    .send()
                    .await
                    .map_err(|e| chain(&e))?;
                let status = resp.status();
                let _ = resp.bytes().await.map_err(|e| chain(&e))?;
                if status.is_success() {
                    Ok(0)
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
            Ingest::Http {
                client,
                bases,
                bearer,
                next,
                ..
            } => {
                let base = &bases[next.fetch_add(1, Relaxed) % bases.len()];
                let (path, body) = match kind {
                    Kind::Comment => (
                        "comments",
                        Body {
                            user: Some(user),
                            text: Some(text),
                        },
                    ),
                    Kind::Like => (
                        "likes",
                        Body {
                            user: Some(user),
                            text: None,
                        },
                    ),
                };
                let body = Body {
                    user: body.user.filter(|_| bearer.is_none()),
                    ..body
                };
                let mut req = client
                    .post(format!("{base}/v1/videos/{video}/{path}"))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
                if let Some(token) = bearer {
                    req = req.bearer_auth(token);
                }
                let resp = req.send().await.map_err(|e| chain(&e))?;
                let status = resp.status();
                let body = resp.bytes().await.map_err(|e| chain(&e))?;
                if status.as_u16() == 202 {
                    Ok(match kind {
                        Kind::Like => serde_json::from_slice::<LikeAnswer>(&body)
                            .map(|a| a.total)
                            .unwrap_or(0),
                        Kind::Comment => 0,
                    })
                } else {
                    Err(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ))
                }
            }
            Ingest::Nats(client) => {
                let id = VideoId::parse(video).map_err(|e| e.to_string())?;
                let (subject, payload) = match kind {
                    Kind::Comment => (
                        subjects::ingest_comment(&id),
                        CommentRequest {
                            user: user.to_owned(),
                            text: text.to_owned(),
                            idempotency_key: String::new(),
                            token: String::new(),
                        }
                        .encode_to_vec(),
                    ),
                    Kind::Like => (
                        subjects::ingest_like(&id),
                        LikeRequest {
                            user: user.to_owned(),
                            idempotency_key: String::new(),
                            token: String::new(),
                        }
                        .encode_to_vec(),
                    ),
                };
                let msg = client
                    .request(subject, Bytes::from(payload))
                    .await
                    .map_err(|e| format!("NATS request: {e}"))?;
                let reply = IngestReply::decode(msg.payload)
                    .map_err(|e| format!("bad IngestReply: {e}"))?;
                if reply.status == 202 {
                    Ok(reply.total)
                } else {
                    Err(format!("status {}: {}", reply.status, reply.error))
                }
            }
        }
    }
}

impl Ingest {
    /// Sends `count` likes of `video` as one `LikeBatch` with idempotency key `key`; `Ok`
    /// carries the video's durable total after it.
    pub async fn send_like_batch(
        &self,
        video: &str,
        user: &str,
        count: u64,
        key: &str,
    ) -> Result<u64, String> {
        let Ingest::Nats(client) = self else {
            return Err("batched likes go over NATS only (--via nats)".into());
        };
        let id = VideoId::parse(video).map_err(|e| e.to_string())?;
        let payload = LikeBatch {
            user: user.to_owned(),
            count,
            idempotency_key: key.to_owned(),
            token: String::new(),
        }
        .encode_to_vec();
        let msg = client
            .request(subjects::ingest_like_batch(&id), Bytes::from(payload))
            .await
            .map_err(|e| format!("NATS request: {e}"))?;
        let reply =
            IngestReply::decode(msg.payload).map_err(|e| format!("bad IngestReply: {e}"))?;
        if reply.status == 202 {
            Ok(reply.total)
        } else {
            Err(format!("status {}: {}", reply.status, reply.error))
        }
    }
}

/// An error with its sources (reqwest hides the cause, e.g. "connection refused", there).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
