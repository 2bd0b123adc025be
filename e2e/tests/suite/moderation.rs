//! Moderation against the real services (auth on): a moderator deletes a comment while
//! one viewer watches (it gets `comment_deleted`) and others resume from before it, from
//! a frontend's ring and from JetStream (they never get it); a ban refuses that user's
//! likes and comments (403) until it ends, also after a publisher restart; slow mode
//! allows one comment per user per window (429 with Retry-After); the same operations
//! over NATS ingest; bad input changes nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use e2e::{Service, SseClient, frontend, publisher, viewer};
use live_common::jwt::{Claims, Key};
use live_proto::{VideoId, subjects, subjects::IngestKind, v1};
use prost::Message as _;
use serde_json::{Value, json};
use testkit::NatsServer;

const T: Duration = Duration::from_secs(10);
const SECRET: &str = "e2e-moderation-secret-0123456789abcdef0123";

fn key() -> Key {
    Key::new(SECRET.as_bytes())
}

fn token(sub: &str, role: Option<&str>) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    key().sign(&Claims {
        sub: Some(sub.into()),
        exp: Some(exp),
        role: role.map(Into::into),
        ..Default::default()
    })
}

fn moderator() -> String {
    token("mod", Some("moderator"))
}

/// Sends a request with an optional bearer token and JSON body; the status, the
/// `Retry-After` header and the JSON answer.
async fn send(
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let json = r.json().await.unwrap_or(Value::Null);
    (status, retry, json)
}

async fn post_comment(
    p: &Service,
    video: &str,
    user: &str,
    text: &str,
) -> (u16, Option<String>, Value) {
    send(
        reqwest::Method::POST,
        &format!("{}/v1/videos/{video}/comments", p.url),
        Some(&token(user, None)),
        Some(json!({ "text": text })),
    )
    .await
}

async fn post_like(p: &Service, video: &str, user: &str) -> u16 {
    send(
        reqwest::Method::POST,
        &format!("{}/v1/videos/{video}/likes", p.url),
        Some(&token(user, None)),
        Some(json!({})),
    )
    .await
    .0
}

async fn comment_id(p: &Service, video: &str, user: &str, text: &str) -> String {
    let (status, _, body) = post_comment(p, video, user, text).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn delete(p: &Service, video: &str, id: &str, bearer: Option<&str>) -> (u16, Value) {
    let (status, _, body) = send(
        reqwest::Method::DELETE,
        &format!("{}/v1/videos/{video}/comments/{id}", p.url),
        bearer,
        None,
    )
    .await;
    (status, body)
}

/// Every event until none arrives for a moment: (event, id of the comment or deletion).
async fn drain(v: &mut SseClient) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), v.next()).await {
        if e.event == "comment" || e.event == "comment_deleted" {
            seen.push((e.event.clone(), e.json()["id"].as_str().unwrap().to_owned()));
        }
    }
    seen
}

fn comments(ids: &[&str]) -> Vec<(String, String)> {
    ids.iter()
        .map(|id| ("comment".to_owned(), id.to_string()))
        .collect()
}

#[tokio::test]
async fn a_deleted_comment_leaves_every_screen_and_every_replay() {
    let nats = NatsServer::start();
    let secret = Some(key());
    let publisher = publisher(&nats, |c| {
        c.jwt_secret = secret.clone();
        c.no_rate_limit = true;
    })
    .await;
    let fe = frontend(&nats, |_| {}).await;
    let mut watching = viewer(&fe, "mod", None).await;
    let c1 = comment_id(&publisher, "mod", "alice", "one").await;
    let c2 = comment_id(&publisher, "mod", "bob", "spam").await;
    let c3 = comment_id(&publisher, "mod", "alice", "three").await;
    let other = comment_id(&publisher, "elsewhere", "bob", "hi").await;
    assert_eq!(drain(&mut watching).await, comments(&[&c1, &c2, &c3]));

    // Refused, and nothing changes.
    let refused = [
        (None, c2.as_str(), 401),
        (Some(token("alice", None)), c2.as_str(), 403),
        (Some(moderator()), "abc", 400),
        (Some(moderator()), "0", 400),
        (Some(moderator()), "999999", 404),
        // Another video's comment, through this video's URL.
        (Some(moderator()), other.as_str(), 404),
    ];
    for (bearer, id, want) in refused {
        let (status, body) = delete(&publisher, "mod", id, bearer.as_deref()).await;
        assert_eq!(status, want, "delete {id}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let (status, body) = delete(&publisher, "bad.video", &c2, Some(&moderator())).await;
    assert_eq!(status, 400, "{body}");
    assert!(drain(&mut watching).await.is_empty(), "nothing happened");

    let (status, body) = delete(&publisher, "mod", &c2, Some(&moderator())).await;
    assert_eq!(status, 204, "{body}");
    let deleted = watching.expect_named("comment_deleted", T).await;
    assert_eq!(deleted.json(), json!({ "id": c2 }));

    // Resuming from before it: from this frontend's ring, and from JetStream on a
    // frontend that never saw the video (its room reads the tombstones when it opens).
    let fresh = frontend(&nats, |_| {}).await;
    for fe in [&fe, &fresh] {
        let mut back = viewer(fe, "mod", Some(&c1)).await;
        assert_eq!(drain(&mut back).await, comments(&[&c3]), "{}", fe.url);
    }
    // Live goes on with no gap and no duplicate; a later resume from the start still
    // never returns it.
    let c4 = comment_id(&publisher, "mod", "alice", "four").await;
    assert_eq!(drain(&mut watching).await, comments(&[&c4]));
    let mut all = viewer(&fresh, "mod", Some("0")).await;
    let replay = drain(&mut all).await;
    assert!(
        !replay.iter().any(|(_, id)| *id == c2) && replay.ends_with(&comments(&[&c3, &c4])),
        "{replay:?}"
    );
    // Deleting it again is harmless.
    assert_eq!(
        delete(&publisher, "mod", &c2, Some(&moderator())).await.0,
        204
    );

    // Over NATS ingest, for back-office tools.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let video = VideoId::parse("mod").unwrap();
    let ask = |request: Vec<u8>| {
        let client = client.clone();
        let subject = subjects::ingest_moderation(&video, IngestKind::DeleteComment);
        async move {
            let reply = client.request(subject, request.into()).await.unwrap();
            v1::IngestReply::decode(reply.payload).unwrap()
        }
    };
    let request = |id: &str, token: String| {
        v1::DeleteCommentRequest {
            id: id.into(),
            token,
        }
        .encode_to_vec()
    };
    assert_eq!(ask(request(&c3, String::new())).await.status, 401);
    assert_eq!(ask(request(&c3, token("alice", None))).await.status, 403);
    assert_eq!(ask(request("x", moderator())).await.status, 400);
    assert_eq!(ask(vec![0xff, 0xff]).await.status, 400);
    assert_eq!(ask(request(&c3, moderator())).await.status, 204);
    let deleted = watching.expect_named("comment_deleted", T).await;
    assert_eq!(deleted.json(), json!({ "id": c3 }));
    let mut back = viewer(&fresh, "mod", Some(&c1)).await;
    assert_eq!(drain(&mut back).await, comments(&[&c4]));
}

#[tokio::test]
async fn a_ban_refuses_the_user_until_it_ends_also_after_a_restart() {
    let nats = NatsServer::start();
    let secret = Some(key());
    let configure = |c: &mut publisher::Config| {
        c.jwt_secret = secret.clone();
        c.no_rate_limit = true;
    };
    let p = publisher(&nats, configure).await;
    let ban = |p: &Service, bearer: Option<String>, body: Value| {
        let bans = format!("{}/v1/videos/banned/bans", p.url);
        async move { send(reqwest::Method::POST, &bans, bearer.as_deref(), Some(body)).await }
    };
    for (bearer, body, want) in [
        (None, json!({"user": "bob", "seconds": 60}), 401),
        // A moderator's token that names nobody valid is no identity.
        (
            Some(token("*", Some("moderator"))),
            json!({"user": "bob", "seconds": 60}),
            401,
        ),
        (
            Some(token("bob.>", Some("moderator"))),
            json!({"user": "bob", "seconds": 60}),
            401,
        ),
        (
            Some(token("bob", None)),
            json!({"user": "bob", "seconds": 60}),
            403,
        ),
        (
            Some(moderator()),
            json!({"user": "bob.>", "seconds": 60}),
            400,
        ),
        (
            Some(moderator()),
            json!({"user": "bob", "seconds": -1}),
            400,
        ),
        (
            Some(moderator()),
            json!({"user": "bob", "seconds": 1e12}),
            400,
        ),
        (Some(moderator()), json!({"user": "bob"}), 400),
        (
            Some(moderator()),
            json!({"user": "bob", "seconds": 99_999_999_999u64}),
            400,
        ),
    ] {
        let (status, _, answer) = ban(&p, bearer, body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(
        post_like(&p, "banned", "bob").await,
        202,
        "no ban was stored"
    );

    let (status, _, answer) =
        ban(&p, Some(moderator()), json!({"user": "bob", "seconds": 4})).await;
    assert_eq!(status, 204, "{answer}");
    let banned_at = std::time::Instant::now();
    let (status, _, answer) = post_comment(&p, "banned", "bob", "let me in").await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("banned"),
        "{answer}"
    );
    assert_eq!(post_like(&p, "banned", "bob").await, 403);
    assert_eq!(post_like(&p, "banned", "alice").await, 202, "only bob");
    assert_eq!(
        post_like(&p, "other-video", "bob").await,
        202,
        "only this video"
    );

    // Over NATS ingest: the like is refused the same way.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let video = VideoId::parse("banned").unwrap();
    let like = v1::LikeRequest {
        token: token("bob", None),
        ..Default::default()
    };
    let reply = client
        .request(subjects::ingest_like(&video), like.encode_to_vec().into())
        .await
        .unwrap();
    assert_eq!(v1::IngestReply::decode(reply.payload).unwrap().status, 403);
    // And so is a batch of likes acting as bob (an edge account banned from the video).
    let batch = v1::LikeBatch {
        user: "bob".into(),
        count: 10,
        idempotency_key: "k1".into(),
        token: token("bob", None),
    };
    let reply = client
        .request(
            subjects::ingest_like_batch(&video),
            batch.encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(v1::IngestReply::decode(reply.payload).unwrap().status, 403);

    // Durable: a restarted publisher still refuses bob.
    p.stop().await;
    let p = publisher(&nats, configure).await;
    assert_eq!(post_like(&p, "banned", "bob").await, 403, "after a restart");
    // A ban set over NATS ingest, on another user.
    let request = v1::BanRequest {
        user: "eve".into(),
        seconds: 60,
        token: moderator(),
    };
    let reply = client
        .request(
            subjects::ingest_moderation(&video, IngestKind::Ban),
            request.encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(v1::IngestReply::decode(reply.payload).unwrap().status, 204);
    assert_eq!(post_like(&p, "banned", "eve").await, 403);

    // Ends on time.
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(banned_at.elapsed())).await;
    assert_eq!(post_like(&p, "banned", "bob").await, 202, "the ban ended");
    assert_eq!(post_comment(&p, "banned", "bob", "back").await.0, 202);
    // Lifted early (seconds 0).
    let (status, _, _) = ban(&p, Some(moderator()), json!({"user": "eve", "seconds": 0})).await;
    assert_eq!(status, 204);
    assert_eq!(post_like(&p, "banned", "eve").await, 202);
}

#[tokio::test]
async fn slow_mode_allows_one_comment_per_user_per_window() {
    let nats = NatsServer::start();
    let secret = Some(key());
    let p = publisher(&nats, |c| {
        c.jwt_secret = secret.clone();
        c.no_rate_limit = true;
    })
    .await;
    let url = format!("{}/v1/videos/slow/slow_mode", p.url);
    let set = |bearer: Option<String>, body: Value| {
        let url = url.clone();
        async move { send(reqwest::Method::PUT, &url, bearer.as_deref(), Some(body)).await }
    };
    for (bearer, body, want) in [
        (None, json!({"seconds": 2}), 401),
        (Some(token("bob", None)), json!({"seconds": 2}), 403),
        (Some(moderator()), json!({"seconds": 86_401}), 400),
        (Some(moderator()), json!({"seconds": "2"}), 400),
        (Some(moderator()), json!({"seconds": 2, "x": 1}), 400),
    ] {
        let (status, _, answer) = set(bearer, body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
    }
    for i in 0..3 {
        assert_eq!(
            post_comment(&p, "slow", "bob", &format!("fast {i}"))
                .await
                .0,
            202,
            "off"
        );
    }

    assert_eq!(set(Some(moderator()), json!({"seconds": 2})).await.0, 204);
    let first = std::time::Instant::now();
    assert_eq!(post_comment(&p, "slow", "bob", "one").await.0, 202);
    let (status, retry, answer) = post_comment(&p, "slow", "bob", "two").await;
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("slow mode"),
        "{answer}"
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        post_comment(&p, "slow", "alice", "mine").await.0,
        202,
        "per user"
    );
    assert_eq!(
        post_like(&p, "slow", "bob").await,
        202,
        "likes are not slowed"
    );
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(first.elapsed())).await;
    assert_eq!(
        post_comment(&p, "slow", "bob", "three").await.0,
        202,
        "next window"
    );

    // Off again, over NATS ingest.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let request = v1::SlowModeRequest {
        seconds: 0,
        token: moderator(),
    };
    let reply = client
        .request(
            subjects::ingest_moderation(&VideoId::parse("slow").unwrap(), IngestKind::SlowMode),
            request.encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(v1::IngestReply::decode(reply.payload).unwrap().status, 204);
    assert_eq!(post_comment(&p, "slow", "bob", "four").await.0, 202);
    assert_eq!(post_comment(&p, "slow", "bob", "five").await.0, 202);
}
