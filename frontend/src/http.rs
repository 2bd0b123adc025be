//! The HTTP edge of a frontend: the viewer stream `GET /v1/videos/{video}/events` (with
//! `--jwt-secret`, only for a `?token=` that lists the video) and the demo page `GET /`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use live_common::ApiError;
use live_common::jwt::Key;
use live_proto::VideoId;
use serde::Deserialize;
use tokio::sync::watch;

use crate::cursor;
use crate::rooms::Shared;
use crate::viewer::Viewer;

/// The demo page; `__PUBLISHER_URL__` is replaced with `--publisher-url`.
const PAGE: &str = include_str!("../assets/index.html");

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    stopping: watch::Receiver<bool>,
    page: Arc<str>,
}

pub fn router(shared: Arc<Shared>, stopping: watch::Receiver<bool>) -> Router {
    let page = PAGE.replace("__PUBLISHER_URL__", &shared.config.publisher_url);
    Router::new()
        .route("/", get(page_handler))
        .route("/v1/videos/{video}/events", get(events))
        .with_state(AppState {
            shared,
            stopping,
            page: page.into(),
        })
}

async fn page_handler(State(state): State<AppState>) -> Html<String> {
    Html(state.page.to_string())
}

#[derive(Deserialize)]
struct EventsQuery {
    last_event_id: Option<String>,
    token: Option<String>,
}

/// With `--jwt-secret`: the token must be valid (401) and list the video (403).
fn authorize(key: Option<&Key>, video: &VideoId, token: Option<&str>) -> Result<(), ApiError> {
    let Some(key) = key else {
        return Ok(());
    };
    let token = token.ok_or_else(|| ApiError::Unauthorized("missing token".into()))?;
    let claims = key
        .verify(token)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if !claims.allows_video(video.as_str()) {
        return Err(ApiError::Forbidden(
            "token does not allow this video".into(),
        ));
    }
    Ok(())
}

async fn events(
    State(state): State<AppState>,
    Path(video): Path<String>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let video = VideoId::parse(&video).map_err(|e| ApiError::BadRequest(e.0))?;
    let Query(query) = query.map_err(|_| ApiError::BadRequest("invalid query string".into()))?;
    authorize(
        state.shared.config.jwt_secret.as_ref(),
        &video,
        query.token.as_deref(),
    )?;
    // The header (sent by EventSource on its own reconnects) wins over the query
    // parameter, which may be stale.
    let raw_cursor = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::BadRequest("invalid Last-Event-ID".into()))?
                .to_owned(),
        ),
        None => query.last_event_id,
    };
    let cursor = match raw_cursor {
        Some(raw) => cursor::parse(&state.shared.regions, &raw).ok_or_else(|| {
            ApiError::BadRequest("invalid Last-Event-ID: expected a comment id".into())
        })?,
        None => None,
    };
    if *state.stopping.borrow() {
        return Err(ApiError::Unavailable {
            message: "this frontend is shutting down".into(),
            retry_after_secs: 1,
        });
    }
    let membership = state
        .shared
        .join(video)
        .map_err(|e| ApiError::Unavailable {
            message: e.to_string(),
            retry_after_secs: 5,
        })?;
    let viewer = Viewer::open(membership, cursor, state.stopping.clone())
        .await
        .map_err(|e| ApiError::Unavailable {
            message: e.to_string(),
            retry_after_secs: 1,
        })?;
    let stream = futures::stream::unfold(viewer, |mut viewer| async move {
        viewer
            .next()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), viewer))
    });
    let mut response = Body::from_stream(stream).into_response();
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
