//! The NATS edge: likes and comments published straight to `ingest.v1.{video}.like` and
//! `ingest.v1.{video}.comment` as protobuf (`LikeRequest`, `CommentRequest`), and batches
//! of likes from edge tiers that aggregate on `ingest.v1.{video}.likes` (`LikeBatch`),
//! answered on the reply subject with an `IngestReply` once stored (request-reply =
//! acknowledged).
//! Conversations: `ingest.conv.v1.{conversation}.typing|read` (`TypingRequest`,
//! `ReadRequest`), answered like likes (202 with `until_ms` / `revision`).
//! The same checks as over HTTP, including the JWT (`token` field) when auth is on; a
//! message that does not decode is counted and answered with status 400, never forwarded
//! and never fatal.

use std::sync::Arc;

use futures::StreamExt;
use live_proto::subjects::{self, ConversationEvent, IngestKind};
use live_proto::{CommentText, ConversationId, InvalidInput, MessageId, UserId, VideoId, v1};
use prost::Message as _;
use tokio::sync::Semaphore;

use crate::auth::{Auth, AuthError};
use crate::likes::Waiter;
use crate::moderation::ModerationError;
use crate::service::{RefusedError, Service, idempotency_key};

/// Comments being stored at once from NATS ingest; beyond it the subscription waits.
const MAX_COMMENTS_IN_FLIGHT: usize = 4096;

/// The ingest subscriptions (queue group `publisher`), taken before the publisher says
/// it is up.
pub struct Subscriptions {
    videos: async_nats::Subscriber,
    conversations: async_nats::Subscriber,
}

/// Subscribes to the ingest subjects and waits until the server has the interest: a
/// request sent once `/healthz` answers finds a responder (before, one sent right
/// after a restart could get "no responders").
pub async fn subscribe(
    client: &async_nats::Client,
) -> Result<Subscriptions, async_nats::SubscribeError> {
    let videos = client
        .queue_subscribe(subjects::INGEST_ALL, subjects::INGEST_QUEUE.into())
        .await?;
    let conversations = client
        .queue_subscribe(
            subjects::CONVERSATION_INGEST_ALL,
            subjects::INGEST_QUEUE.into(),
        )
        .await?;
    // A round trip through the server, which handles a connection's commands in order:
    // once a request sent after the subscriptions is answered, it has them.
    // (`Client::flush` only empties the socket's buffer.) `$JS.API.INFO` is one the
    // publisher's NATS role may send and its JetStream always answers.
    let barrier = client.request("$JS.API.INFO", bytes::Bytes::new());
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(5), barrier).await {
        tracing::warn!(error = %e, "ingest subscriptions not confirmed by the server");
    }
    Ok(Subscriptions {
        videos,
        conversations,
    })
}

/// Serves the ingest subscriptions until `shutdown` resolves, then drains them.
pub async fn serve(
    client: async_nats::Client,
    service: Arc<Service>,
    subscriptions: Subscriptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), async_nats::SubscribeError> {
    let Subscriptions {
        videos,
        conversations,
    } = subscriptions;
    let mut sub = futures::stream::select(videos, conversations);
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
    let (mut videos, mut conversations) = sub.into_inner();
    let _ = videos.unsubscribe().await;
    let _ = conversations.unsubscribe().await;
    Ok(())
}

async fn handle(
    client: &async_nats::Client,
    service: &Arc<Service>,
    in_flight: &Arc<Semaphore>,
    msg: async_nats::Message,
) {
    if msg.subject.starts_with("ingest.conv.") {
        return handle_conversation(client, service, in_flight, msg).await;
    }
    let Some((video, kind)) = subjects::parse_ingest(&msg.subject) else {
        return refuse(client, msg.reply, 400, "invalid ingest subject").await;
    };
    match kind {
        IngestKind::Like => {
            let (user, key) = match check_like(&service.auth, &msg.payload) {
                Ok(checked) => checked,
                Err(r) => return refusal(client, msg.reply, r).await,
            };
            if let Some(key) = key {
                // Keyed likes are checked against the idempotency bucket first: off the
                // subscription's loop, like comments.
                let (client, service) = (client.clone(), service.clone());
                return spawn_bounded(in_flight, async move {
                    let result = service.like(video, &user, Some(&key)).await;
                    answer_total(&client, msg.reply, result).await;
                })
                .await;
            }
            let waiter = msg.reply.clone().map(Waiter::Nats).unwrap_or(Waiter::None);
            if let Err(e) = service.like_answered_by(video, &user, waiter).await {
                refused(client, msg.reply, e).await;
            }
        }
        IngestKind::DeleteComment | IngestKind::Ban | IngestKind::SlowMode => {
            let action = match check_moderation(&service.auth, kind, &msg.payload) {
                Ok(action) => action,
                Err(r) => return refusal(client, msg.reply, r).await,
            };
            let (client, service) = (client.clone(), service.clone());
            spawn_bounded(in_flight, async move {
                let m = &service.moderation;
                let done = match &action {
                    ModerationAction::DeleteComment { id, by } => {
                        m.delete_comment(&video, id, by.as_ref()).await
                    }
                    ModerationAction::Ban { user, seconds, by } => {
                        m.ban(&video, user, *seconds, by.as_ref()).await
                    }
                    ModerationAction::SlowMode { seconds, by } => {
                        m.set_slow_mode(&video, *seconds, by.as_ref()).await
                    }
                };
                match done {
                    Ok(()) => {
                        let answer = v1::IngestReply {
                            status: 204,
                            ..Default::default()
                        };
                        send(&client, msg.reply, answer).await;
                    }
                    Err(e) => {
                        let status = match e {
                            ModerationError::BadInput(_) => 400,
                            ModerationError::NotFound(_) => 404,
                            ModerationError::Unavailable(_) => 503,
                        };
                        refuse(&client, msg.reply, status, &e.to_string()).await;
                    }
                }
            })
            .await;
        }
        IngestKind::LikeBatch => {
            let (user, count, key) = match check_like_batch(&service.auth, &msg.payload) {
                Ok(checked) => checked,
                Err(r) => return refusal(client, msg.reply, r).await,
            };
            let (client, service) = (client.clone(), service.clone());
            spawn_bounded(in_flight, async move {
                let result = service.like_batch(&video, &user, count, &key).await;
                answer_total(&client, msg.reply, result).await;
            })
            .await;
        }
        IngestKind::Comment => {
            let (user, text, key) = match check_comment(&service.auth, &msg.payload) {
                Ok(checked) => checked,
                Err(r) => return refusal(client, msg.reply, r).await,
            };
            let (client, service) = (client.clone(), service.clone());
            spawn_bounded(in_flight, async move {
                store_comment(&client, &service, video, user, text, key, msg.reply).await;
            })
            .await;
        }
    }
}

/// A typing indicator or read receipt over NATS.
async fn handle_conversation(
    client: &async_nats::Client,
    service: &Arc<Service>,
    in_flight: &Arc<Semaphore>,
    msg: async_nats::Message,
) {
    let Some((conversation, event)) = subjects::parse_conversation_ingest(&msg.subject) else {
        return refuse(client, msg.reply, 400, "invalid ingest subject").await;
    };
    match event {
        ConversationEvent::Typing => {
            let user = match check_typing(&service.auth, &conversation, &msg.payload) {
                Ok(user) => user,
                Err(r) => return refusal(client, msg.reply, r).await,
            };
            // A publish without waiting for JetStream: answered in the loop, like likes.
            match service.conversations.typing(&conversation, &user).await {
                Ok(typing) => {
                    let answer = v1::IngestReply {
                        status: 202,
                        until_ms: typing.until_ms,
                        ..Default::default()
                    };
                    send(client, msg.reply, answer).await;
                }
                Err(e) => refused(client, msg.reply, e).await,
            }
        }
        ConversationEvent::Read => {
            let (user, message) = match check_read(&service.auth, &conversation, &msg.payload) {
                Ok(checked) => checked,
                Err(r) => return refusal(client, msg.reply, r).await,
            };
            let (client, service) = (client.clone(), service.clone());
            spawn_bounded(in_flight, async move {
                match service
                    .conversations
                    .read(&conversation, &user, &message)
                    .await
                {
                    Ok(read) => {
                        let answer = v1::IngestReply {
                            status: 202,
                            revision: read.revision,
                            ..Default::default()
                        };
                        send(&client, msg.reply, answer).await;
                    }
                    Err(e) => refused(&client, msg.reply, e).await,
                }
            })
            .await;
        }
    }
}

/// Decodes a `TypingRequest` and checks its token (and `conversations` claim) and user.
pub fn check_typing(
    auth: &Auth,
    conversation: &ConversationId,
    payload: &[u8],
) -> Result<UserId, Refusal> {
    let request = v1::TypingRequest::decode(payload).map_err(|_| Refusal::Undecodable)?;
    let caller = auth.authenticate_member(non_empty(&request.token), conversation)?;
    Ok(caller.acting_as(non_empty(&request.user))?)
}

/// Decodes a `ReadRequest` and checks its token (and `conversations` claim), user and
/// message id.
pub fn check_read(
    auth: &Auth,
    conversation: &ConversationId,
    payload: &[u8],
) -> Result<(UserId, MessageId), Refusal> {
    let request = v1::ReadRequest::decode(payload).map_err(|_| Refusal::Undecodable)?;
    let caller = auth.authenticate_member(non_empty(&request.token), conversation)?;
    let user = caller.acting_as(non_empty(&request.user))?;
    Ok((user, MessageId::parse(&request.message)?))
}

/// Runs `work` in its own task once one of the in-flight places is free: the
/// subscription's loop waits (backpressure) instead of piling up tasks.
async fn spawn_bounded(
    in_flight: &Arc<Semaphore>,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let permit = in_flight
        .clone()
        .acquire_owned()
        .await
        .expect("never closed");
    tokio::spawn(async move {
        work.await;
        drop(permit);
    });
}

/// Why an ingest request is answered without being stored.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not the expected protobuf message (400, counted in a metric).
    Undecodable,
    /// 400, 401 or 403, with what is wrong.
    Status(u32, String),
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        Refusal::Status(e.status(), e.to_string())
    }
}

impl From<InvalidInput> for Refusal {
    fn from(e: InvalidInput) -> Self {
        Refusal::Status(400, e.0)
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Decodes a `LikeRequest` and checks its token, user and idempotency key; returns the
/// user it acts as and the key.
pub fn check_like(auth: &Auth, payload: &[u8]) -> Result<(UserId, Option<String>), Refusal> {
    let request = v1::LikeRequest::decode(payload).map_err(|_| Refusal::Undecodable)?;
    let caller = auth.authenticate(non_empty(&request.token))?;
    let user = caller.acting_as(non_empty(&request.user))?;
    let key = match non_empty(&request.idempotency_key) {
        None => None,
        Some(k) => Some(idempotency_key(k)?.to_owned()),
    };
    Ok((user, key))
}

/// Most likes one `LikeBatch` may carry.
pub const MAX_LIKE_BATCH: u64 = 1_000_000;

/// Decodes a `LikeBatch` and checks its token, user, count and (required) idempotency
/// key; returns the account it acts as, the count and the key.
pub fn check_like_batch(auth: &Auth, payload: &[u8]) -> Result<(UserId, u64, String), Refusal> {
    let request = v1::LikeBatch::decode(payload).map_err(|_| Refusal::Undecodable)?;
    let caller = auth.authenticate(non_empty(&request.token))?;
    let user = caller.acting_as(non_empty(&request.user))?;
    if !(1..=MAX_LIKE_BATCH).contains(&request.count) {
        return Err(Refusal::Status(
            400,
            format!("count must be 1 to {MAX_LIKE_BATCH}"),
        ));
    }
    let key = non_empty(&request.idempotency_key)
        .ok_or_else(|| Refusal::Status(400, "idempotency_key is required".into()))?;
    Ok((user, request.count, idempotency_key(key)?.to_owned()))
}

/// Decodes a `CommentRequest` and checks its token, user, text and idempotency key.
pub fn check_comment(
    auth: &Auth,
    payload: &[u8],
) -> Result<(UserId, CommentText, Option<String>), Refusal> {
    let request = v1::CommentRequest::decode(payload).map_err(|_| Refusal::Undecodable)?;
    let caller = auth.authenticate(non_empty(&request.token))?;
    let user = caller.acting_as(non_empty(&request.user))?;
    let text = CommentText::parse(&request.text)?;
    let key = match non_empty(&request.idempotency_key) {
        None => None,
        Some(k) => Some(idempotency_key(k)?.to_owned()),
    };
    Ok((user, text, key))
}

/// A moderation request over ingest, checked.
#[derive(Debug, PartialEq, Eq)]
pub enum ModerationAction {
    DeleteComment {
        id: String,
        by: Option<UserId>,
    },
    Ban {
        user: UserId,
        seconds: u64,
        by: Option<UserId>,
    },
    SlowMode {
        seconds: u64,
        by: Option<UserId>,
    },
}

/// Decodes a moderation request of `kind` and checks its token (the moderator role) and
/// user; the comment id and the seconds are checked when it is carried out, as over HTTP.
pub fn check_moderation(
    auth: &Auth,
    kind: IngestKind,
    payload: &[u8],
) -> Result<ModerationAction, Refusal> {
    let undecodable = |_| Refusal::Undecodable;
    Ok(match kind {
        IngestKind::DeleteComment => {
            let r = v1::DeleteCommentRequest::decode(payload).map_err(undecodable)?;
            let by = auth.moderator(non_empty(&r.token))?;
            ModerationAction::DeleteComment { id: r.id, by }
        }
        IngestKind::Ban => {
            let r = v1::BanRequest::decode(payload).map_err(undecodable)?;
            let by = auth.moderator(non_empty(&r.token))?;
            let user = UserId::parse(&r.user)?;
            ModerationAction::Ban {
                user,
                seconds: r.seconds,
                by,
            }
        }
        IngestKind::SlowMode => {
            let r = v1::SlowModeRequest::decode(payload).map_err(undecodable)?;
            let by = auth.moderator(non_empty(&r.token))?;
            ModerationAction::SlowMode {
                seconds: r.seconds,
                by,
            }
        }
        IngestKind::Like | IngestKind::LikeBatch | IngestKind::Comment => {
            return Err(Refusal::Status(400, "not a moderation request".into()));
        }
    })
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

/// Answers a like request: 202 with the video's total, or why not.
async fn answer_total(
    client: &async_nats::Client,
    reply: Option<async_nats::Subject>,
    result: Result<u64, RefusedError>,
) {
    match result {
        Ok(total) => {
            let answer = v1::IngestReply {
                status: 202,
                total,
                ..Default::default()
            };
            send(client, reply, answer).await;
        }
        Err(e) => refused(client, reply, e).await,
    }
}

async fn refusal(client: &async_nats::Client, reply: Option<async_nats::Subject>, r: Refusal) {
    match r {
        Refusal::Undecodable => {
            metrics::counter!("publisher_ingest_undecodable_total").increment(1);
            refuse(
                client,
                reply,
                400,
                "message is not a valid protobuf request",
            )
            .await;
        }
        Refusal::Status(status, error) => refuse(client, reply, status, &error).await,
    }
}

async fn refused(client: &async_nats::Client, reply: Option<async_nats::Subject>, e: RefusedError) {
    let status = match e {
        RefusedError::RateLimited { .. } | RefusedError::SlowMode { .. } => 429,
        RefusedError::Banned { .. } => 403,
        RefusedError::Unavailable(_) | RefusedError::StoreFull(_) => 503,
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

#[cfg(test)]
mod tests {
    use super::*;
    use live_common::jwt::{Claims, Key};
    use proptest::prelude::*;

    fn token(key: &Key, sub: &str) -> String {
        key.sign(&Claims {
            sub: Some(sub.into()),
            exp: Some(u64::MAX),
            ..Default::default()
        })
    }

    #[test]
    fn requests_are_checked_like_over_http() {
        let key = Key::new(b"k");
        let on = Auth::new(Some(key.clone()));
        let like = |user: &str, token: &str| {
            v1::LikeRequest {
                user: user.into(),
                token: token.into(),
                ..Default::default()
            }
            .encode_to_vec()
        };
        assert_eq!(
            check_like(&Auth::default(), &like("bob", ""))
                .unwrap()
                .0
                .as_str(),
            "bob"
        );
        assert_eq!(
            check_like(&on, &like("bob", "")),
            Err(Refusal::Status(401, "missing token".into()))
        );
        assert!(matches!(
            check_like(&on, &like("bob", "a.b.c")),
            Err(Refusal::Status(401, _))
        ));
        assert!(matches!(
            check_like(&on, &like("bob", &token(&key, "eve"))),
            Err(Refusal::Status(403, _))
        ));
        assert_eq!(
            check_like(&on, &like("", &token(&key, "eve")))
                .unwrap()
                .0
                .as_str(),
            "eve"
        );
        assert_eq!(check_like(&on, &[0xff, 0xff]), Err(Refusal::Undecodable));
        let batch = |count: u64, key: &str, token: &str| {
            v1::LikeBatch {
                user: "edge-1".into(),
                count,
                idempotency_key: key.into(),
                token: token.into(),
            }
            .encode_to_vec()
        };
        let off = Auth::default();
        assert_eq!(
            check_like_batch(&off, &batch(500, "b1", "")).map(|(u, n, k)| (u.to_string(), n, k)),
            Ok(("edge-1".into(), 500, "b1".into()))
        );
        for bad in [
            batch(0, "b1", ""),
            batch(MAX_LIKE_BATCH + 1, "b1", ""),
            batch(5, "", ""),
            batch(5, "no way", ""),
        ] {
            assert!(matches!(
                check_like_batch(&off, &bad),
                Err(Refusal::Status(400, _))
            ));
        }
        assert!(matches!(
            check_like_batch(&on, &batch(5, "b1", "")),
            Err(Refusal::Status(401, _))
        ));
        assert!(matches!(
            check_like_batch(&on, &batch(5, "b1", &token(&key, "eve"))),
            Err(Refusal::Status(403, _))
        ));
        assert!(check_like_batch(&on, &batch(5, "b1", &token(&key, "edge-1"))).is_ok());
        let comment = v1::CommentRequest {
            text: "hi".into(),
            token: token(&key, "eve"),
            idempotency_key: "bad key!".into(),
            ..Default::default()
        };
        assert!(matches!(
            check_comment(&on, &comment.encode_to_vec()),
            Err(Refusal::Status(400, _))
        ));
    }

    #[test]
    fn moderation_requests_need_the_role() {
        let key = Key::new(b"k");
        let on = Auth::new(Some(key.clone()));
        let moderator = key.sign(&Claims {
            sub: Some("mod".into()),
            exp: Some(u64::MAX),
            role: Some("moderator".into()),
            ..Default::default()
        });
        let ban = |user: &str, token: &str| {
            v1::BanRequest {
                user: user.into(),
                seconds: 60,
                token: token.into(),
            }
            .encode_to_vec()
        };
        assert_eq!(
            check_moderation(&on, IngestKind::Ban, &ban("bob", &moderator)),
            Ok(ModerationAction::Ban {
                user: UserId::parse("bob").unwrap(),
                seconds: 60,
                by: Some(UserId::parse("mod").unwrap()),
            })
        );
        assert!(matches!(
            check_moderation(&on, IngestKind::Ban, &ban("bob", "")),
            Err(Refusal::Status(401, _))
        ));
        assert!(matches!(
            check_moderation(&on, IngestKind::Ban, &ban("bob", &token(&key, "bob"))),
            Err(Refusal::Status(403, _))
        ));
        assert!(matches!(
            check_moderation(&on, IngestKind::Ban, &ban("bob.>", &moderator)),
            Err(Refusal::Status(400, _))
        ));
        assert_eq!(
            check_moderation(&on, IngestKind::DeleteComment, &[0xff, 0xff]),
            Err(Refusal::Undecodable)
        );
        let slow = v1::SlowModeRequest {
            seconds: 5,
            token: String::new(),
        }
        .encode_to_vec();
        assert_eq!(
            check_moderation(&Auth::default(), IngestKind::SlowMode, &slow),
            Ok(ModerationAction::SlowMode {
                seconds: 5,
                by: None
            })
        );
    }

    #[test]
    fn conversation_requests_are_checked_like_over_http() {
        let key = Key::new(b"k");
        let on = Auth::new(Some(key.clone()));
        let c1 = ConversationId::parse("c1").unwrap();
        let member = |sub: &str, conversations: &[&str]| {
            key.sign(&Claims {
                sub: Some(sub.into()),
                exp: Some(u64::MAX),
                conversations: Some(conversations.iter().map(|c| c.to_string()).collect()),
                ..Default::default()
            })
        };
        let read = |user: &str, message: &str, token: &str| {
            v1::ReadRequest {
                user: user.into(),
                message: message.into(),
                token: token.into(),
            }
            .encode_to_vec()
        };
        let typing = |user: &str, token: &str| {
            v1::TypingRequest {
                user: user.into(),
                token: token.into(),
            }
            .encode_to_vec()
        };
        let off = Auth::default();
        assert_eq!(
            check_read(&off, &c1, &read("bob", "m1", ""))
                .map(|(u, m)| (u.to_string(), m.to_string())),
            Ok(("bob".into(), "m1".into()))
        );
        assert_eq!(
            check_typing(&off, &c1, &typing("bob", "")).map(|u| u.to_string()),
            Ok("bob".into())
        );
        for bad in [
            read("", "m1", ""),
            read("bob", "", ""),
            read("bob", "m.1", ""),
            read("b*", "m1", ""),
        ] {
            assert!(matches!(
                check_read(&off, &c1, &bad),
                Err(Refusal::Status(400, _))
            ));
        }
        assert!(matches!(
            check_typing(&off, &c1, &typing("", "")),
            Err(Refusal::Status(400, _))
        ));
        assert_eq!(
            check_read(&off, &c1, &[0xff, 0xff]),
            Err(Refusal::Undecodable)
        );
        // Auth on: the token's sub, and the claim must list the conversation.
        let alice = member("alice", &["c1"]);
        assert_eq!(
            check_typing(&on, &c1, &typing("", &alice)).map(|u| u.to_string()),
            Ok("alice".into())
        );
        assert!(check_read(&on, &c1, &read("alice", "m1", &alice)).is_ok());
        assert!(matches!(
            check_read(&on, &c1, &read("bob", "m1", &alice)),
            Err(Refusal::Status(403, _))
        ));
        let elsewhere = member("alice", &["c2"]);
        assert!(matches!(
            check_typing(&on, &c1, &typing("alice", &elsewhere)),
            Err(Refusal::Status(403, _))
        ));
        assert!(matches!(
            check_typing(&on, &c1, &typing("alice", "")),
            Err(Refusal::Status(401, _))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            for auth in [Auth::default(), Auth::new(Some(Key::new(b"k")))] {
                let _ = check_like(&auth, &payload);
                let _ = check_like_batch(&auth, &payload);
                let _ = check_comment(&auth, &payload);
                let c = ConversationId::parse("c").unwrap();
                let _ = check_typing(&auth, &c, &payload);
                let _ = check_read(&auth, &c, &payload);
            }
        }

        #[test]
        fn arbitrary_fields_are_refused_or_valid(
            user in ".{0,80}", text in ".{0,600}", key in ".{0,80}", token in ".{0,80}",
        ) {
            let request = v1::CommentRequest { user: user.clone(), text, idempotency_key: key, token };
            match check_comment(&Auth::default(), &request.encode_to_vec()) {
                Ok((u, t, _)) => {
                    prop_assert_eq!(u.as_str(), user.as_str());
                    prop_assert_eq!(t.as_str(), request.text.as_str());
                }
                Err(Refusal::Status(400, e)) => prop_assert!(!e.is_empty()),
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
            let on = Auth::new(Some(Key::new(b"k")));
            prop_assert!(matches!(check_comment(&on, &request.encode_to_vec()), Err(Refusal::Status(400 | 401, _))));
        }
    }
}
