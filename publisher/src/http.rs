//! The HTTP edge: `POST /v1/videos/{video}/likes` and `/comments`, and moderation
//! (`DELETE /v1/videos/{video}/comments/{id}`, `POST /v1/videos/{video}/bans`,
//! `PUT /v1/videos/{video}/slow_mode`). Every input is checked here before anything is
//! stored, in this order: the bearer token (401; for moderation, 403 without the
//! moderator role), the video id, size, content type and JSON shape (400, 413, 415), the
//! user named in the body (400, 403 if it is not the token's `sub`), then a ban (403),
//! slow mode and the rate limit (429).
//!
//! Conversations (`POST /v1/conversations/{id}/typing` `{"user"}`, `…/read`
//! `{"user","message"}`): the conversation id (400), the bearer token (401) and its
//! `conversations` claim (403), then size, content type and JSON shape, the user (400,
//! 403 if not the token's `sub`), the message id (400) and the rate limit (429).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use live_common::ApiError;
use live_common::conn::RequestBody;
use live_proto::{CommentText, ConversationId, MessageId, VideoId};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::{Auth, AuthError, Caller};
use crate::moderation::ModerationError;
use crate::service::{Service, idempotency_key};

/// Largest request body accepted.
pub const MAX_BODY: usize = 4096;

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/videos/{video}/likes", post(post_like))
        .route("/v1/videos/{video}/comments", post(post_comment))
        .route("/v1/videos/{video}/comments/{id}", delete(delete_comment))
        .route("/v1/videos/{video}/bans", post(post_ban))
        .route("/v1/videos/{video}/slow_mode", put(put_slow_mode))
        .route("/v1/conversations/{conversation}/typing", post(post_typing))
        .route("/v1/conversations/{conversation}/read", post(post_read))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
}

/// `user` may be left out when auth is on (it is then the token's `sub`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    #[serde(default)]
    user: Option<String>,
    text: String,
}

async fn post_like(
    State(service): State<Arc<Service>>,
    Path(video): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let caller = caller(&service.auth, &headers)?;
    let video = VideoId::parse(&video).map_err(bad)?;
    let body: UserBody = json_body(&headers, body).await?;
    let user = caller.acting_as(body.user.as_deref())?;
    let key = idempotency_header(&headers)?;
    let total = service.like(video, &user, key).await?;
    Ok(accepted(serde_json::json!({ "total": total })))
}

async fn post_comment(
    State(service): State<Arc<Service>>,
    Path(video): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let caller = caller(&service.auth, &headers)?;
    let video = VideoId::parse(&video).map_err(bad)?;
    let body: CommentBody = json_body(&headers, body).await?;
    let user = caller.acting_as(body.user.as_deref())?;
    let text = CommentText::parse(&body.text).map_err(bad)?;
    let key = idempotency_header(&headers)?;
    let id = service.comment(&video, &user, text, key).await?;
    Ok(accepted(serde_json::json!({ "id": id.to_string() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    #[serde(default)]
    user: Option<String>,
    message: String,
}

/// `202 {"until_ms": T}`: the user's indicator is live until T (published now, or
/// earlier within the same burst).
async fn post_typing(
    State(service): State<Arc<Service>>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let conversation = ConversationId::parse(&conversation).map_err(bad)?;
    let caller = member(&service.auth, &headers, &conversation)?;
    let body: UserBody = json_body(&headers, body).await?;
    let user = caller.acting_as(body.user.as_deref())?;
    let typing = service.conversations.typing(&conversation, &user).await?;
    Ok(accepted(serde_json::json!({ "until_ms": typing.until_ms })))
}

/// `202 {"revision": R}` once the receipt is stored (R: its revision in the region's
/// receipts bucket).
async fn post_read(
    State(service): State<Arc<Service>>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let conversation = ConversationId::parse(&conversation).map_err(bad)?;
    let caller = member(&service.auth, &headers, &conversation)?;
    let body: ReadBody = json_body(&headers, body).await?;
    let user = caller.acting_as(body.user.as_deref())?;
    let message = MessageId::parse(&body.message).map_err(bad)?;
    let read = service
        .conversations
        .read(&conversation, &user, &message)
        .await?;
    Ok(accepted(serde_json::json!({ "revision": read.revision })))
}

/// The caller of a conversation request (see [`Auth::authenticate_member`]).
fn member(
    auth: &Auth,
    headers: &HeaderMap,
    conversation: &ConversationId,
) -> Result<Caller, AuthError> {
    if !auth.is_on() {
        return Ok(Caller::Anyone);
    }
    auth.authenticate_member(bearer(headers)?, conversation)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BanBody {
    user: String,
    seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowModeBody {
    seconds: u64,
}

impl From<ModerationError> for ApiError {
    fn from(e: ModerationError) -> Self {
        match e {
            ModerationError::BadInput(m) => ApiError::BadRequest(m),
            ModerationError::NotFound(m) => ApiError::NoSuch(m),
            ModerationError::Unavailable(cause) => ApiError::unavailable("storage", cause),
        }
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_comment(
    State(service): State<Arc<Service>>,
    Path((video, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let by = moderator(&service.auth, &headers)?;
    let video = VideoId::parse(&video).map_err(bad)?;
    service
        .moderation
        .delete_comment(&video, &id, by.as_ref())
        .await?;
    Ok(no_content())
}

async fn post_ban(
    State(service): State<Arc<Service>>,
    Path(video): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let by = moderator(&service.auth, &headers)?;
    let video = VideoId::parse(&video).map_err(bad)?;
    let body: BanBody = json_body(&headers, body).await?;
    let user = live_proto::UserId::parse(&body.user).map_err(bad)?;
    service
        .moderation
        .ban(&video, &user, body.seconds, by.as_ref())
        .await?;
    Ok(no_content())
}

async fn put_slow_mode(
    State(service): State<Arc<Service>>,
    Path(video): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let by = moderator(&service.auth, &headers)?;
    let video = VideoId::parse(&video).map_err(bad)?;
    let body: SlowModeBody = json_body(&headers, body).await?;
    service
        .moderation
        .set_slow_mode(&video, body.seconds, by.as_ref())
        .await?;
    Ok(no_content())
}

/// The optional `Idempotency-Key` header, validated like an id.
fn idempotency_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get("idempotency-key") {
        Some(v) => v
            .to_str()
            .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII".into()))
            .and_then(|k| idempotency_key(k).map_err(bad))
            .map(Some),
        None => Ok(None),
    }
}

fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// Authenticates the `Authorization: Bearer <token>` header (when auth is on).
fn caller(auth: &Auth, headers: &HeaderMap) -> Result<Caller, AuthError> {
    if !auth.is_on() {
        return Ok(Caller::Anyone);
    }
    auth.authenticate(bearer(headers)?)
}

/// The moderator the `Authorization` header names (see [`Auth::moderator`]).
fn moderator(auth: &Auth, headers: &HeaderMap) -> Result<Option<live_proto::UserId>, AuthError> {
    if !auth.is_on() {
        return Ok(None);
    }
    auth.moderator(bearer(headers)?)
}

/// The token of an `Authorization: Bearer <token>` header, `None` without the header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| Some(token.trim()))
            .ok_or_else(|| {
                AuthError::Unauthenticated("Authorization must be \"Bearer <token>\"".into())
            }),
    }
}

fn bad(e: live_proto::InvalidInput) -> ApiError {
    ApiError::BadRequest(e.0)
}

/// Checks size (413) and content type (415) from the head, before reading the body
/// (a request refused anyway does not wait for it), then reads it (413 as it arrives,
/// 408 if it is not whole by the request's deadline) and checks its JSON shape (400).
async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<T, ApiError> {
    body.check_length(MAX_BODY)?;
    check_json(headers)?;
    parse_json(&body.read(MAX_BODY).await?)
}

/// 415 unless the content type is `application/json`.
fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// A JSON object body as `T` (400 otherwise).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would also read a struct from a JSON array; only an object is a body.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use live_common::jwt::{Claims, Key};
    use proptest::prelude::*;
    use serde_json::Value;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
        parse_json(body)
    }

    #[tokio::test]
    async fn size_then_type_then_shape() {
        let big = RequestBody::from_bytes(vec![b' '; MAX_BODY + 1]);
        let e = json_body::<UserBody>(&HeaderMap::new(), big).await;
        assert_eq!(e.unwrap_err().status(), 413);
        let body = || RequestBody::from_bytes(&b"{}"[..]);
        let e = json_body::<UserBody>(&HeaderMap::new(), body()).await;
        assert_eq!(e.unwrap_err().status(), 415);
        let like: UserBody = json_body(&json_headers(), body()).await.unwrap();
        assert_eq!(like.user, None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            let key = prop_oneof![Just("user".to_owned()), Just("text".to_owned()), ".{0,6}"];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn body_shapes() {
        let like: UserBody = parse(br#"{}"#).unwrap();
        assert_eq!(like.user, None);
        let comment: CommentBody = parse(br#"{"user":"u","text":"t"}"#).unwrap();
        assert_eq!(
            (comment.user.as_deref(), comment.text.as_str()),
            (Some("u"), "t")
        );
        for bad in [
            &br#"{"user":"u","n":1}"#[..],
            br#"{"user":1}"#,
            b"[]",
            b"",
            b"null",
        ] {
            assert_eq!(parse::<UserBody>(bad).unwrap_err().status(), 400);
        }
        assert_eq!(
            parse::<CommentBody>(br#"{"user":"u"}"#)
                .unwrap_err()
                .status(),
            400
        );
        let read: ReadBody = parse(br#"{"user":"u","message":"m1"}"#).unwrap();
        assert_eq!(
            (read.user.as_deref(), read.message.as_str()),
            (Some("u"), "m1")
        );
        let typing: UserBody = parse(br#"{"user":"u"}"#).unwrap();
        assert_eq!(typing.user.as_deref(), Some("u"));
        for bad in [
            &br#"{"user":"u"}"#[..],
            br#"{"user":"u","message":1}"#,
            br#"{"user":"u","message":"m","at":1}"#,
        ] {
            assert_eq!(parse::<ReadBody>(bad).unwrap_err().status(), 400);
        }
        assert_eq!(
            parse::<UserBody>(br#"{"user":"u","until_ms":1}"#)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn bearer_header() {
        let key = Key::new(b"k");
        let auth = Auth::new(Some(key.clone()));
        let token = key.sign(&Claims {
            sub: Some("alice".into()),
            exp: Some(u64::MAX),
            ..Default::default()
        });
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            caller(&auth, &h)
        };
        assert!(with(&format!("Bearer {token}")).is_ok());
        assert!(with(&format!("bearer  {token} ")).is_ok());
        assert_eq!(with(&format!("Basic {token}")).unwrap_err().status(), 401);
        assert_eq!(with(&token).unwrap_err().status(), 401);
        assert_eq!(with("Bearer ").unwrap_err().status(), 401);
        assert_eq!(caller(&auth, &HeaderMap::new()).unwrap_err().status(), 401);
        assert_eq!(
            caller(&Auth::default(), &HeaderMap::new()),
            Ok(Caller::Anyone)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_or_parsed_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..600)
        ) {
            if let Err(e) = parse::<CommentBody>(&body) {
                prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            }
            if let Err(e) = parse::<UserBody>(&body) {
                prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            }
        }

        #[test]
        fn arbitrary_json_is_refused_or_parsed_never_panic(value in json_value()) {
            let body = serde_json::to_vec(&value).unwrap();
            if let Ok(c) = parse::<CommentBody>(&body) {
                // Whatever parses still goes through the id and text checks.
                let _ = c.user.as_deref().map(live_proto::UserId::parse);
                let _ = CommentText::parse(&c.text);
            }
            let _ = parse::<UserBody>(&body);
        }

        #[test]
        fn valid_bodies_round_trip(user in "[A-Za-z0-9_-]{1,64}", text in "\\PC{1,500}") {
            let body = serde_json::to_vec(&serde_json::json!({"user": user, "text": text})).unwrap();
            let c: CommentBody = parse(&body).unwrap();
            prop_assert_eq!(c.user.as_deref(), Some(user.as_str()));
            prop_assert_eq!(CommentText::parse(&c.text).unwrap().into_string(), text);
        }

        #[test]
        fn content_type_is_checked_never_panics(ct in "[ -~]{0,60}") {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ct).unwrap());
            let r = check_json(&h);
            let is_json = ct.split(';').next().unwrap().trim().eq_ignore_ascii_case("application/json");
            prop_assert_eq!(r.is_ok(), is_json);
        }

        #[test]
        fn arbitrary_authorization_headers_never_panic(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let auth = Auth::new(Some(Key::new(b"k")));
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, v);
                prop_assert_eq!(caller(&auth, &h).unwrap_err().status(), 401);
            }
        }
    }
}
