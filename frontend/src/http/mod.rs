//! The HTTP edge of a frontend: the viewer stream `GET /v1/videos/{video}/events` (with
//! `--jwt-secret` or `--jwt-jwks`, only for a `?token=` that lists the video) and the demo
//! page `GET /`. A stream's request is checked and opened once ([`Events::open`]) for
//! both ways in: the [`fast_path`] that writes straight to the socket, and the axum
//! route for a request on a connection hyper already serves; [`response`] renders what
//! either answers.

pub mod fast_path;
pub mod response;
mod stream;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use live_common::ApiError;
use live_common::jwt::{Claims, Verifier};
use live_proto::{Topic, VideoId};
use serde::Deserialize;
use tokio::sync::watch;

use crate::Config;
use crate::cursor;
use crate::registry::Registry;
use crate::viewer::Viewer;

/// The demo page; `__PUBLISHER_URL__` is replaced with `--publisher-url`.
const PAGE: &str = include_str!("../../assets/index.html");

/// Opens viewer streams: the checks and the join, shared by the fast path and the axum
/// route.
#[derive(Clone)]
pub struct Events {
    pub registry: Arc<Registry>,
    /// The `/v1/stream` connections this node holds.
    pub connections: Arc<crate::connection::control::Connections>,
    /// `--max-topics`.
    pub max_topics: usize,
    pub stopping: watch::Receiver<bool>,
    /// `--jwt-secret` / `--jwt-jwks`; `None`: anyone may watch.
    pub verifier: Option<Verifier>,
    /// `--cors-origin`: pages of these origins may read the streams.
    pub cors: live_common::cors::Origins,
}

#[derive(Clone)]
struct AppState {
    events: Events,
    page: Arc<str>,
    dev_tokens: Option<DevTokens>,
}

/// `--dev-tokens`: the key and lifetime of the tokens the demo page may ask for.
#[derive(Clone)]
struct DevTokens {
    key: live_common::jwt::Key,
    ttl: std::time::Duration,
}

pub fn router(events: Events, config: &Config) -> Router {
    let dev_tokens = config.dev_tokens && config.jwt_secret.is_some();
    let page = PAGE
        .replace("__PUBLISHER_URL__", &config.publisher_url)
        .replace(
            "__TOKEN_URL__",
            if dev_tokens { "/v1/dev/token" } else { "" },
        );
    let mut router = Router::new()
        .route("/", get(page_handler))
        .route("/v1/videos/{video}/events", get(events_route))
        .route("/v1/stream", get(stream::stream_route))
        .route("/v1/stream/{connection}/topics", post(stream::add_topic))
        .route(
            "/v1/stream/{connection}/topics/{topic}",
            delete(stream::remove_topic),
        );
    if dev_tokens {
        router = router.route("/v1/dev/token", get(dev_token));
    }
    let dev_tokens = dev_tokens.then(|| DevTokens {
        key: config.jwt_secret.clone().expect("checked above"),
        ttl: config.dev_token_ttl,
    });
    router.with_state(AppState {
        events,
        page: page.into(),
        dev_tokens,
    })
}

async fn page_handler(State(state): State<AppState>) -> Html<String> {
    Html(state.page.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenQuery {
    /// One video or several, comma separated.
    video: String,
    user: Option<String>,
    /// The same as `user` (the stream's word for it); if both, they must agree.
    member: Option<String>,
    /// One conversation or several, comma separated: the `conversations` claim.
    conversation: Option<String>,
}

/// Parses a comma-separated list of ids with `parse`, refusing an empty one.
fn id_list<T: std::fmt::Display>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, live_proto::InvalidInput>,
) -> Result<Vec<String>, ApiError> {
    raw.split(',')
        .map(|id| {
            parse(id)
                .map(|id| id.to_string())
                .map_err(|e| ApiError::BadRequest(e.0))
        })
        .collect()
}

/// `--dev-tokens`: a token for `user` (or `member`) to watch (and post on) `video` (a
/// comma list) and, with `conversation`, to follow and post in those conversations.
async fn dev_token(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: DevTokenQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| {
            ApiError::BadRequest("expected ?video=ID[,ID…]&user=ID[&conversation=ID[,ID…]]".into())
        })?;
    let videos = id_list(&query.video, VideoId::parse)?;
    let sub = match (query.user.as_deref(), query.member.as_deref()) {
        (Some(u), Some(m)) if u != m => {
            return Err(ApiError::BadRequest("user and member differ".into()));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Err(ApiError::BadRequest("expected user=ID".into())),
    };
    let user = live_proto::UserId::parse(sub).map_err(|e| ApiError::BadRequest(e.0))?;
    let conversations = query
        .conversation
        .as_deref()
        .map(|raw| id_list(raw, live_proto::ConversationId::parse))
        .transpose()?;
    let dev = state.dev_tokens.as_ref().ok_or(ApiError::NotFound)?;
    let exp = u64::try_from(live_proto::now_ms() / 1000).unwrap_or(0) + dev.ttl.as_secs().max(1);
    let token = dev.key.sign(&live_common::jwt::Claims {
        sub: Some(user.as_str().into()),
        exp: Some(exp),
        videos: Some(videos),
        conversations,
        ..Default::default()
    });
    let mut response =
        axum::Json(serde_json::json!({ "token": token, "exp": exp })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
struct EventsQuery {
    last_event_id: Option<String>,
    token: Option<String>,
}

/// Whether a token's claims allow watching `topic`.
fn allows(claims: &Claims, topic: &Topic) -> bool {
    match topic {
        Topic::Video(v) => claims.allows_video(v.as_str()),
        Topic::Conversation(c) => claims
            .conversations
            .iter()
            .flatten()
            .any(|id| id == c.as_str()),
        Topic::Presence(_) => true,
    }
}

/// The `Last-Event-ID` of a stream request: the header (sent by EventSource on its own
/// reconnects) wins over the query parameter, which may be stale.
fn last_event_id(header: Option<&[u8]>, query: Option<String>) -> Result<Option<String>, ApiError> {
    match header {
        Some(v) => std::str::from_utf8(v)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| ApiError::BadRequest("invalid Last-Event-ID".into())),
        None => Ok(query),
    }
}

impl Events {
    /// With auth on, the token must be valid (401) and allow every one of `topics`
    /// (403); its claims (`None` with auth off). The one check of both streams and of
    /// the topics endpoints.
    fn claims_for(
        &self,
        token: Option<&str>,
        topics: &[Topic],
    ) -> Result<Option<Claims>, ApiError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let token = token.ok_or_else(|| ApiError::Unauthorized("missing token".into()))?;
        let claims = verifier
            .verify(token)
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        if let Some(t) = topics.iter().find(|t| !allows(&claims, t)) {
            return Err(ApiError::Forbidden(format!("token does not allow {t}")));
        }
        Ok(Some(claims))
    }

    /// 503 once the node is shutting down.
    fn refuse_if_stopping(&self) -> Result<(), ApiError> {
        if *self.stopping.borrow() {
            return Err(ApiError::Unavailable {
                message: "this frontend is shutting down".into(),
                retry_after_secs: 1,
            });
        }
        Ok(())
    }
}

impl Events {
    /// Checks a viewer request (`{video}` from the path, the raw query string, the
    /// `Last-Event-ID` header) and opens its stream.
    pub async fn open(
        &self,
        video: &str,
        query: Option<&str>,
        last_event_id_header: Option<&[u8]>,
    ) -> Result<Viewer, ApiError> {
        let video = VideoId::parse(video).map_err(|e| ApiError::BadRequest(e.0))?;
        let query: EventsQuery = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| ApiError::BadRequest("invalid query string".into()))?;
        let regions = &self.registry.node().regions;
        // The token's `exp`: when the stream must end.
        let expires = self
            .claims_for(query.token.as_deref(), &[Topic::Video(video.clone())])?
            .and_then(|claims| claims.exp);
        let cursor = match last_event_id(last_event_id_header, query.last_event_id)? {
            Some(raw) => cursor::parse(regions, &raw).ok_or_else(|| {
                ApiError::BadRequest("invalid Last-Event-ID: expected a comment id".into())
            })?,
            None => None,
        };
        self.refuse_if_stopping()?;
        let membership = self.registry.join(video)?;
        let draining = *self.stopping.borrow();
        let mut viewer = Viewer::open(membership, cursor, draining)
            .await
            .map_err(|e| ApiError::Unavailable {
                message: e.to_string(),
                retry_after_secs: 1,
            })?;
        if let Some(exp) = expires {
            viewer.expire_at(exp);
        }
        Ok(viewer)
    }
}

/// The same stream through axum, for a viewer request that arrives on a connection
/// hyper already serves (e.g. after `GET /` on a keep-alive connection).
async fn events_route(
    State(state): State<AppState>,
    Path(video): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let last_event_id = headers.get("last-event-id").map(|v| v.as_bytes());
    let viewer = state
        .events
        .open(&video, query.as_deref(), last_event_id)
        .await
        .map_err(|e| response::error(&e).into_response(None))?;
    let stream = futures::stream::unfold(viewer, |mut viewer| async move {
        let bytes = viewer.next().await?;
        // Handed to hyper, which writes it next: close enough to "written".
        viewer.record_written(1);
        Some((Ok::<_, Infallible>(bytes), viewer))
    });
    Ok(response::stream().into_response(Some(Body::from_stream(stream))))
}
