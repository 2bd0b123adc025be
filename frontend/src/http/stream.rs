//! The one-connection stream and its topics: `GET /v1/stream?topics=…` (one SSE stream,
//! every event naming its topic), `POST /v1/stream/{connection}/topics` `{"topic"}` and
//! `DELETE /v1/stream/{connection}/topics/{topic}`, which may reach any frontend.
//!
//! Who the connection is: with `--jwt-secret`/`--jwt-jwks` the token's `sub`, which must
//! be allowed every topic (videos by `videos`, conversations by `conversations`, any
//! member's presence); without, `?member=` (dev mode, optional).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use live_common::ApiError;
use live_common::conn::RequestBody;
use live_proto::{MemberId, Topic};
use serde::Deserialize;

use super::{AppState, Events, response};
use crate::connection::{self, Connection, Open};

/// Largest body of a topics request (as the publisher's).
const MAX_BODY: usize = 4096;

/// Most pieces (frames and ids) gathered into one chunk of the stream.
const MAX_BATCH: usize = 64;

#[derive(Deserialize)]
struct StreamQuery {
    topics: Option<String>,
    member: Option<String>,
    token: Option<String>,
    last_event_id: Option<String>,
}

impl Events {
    /// Checks a `/v1/stream` request (its raw query, its `Last-Event-ID`) and opens it.
    pub async fn open_stream(
        &self,
        query: Option<&str>,
        last_event_id: Option<&[u8]>,
    ) -> Result<Connection, ApiError> {
        let query: StreamQuery = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| ApiError::BadRequest("invalid query string".into()))?;
        let topics = Topic::parse_list(query.topics.as_deref().unwrap_or(""), self.max_topics)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let claims = self.claims_for(query.token.as_deref(), &topics)?;
        let (member, owner, exp) = match &claims {
            Some(claims) => {
                let sub = claims
                    .sub
                    .clone()
                    .ok_or_else(|| ApiError::Forbidden("the token has no sub".into()))?;
                let member = MemberId::parse(&sub)
                    .map_err(|e| ApiError::Forbidden(format!("the token's sub: {}", e.0)))?;
                (Some(member), Some(sub), claims.exp)
            }
            None => {
                let member = query
                    .member
                    .as_deref()
                    .map(|m| {
                        MemberId::parse(m)
                            .map_err(|e| ApiError::BadRequest(format!("member: {}", e.0)))
                    })
                    .transpose()?;
                (member, None, None)
            }
        };
        let regions = &self.registry.node().regions;
        let resume = match super::last_event_id(last_event_id, query.last_event_id)? {
            Some(raw) => connection::cursor::parse(regions, &raw).ok_or_else(|| {
                ApiError::BadRequest("invalid Last-Event-ID: expected video@position,…".into())
            })?,
            None => Default::default(),
        };
        self.refuse_if_stopping()?;
        let open = Open {
            topics,
            member,
            owner,
            resume,
            max_topics: self.max_topics,
            draining: *self.stopping.borrow(),
        };
        let mut conn = Connection::open(self.registry.clone(), &self.connections, open).await?;
        if let Some(exp) = exp {
            conn.expire_at(exp);
        }
        Ok(conn)
    }

    /// Adds or drops `topic` on connection `id`, wherever it is held.
    async fn change(
        &self,
        id: &str,
        add: bool,
        topic: &str,
        token: Option<&str>,
    ) -> Result<Topic, ApiError> {
        let topic = Topic::parse(topic).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let caller = self
            .claims_for(token, std::slice::from_ref(&topic))?
            .map(|c| c.sub.unwrap_or_default());
        let client = &self.registry.node().client;
        connection::control::change(client, id, add, &topic, caller).await?;
        Ok(topic)
    }
}

/// `GET /v1/stream`, through axum.
pub(super) async fn stream_route(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let last_event_id = headers.get("last-event-id").map(|v| v.as_bytes());
    let conn = state
        .events
        .open_stream(query.as_deref(), last_event_id)
        .await
        .map_err(|e| response::error(&e).into_response(None))?;
    let body = futures::stream::unfold(conn, |mut conn| async move {
        let mut pieces = Vec::new();
        if !conn.next_batch(&mut pieces, MAX_BATCH).await {
            return None;
        }
        let chunk: Vec<u8> = pieces.concat();
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), conn))
    });
    Ok(response::stream().into_response(Some(Body::from_stream(body))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicBody {
    topic: String,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token of a topics request: `Authorization: Bearer …`, else `?token=`.
fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| {
            serde_urlencoded::from_str::<TokenQuery>(query.unwrap_or(""))
                .ok()
                .and_then(|q| q.token)
        })
}

/// `POST /v1/stream/{connection}/topics` `{"topic": …}` → 200 once the holder added it.
pub(super) async fn add_topic(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    let result = async {
        let token = token(&headers, query.as_deref());
        // Refused from the head, before waiting for a body: a missing or wrong token
        // (401; whether it allows the topic is known once the body is read), a body
        // too large by its Content-Length (413).
        state.events.claims_for(token.as_deref(), &[])?;
        let body = body.read(MAX_BODY).await?;
        let body: TopicBody = serde_json::from_slice(&body)
            .map_err(|_| ApiError::BadRequest("expected {\"topic\": \"kind:id\"}".into()))?;
        state
            .events
            .change(&connection, true, &body.topic, token.as_deref())
            .await
    }
    .await;
    match result {
        Ok(topic) => axum::Json(serde_json::json!({
            "connection": connection,
            "topic": topic.to_string(),
        }))
        .into_response(),
        Err(e) => response::error(&e).into_response(None),
    }
}

/// `DELETE /v1/stream/{connection}/topics/{topic}` → 204 once the holder dropped it.
pub(super) async fn remove_topic(
    State(state): State<AppState>,
    Path((connection, topic)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let token = token(&headers, query.as_deref());
    match state
        .events
        .change(&connection, false, &topic, token.as_deref())
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => response::error(&e).into_response(None),
    }
}
