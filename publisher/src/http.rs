//! The HTTP edge: `POST /v1/videos/{video}/likes` and `/comments`. Every input is checked
//! here (size, content type, JSON shape, ids, text) before anything is stored.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use live_common::ApiError;
use live_proto::{CommentText, UserId, VideoId};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::service::{Service, idempotency_key};

/// Largest request body accepted.
pub const MAX_BODY: usize = 4096;

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/videos/{video}/likes", post(post_like))
        .route("/v1/videos/{video}/comments", post(post_comment))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LikeBody {
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    user: String,
    text: String,
}

async fn post_like(
    State(service): State<Arc<Service>>,
    Path(video): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let video = VideoId::parse(&video).map_err(bad)?;
    let body: LikeBody = json_body(&headers, body)?;
    let user = UserId::parse(&body.user).map_err(bad)?;
    let total = service.like(video, &user).await?;
    Ok(accepted(serde_json::json!({ "total": total })))
}

async fn post_comment(
    State(service): State<Arc<Service>>,
    Path(video): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let video = VideoId::parse(&video).map_err(bad)?;
    let body: CommentBody = json_body(&headers, body)?;
    let user = UserId::parse(&body.user).map_err(bad)?;
    let text = CommentText::parse(&body.text).map_err(bad)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII".into()))
                .and_then(|k| idempotency_key(k).map_err(bad))?,
        ),
        None => None,
    };
    let id = service.comment(&video, &user, text, key).await?;
    Ok(accepted(serde_json::json!({ "id": id.to_string() })))
}

fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn bad(e: live_proto::InvalidInput) -> ApiError {
    ApiError::BadRequest(e.0)
}

/// Checks size (413), content type (415) and JSON shape (400), in that order.
fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_BODY)
        } else {
            ApiError::BadRequest("cannot read the request body".into())
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
