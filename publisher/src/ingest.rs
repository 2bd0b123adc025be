//! The NATS edge: likes and comments published straight to `ingest.v1.{video}.like` and
//! `ingest.v1.{video}.comment` as protobuf (`LikeRequest`, `CommentRequest`), answered on
//! the reply subject with an `IngestReply` once stored (request-reply = acknowledged).
//! The same checks as over HTTP; a message that does not decode is counted and answered
//! with status 400, never forwarded and never fatal.

use std::sync::Arc;

use futures::StreamExt;
use live_proto::subjects::{self, IngestKind};
use live_proto::{CommentText, UserId, VideoId, v1};
use prost::Message as _;
use tokio::sync::Semaphore;

use crate::likes::Waiter;
use crate::service::{RefusedError, Service, idempotency_key};

/// Comments being stored at once from NATS ingest; beyond it the subscription waits.
const MAX_COMMENTS_IN_FLIGHT: usize = 4096;

/// Serves the ingest subjects until `shutdown` resolves, then drains the subscription.
pub async fn serve(
    client: async_nats::Client,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), async_nats::SubscribeError> {
    let mut sub = client
        .queue_subscribe(subjects::INGEST_ALL, subjects::INGEST_QUEUE.into())
        .await?;
    let in_flight = Arc::new(Semaphore::new(MAX_COMMENTS_IN_FLIGHT));
    tokio::pin!(shutdown);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            msg = sub.next() => match msg { Some(m) => m, None => break },
        };
        metrics::counter!("publisher_ingest_messages_total").increment(1);
        handle(&client, &service, &in_flight, msg).await;
    }
    let _ = sub.unsubscribe().await;
    Ok(())
}

async fn handle(
    client: &async_nats::Client,
    service: &Arc<Service>,
    in_flight: &Arc<Semaphore>,
    msg: async_nats::Message,
) {
    let Some((video, kind)) = subjects::parse_ingest(&msg.subject) else {
        return refuse(client, msg.reply, 400, "invalid ingest subject").await;
    };
    match kind {
        IngestKind::Like => {
            let request = match v1::LikeRequest::decode(msg.payload) {
                Ok(r) => r,
                Err(_) => return undecodable(client, msg.reply).await,
            };
            let user = match UserId::parse(&request.user) {
                Ok(u) => u,
                Err(e) => return refuse(client, msg.reply, 400, &e.0).await,
            };
            let waiter = msg.reply.clone().map(Waiter::Nats).unwrap_or(Waiter::None);
            if let Err(e) = service.like_answered_by(video, &user, waiter).await {
                refused(client, msg.reply, e).await;
            }
        }
        IngestKind::Comment => {
            let request = match v1::CommentRequest::decode(msg.payload) {
                Ok(r) => r,
                Err(_) => return undecodable(client, msg.reply).await,
            };
            let checked = UserId::parse(&request.user)
                .and_then(|u| Ok((u, CommentText::parse(&request.text)?)))
                .and_then(|(u, t)| {
                    let key = match request.idempotency_key.as_str() {
                        "" => None,
                        k => Some(idempotency_key(k)?.to_owned()),
                    };
                    Ok((u, t, key))
                });
            let (user, text, key) = match checked {
                Ok(c) => c,
                Err(e) => return refuse(client, msg.reply, 400, &e.0).await,
            };
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let (client, service) = (client.clone(), service.clone());
            tokio::spawn(async move {
                store_comment(&client, &service, video, user, text, key, msg.reply).await;
                drop(permit);
            });
        }
    }
}

async fn store_comment(
    client: &async_nats::Client,
    service: &Service,
    video: VideoId,
    user: UserId,
    text: CommentText,
    key: Option<String>,
    reply: Option<async_nats::Subject>,
) {
    match service.comment(&video, &user, text, key.as_deref()).await {
        Ok(id) => {
            let answer = v1::IngestReply {
                status: 202,
                id: id.to_string(),
                ..Default::default()
            };
            send(client, reply, answer).await;
        }
        Err(e) => refused(client, reply, e).await,
    }
}

async fn undecodable(client: &async_nats::Client, reply: Option<async_nats::Subject>) {
    metrics::counter!("publisher_ingest_undecodable_total").increment(1);
    refuse(
        client,
        reply,
        400,
        "message is not a valid protobuf request",
    )
    .await;
}

async fn refused(client: &async_nats::Client, reply: Option<async_nats::Subject>, e: RefusedError) {
    let status = match e {
        RefusedError::RateLimited { .. } => 429,
        RefusedError::Unavailable(_) => 503,
    };
    refuse(client, reply, status, &e.to_string()).await;
}

async fn refuse(
    client: &async_nats::Client,
    reply: Option<async_nats::Subject>,
    status: u32,
    error: &str,
) {
    metrics::counter!("publisher_ingest_refused_total").increment(1);
    let answer = v1::IngestReply {
        status,
        error: error.to_owned(),
        ..Default::default()
    };
    send(client, reply, answer).await;
}

async fn send(
    client: &async_nats::Client,
    reply: Option<async_nats::Subject>,
    answer: v1::IngestReply,
) {
    if let Some(reply) = reply
        && let Err(e) = client.publish(reply, answer.encode_to_vec().into()).await
    {
        tracing::debug!(error = %e, "ingest reply not sent");
    }
}
