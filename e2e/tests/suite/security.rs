//! Attacks on the security switches, each with the answer it must get: forged, expired,
//! unsigned and malformed tokens (401), acting as someone else (403), a one-user flood
//! (429 for that user only), too many viewers (503), NATS roles stepping outside their
//! permissions (refused by the server), and the whole system with NATS auth and TLS on.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::{Service, SseClient, frontend, publisher};
use futures::StreamExt;
use live_common::jwt::{Claims, Key};
use live_proto::{VideoId, subjects, v1};
use prost::Message as _;
use testkit::NatsServer;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);
const SECRET: &str = "e2e-secret-0123456789abcdef0123456789abcdef";

fn key() -> Key {
    Key::new(SECRET.as_bytes())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A valid token for `sub`, good for an hour.
fn token_for(sub: &str) -> String {
    key().sign(&Claims {
        sub: Some(sub.into()),
        exp: Some(now() + 3600),
        ..Default::default()
    })
}

/// A valid viewer token for `videos`, good for an hour.
fn viewer_token(videos: &[&str]) -> String {
    key().sign(&Claims {
        exp: Some(now() + 3600),
        videos: Some(videos.iter().map(|v| v.to_string()).collect()),
        ..Default::default()
    })
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

/// Every token an attacker might try, each of which must be refused with 401. `good` is
/// a valid token whose parts the forgeries reuse.
fn bad_tokens(good: &str) -> Vec<(&'static str, String)> {
    let parts: Vec<&str> = good.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let later = now() + 3600;
    vec![
        ("garbage", "not-a-token".into()),
        ("three garbage parts", "a.b.c".into()),
        ("two parts", format!("{header}.{payload}")),
        (
            "alg none, no signature",
            format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg none, the real signature",
            format!("{}.{payload}.{signature}", b64(r#"{"alg":"none"}"#)),
        ),
        (
            "alg HS512",
            format!("{}.{payload}.{signature}", b64(r#"{"alg":"HS512"}"#)),
        ),
        (
            "alg RS256 (key confusion)",
            format!("{}.{payload}.{signature}", b64(r#"{"alg":"RS256"}"#)),
        ),
        (
            "payload swapped to another sub",
            format!(
                "{header}.{}.{signature}",
                b64(&format!(r#"{{"sub":"mallory","exp":{later}}}"#))
            ),
        ),
        (
            "signed with another secret",
            Key::new(b"not-the-secret").sign(&Claims {
                sub: Some("alice".into()),
                exp: Some(later),
                ..Default::default()
            }),
        ),
        (
            "expired",
            key().sign(&Claims {
                sub: Some("alice".into()),
                exp: Some(now() - 10),
                ..Default::default()
            }),
        ),
        (
            "no exp",
            key().sign(&Claims {
                sub: Some("alice".into()),
                ..Default::default()
            }),
        ),
        (
            "not valid yet (nbf)",
            key().sign(&Claims {
                sub: Some("alice".into()),
                exp: Some(later),
                nbf: Some(later - 60),
                ..Default::default()
            }),
        ),
        (
            "no sub",
            key().sign(&Claims {
                exp: Some(later),
                ..Default::default()
            }),
        ),
        (
            "sub is not a valid user id",
            key().sign(&Claims {
                sub: Some("alice.>".into()),
                exp: Some(later),
                ..Default::default()
            }),
        ),
        ("oversized", format!("{good}{}", "A".repeat(5000))),
    ]
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: serde_json::Value,
}

/// `POST url` with a JSON body and, if given, this `Authorization` header value.
async fn post(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    body: serde_json::Value,
) -> Answer {
    let mut request = client.post(url).json(&body);
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    let r = request.send().await.expect("POST");
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.json().await.unwrap_or(serde_json::Value::Null),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts no `comment` or `likes` event reaches `viewer` for a while.
async fn assert_quiet(viewer: &mut SseClient, what: &str) {
    let leaked = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let e = viewer.next().await.expect("stream open");
            if e.event == "comment" || e.event == "likes" {
                return e;
            }
        }
    })
    .await;
    assert!(
        leaked.is_err(),
        "{what}: a refused request got through: {leaked:?}"
    );
}

/// Opens a viewer; returns it after its snapshot.
async fn watch(
    frontend: &Service,
    video: &str,
    token: Option<&str>,
    last_id: Option<&str>,
) -> SseClient {
    let mut url = format!("{}/v1/videos/{video}/events", frontend.url);
    if let Some(t) = token {
        url.push_str(&format!("?token={t}"));
    }
    let mut sse = SseClient::connect(&url, last_id).await.expect("connect");
    assert_eq!(sse.status, 200, "viewer of {video} refused");
    assert_eq!(sse.expect(T).await.event, "snapshot");
    sse
}

#[tokio::test]
async fn publisher_answers_each_token_failure_with_401_and_stores_nothing() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.jwt_secret = Some(key())).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = watch(&fe, "secured", None, None).await;
    let client = reqwest::Client::new();
    let likes = format!("{}/v1/videos/secured/likes", publisher.url);
    let comments = format!("{}/v1/videos/secured/comments", publisher.url);
    let good = token_for("alice");

    let mut headers: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("Basic scheme", Some("Basic YWxpY2U6cHc=".into())),
        ("Bearer without a token", Some("Bearer ".into())),
        ("token without Bearer", Some(good.clone())),
    ];
    for (what, token) in bad_tokens(&good) {
        headers.push((what, Some(bearer(&token))));
    }
    for (what, authorization) in headers {
        for (url, body) in [
            (&likes, serde_json::json!({"user": "alice"})),
            (
                &comments,
                serde_json::json!({"user": "alice", "text": "forged"}),
            ),
        ] {
            let a = post(&client, url, authorization.as_deref(), body).await;
            assert_eq!(a.status, 401, "{what} on {url}: {}", a.body);
            assert!(
                a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{what}: JSON error expected, got {}",
                a.body
            );
            assert_eq!(a.headers["www-authenticate"], "Bearer", "{what}");
        }
    }
    // A bad token is refused before the body is even looked at.
    let a = post(
        &client,
        &likes,
        Some("Bearer x"),
        serde_json::json!({"user": 1}),
    )
    .await;
    assert_eq!(a.status, 401);
    assert_quiet(&mut v, "bad tokens").await;

    // Acting as someone else: 403, nothing stored.
    let a = post(
        &client,
        &likes,
        Some(&bearer(&good)),
        serde_json::json!({"user": "bob"}),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(
        &client,
        &comments,
        Some(&bearer(&good)),
        serde_json::json!({"user": "bob", "text": "as bob"}),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body["error"].is_string());
    assert_quiet(&mut v, "user != sub").await;

    // The right token: accepted; the user may be left out and is then the token's sub.
    let a = post(
        &client,
        &comments,
        Some(&bearer(&good)),
        serde_json::json!({"text": "signed"}),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let e = v.expect_named("comment", T).await;
    assert_eq!(e.id.as_deref(), a.body["id"].as_str());
    assert_eq!(e.json()["user"], "alice");
    let a = post(
        &client,
        &likes,
        Some(&bearer(&good)),
        serde_json::json!({"user": "alice"}),
    )
    .await;
    assert_eq!((a.status, a.body["total"].as_u64()), (202, Some(1)));
    assert_eq!(v.expect_named("likes", T).await.json()["total"], 1);
}

#[tokio::test]
async fn nats_ingest_checks_the_token_like_http() {
    let nats = NatsServer::start();
    let _publisher = publisher(&nats, |c| c.jwt_secret = Some(key())).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = watch(&fe, "nats-secured", None, None).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let video = VideoId::parse("nats-secured").unwrap();
    let ask = |subject: String, payload: Vec<u8>| {
        let client = client.clone();
        async move {
            let reply = client
                .request(subject, payload.into())
                .await
                .expect("reply");
            v1::IngestReply::decode(reply.payload).expect("IngestReply")
        }
    };
    let like = |user: &str, token: &str| {
        v1::LikeRequest {
            user: user.into(),
            token: token.into(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let good = token_for("alice");

    let mut cases = vec![("no token", String::new())];
    cases.extend(bad_tokens(&good));
    for (what, token) in cases {
        let r = ask(subjects::ingest_like(&video), like("alice", &token)).await;
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(!r.error.is_empty());
        let comment = v1::CommentRequest {
            user: "alice".into(),
            text: "forged".into(),
            token: token.clone(),
            ..Default::default()
        };
        let r = ask(subjects::ingest_comment(&video), comment.encode_to_vec()).await;
        assert_eq!(r.status, 401, "{what}: {r:?}");
    }
    let r = ask(subjects::ingest_like(&video), like("bob", &good)).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_quiet(&mut v, "NATS ingest with bad tokens").await;

    let r = ask(subjects::ingest_like(&video), like("", &good)).await;
    assert_eq!((r.status, r.total), (202, 1), "{r:?}");
    let comment = v1::CommentRequest {
        text: "over NATS, signed".into(),
        token: good.clone(),
        ..Default::default()
    };
    let r = ask(subjects::ingest_comment(&video), comment.encode_to_vec()).await;
    assert_eq!(r.status, 202, "{r:?}");
    let e = v.expect_named("comment", T).await;
    assert_eq!(e.id.as_deref(), Some(r.id.as_str()));
    assert_eq!(e.json()["user"], "alice");
}

#[tokio::test]
async fn viewers_need_a_token_that_lists_the_video() {
    let nats = NatsServer::start();
    let fe = frontend(&nats, |c| c.jwt_secret = Some(key())).await;
    let client = reqwest::Client::new();
    let events = |video: &str, token: Option<&str>| {
        let mut url = format!("{}/v1/videos/{video}/events", fe.url);
        if let Some(t) = token {
            url.push_str(&format!("?token={t}"));
        }
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, body)
        }
    };
    let good = viewer_token(&["premiere"]);

    let (status, body) = events("premiere", None).await;
    assert_eq!(status, 401, "no token: {body}");
    assert!(body["error"].is_string());
    let mut cases = bad_tokens(&good);
    cases.push((
        "expired viewer token",
        key().sign(&Claims {
            exp: Some(now() - 1),
            videos: Some(vec!["premiere".into()]),
            ..Default::default()
        }),
    ));
    for (what, token) in cases {
        let (status, body) = events("premiere", Some(&token)).await;
        // "no sub" and "sub is not a valid user id" are fine for viewers: they are
        // refused for their missing `videos` claim instead.
        let want = if what.contains("sub") && !what.contains("swapped") {
            403
        } else {
            401
        };
        assert_eq!(status, want, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}");
    }
    let (status, body) = events("premiere", Some(&viewer_token(&["other"]))).await;
    assert_eq!(status, 403, "wrong video: {body}");
    let (status, _) = events("premiere", Some(&token_for("alice"))).await;
    assert_eq!(status, 403, "no videos claim");

    watch(&fe, "premiere", Some(&good), None).await;
    watch(&fe, "anything", Some(&viewer_token(&["*"])), None).await;
}

#[tokio::test]
async fn a_one_user_flood_gets_429_and_does_not_delay_other_users() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| {
        c.jwt_secret = Some(key());
        c.likes_per_sec = 5.0;
    })
    .await;
    let client = reqwest::Client::new();
    let likes = format!("{}/v1/videos/flooded/likes", publisher.url);
    let mallory = bearer(&token_for("mallory"));
    let alice = bearer(&token_for("alice"));

    // Likes in alice's name with mallory's token do not spend alice's limit.
    for _ in 0..30 {
        let a = post(
            &client,
            &likes,
            Some(&mallory),
            serde_json::json!({"user": "alice"}),
        )
        .await;
        assert_eq!(a.status, 403);
    }

    // Mallory floods with 300 likes, 16 at a time, while alice likes every 100 ms.
    let flood = futures::stream::iter(0..300)
        .map(|_| post(&client, &likes, Some(&mallory), serde_json::json!({})))
        .buffer_unordered(16)
        .collect::<Vec<Answer>>();
    let polite = async {
        let mut latencies = Vec::new();
        for _ in 0..8 {
            let start = Instant::now();
            let a = post(&client, &likes, Some(&alice), serde_json::json!({})).await;
            assert_eq!(a.status, 202, "alice refused during the flood: {}", a.body);
            latencies.push(start.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        latencies
    };
    let (flood, latencies) = tokio::join!(flood, polite);

    let limited: Vec<&Answer> = flood.iter().filter(|a| a.status == 429).collect();
    let accepted = flood.iter().filter(|a| a.status == 202).count();
    assert_eq!(limited.len() + accepted, 300, "only 202 or 429");
    assert!(
        limited.len() >= 250,
        "the flood is limited: {accepted} accepted"
    );
    for a in &limited {
        let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
        assert_eq!(a.body["error"], "rate limit exceeded");
    }
    let slowest = latencies.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(1),
        "alice's likes were delayed by the flood: {latencies:?}"
    );

    // The same over NATS ingest: 429 in the reply.
    let nc = async_nats::connect(nats.url()).await.unwrap();
    let video = VideoId::parse("flooded").unwrap();
    let payload = v1::LikeRequest {
        token: token_for("mallory"),
        ..Default::default()
    }
    .encode_to_vec();
    let replies = futures::future::join_all((0..30).map(|_| {
        let nc = nc.clone();
        let (subject, payload) = (subjects::ingest_like(&video), payload.clone());
        async move {
            let r = nc.request(subject, payload.into()).await.unwrap();
            v1::IngestReply::decode(r.payload).unwrap().status
        }
    }))
    .await;
    assert!(replies.contains(&429), "{replies:?}");
}

#[tokio::test]
async fn max_viewers_answers_503_with_retry_after() {
    let nats = NatsServer::start();
    let fe = frontend(&nats, |c| {
        c.max_viewers = 2;
        c.heartbeat = Duration::from_millis(100);
    })
    .await;
    let first = watch(&fe, "crowded", None, None).await;
    let _second = watch(&fe, "other", None, None).await;
    let url = format!("{}/v1/videos/crowded/events", fe.url);
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    // A viewer leaving frees its place.
    drop(first);
    let deadline = Instant::now() + T;
    loop {
        let sse = SseClient::connect(&url, None).await.unwrap();
        if sse.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never given out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn tokens_minted_by_scripts_jwt_sh_are_accepted() {
    // An independent implementation (openssl's HMAC) against ours.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/jwt.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["--sub", "alice", "--videos", "launch,*", "--ttl", "60"])
        .env("JWT_SECRET", SECRET)
        .output()
        .expect("run scripts/jwt.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = key().verify(token.trim()).expect("a minted token verifies");
    assert_eq!(claims.sub.as_deref(), Some("alice"));
    assert!(claims.allows_video("launch") && claims.allows_video("any"));
    assert!(claims.exp.unwrap() > now());
    assert!(Key::new(b"other").verify(token.trim()).is_err());
}

// --- NATS roles -------------------------------------------------------------------

/// nats/auth/test.conf: the roles of nats/auth/permissions.conf with test passwords.
fn auth_conf() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../nats/auth/test.conf").to_owned()
}

const ROLES: [(&str, &str); 3] = [
    ("publisher", "publisher-test-password"),
    ("frontend", "frontend-test-password"),
    ("ingest", "ingest-test-password"),
];

fn password(user: &str) -> &'static str {
    ROLES.iter().find(|(u, _)| *u == user).unwrap().1
}

/// Connects as `user`; the receiver gets the server's errors (permission violations).
async fn connect_as(
    nats: &NatsServer,
    user: &str,
    options: async_nats::ConnectOptions,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = options
        .user_and_password(user.into(), password(user).into())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    (client, rx)
}

/// Waits for the server's permission violation naming `subject`.
async fn expect_violation(errors: &mut mpsc::UnboundedReceiver<String>, what: &str, subject: &str) {
    let got = tokio::time::timeout(T, async {
        loop {
            let e = errors.recv().await.expect("connection alive");
            if e.contains("Permissions Violation") && e.contains(subject) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no permission violation for {what} on {subject}"));
    assert!(got.contains(what), "{got}");
}

#[tokio::test]
async fn each_nats_role_is_refused_outside_its_permissions() {
    let nats = NatsServer::start_with(&["-c", &auth_conf()]);

    // Without credentials, or with a wrong password: no connection at all.
    assert!(async_nats::connect(nats.url()).await.is_err());
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("frontend".into(), "guess".into())
        .connect(nats.url())
        .await;
    assert!(wrong.is_err(), "a wrong password connected");

    let (watcher, _) = connect_as(&nats, "frontend", Default::default()).await;
    let mut seen = watcher.subscribe("live.v1.>").await.unwrap();
    let (aggregator, _) = connect_as(&nats, "publisher", Default::default()).await;
    let mut reports = aggregator.subscribe("viewers.report.v1.*.*").await.unwrap();
    aggregator.flush().await.unwrap();
    let mut stored = watcher.subscribe("live.v1.local.x.comment").await.unwrap();
    watcher.flush().await.unwrap();

    // A frontend may not inject comments or likes, nor post or read ingest, nor touch
    // the streams.
    let (fe, mut fe_errors) = connect_as(&nats, "frontend", Default::default()).await;
    for subject in [
        "live.v1.local.x.comment",
        "live.v1.local.x.likes",
        "live.v1.local.x.viewers",
        "viewers.aggregators.v1.local",
        "ingest.v1.x.like",
        "ingest.v1.x.comment",
        "store.v1.local.0.x.comment",
        "likes.v1.local.0.x",
        "$KV.LIKE_KEYS_local.x",
        "$JS.API.STREAM.CREATE.EVIL",
        "$JS.API.STREAM.UPDATE.COMMENTS_local_p0",
        "$JS.API.STREAM.DELETE.COMMENTS_local_p0",
        "$JS.API.STREAM.PURGE.LIKES_local_p0",
    ] {
        fe.publish(subject, "forged".into()).await.unwrap();
        fe.flush().await.unwrap();
        expect_violation(&mut fe_errors, "Publish", subject).await;
    }
    let _snoop = fe.subscribe("ingest.v1.>").await.unwrap();
    fe.flush().await.unwrap();
    expect_violation(&mut fe_errors, "Subscription", "ingest.v1.>").await;
    // What a frontend needs still works: reporting its viewer counts to the publishers.
    fe.publish("viewers.report.v1.local.3", "counts".into())
        .await
        .unwrap();
    fe.flush().await.unwrap();
    let msg = tokio::time::timeout(T, reports.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.subject.as_str(), "viewers.report.v1.local.3");

    // An ingest client may only post to ingest.
    let (ingest, mut ingest_errors) = connect_as(&nats, "ingest", Default::default()).await;
    for subject in [
        "live.v1.local.x.comment",
        "store.v1.local.0.x.comment",
        "$JS.API.STREAM.DELETE.COMMENTS_local_p0",
    ] {
        ingest.publish(subject, "forged".into()).await.unwrap();
        ingest.flush().await.unwrap();
        expect_violation(&mut ingest_errors, "Publish", subject).await;
    }
    let _listen = ingest.subscribe("live.v1.>").await.unwrap();
    ingest.flush().await.unwrap();
    expect_violation(&mut ingest_errors, "Subscription", "live.v1.>").await;

    // The publisher may not publish live comments (only stored ones are live), members'
    // presence or viewer reports, nor delete its streams.
    let (publisher, mut pub_errors) = connect_as(&nats, "publisher", Default::default()).await;
    for subject in [
        "live.v1.local.x.comment",
        "presence.v1.local.m",
        "viewers.report.v1.local.3",
        "$JS.API.STREAM.DELETE.COMMENTS_local_p0",
        "$JS.API.STREAM.PURGE.LIKES_local_p0",
    ] {
        publisher.publish(subject, "forged".into()).await.unwrap();
        publisher.flush().await.unwrap();
        expect_violation(&mut pub_errors, "Publish", subject).await;
    }

    // None of the forged messages reached a subscriber.
    let leaked = tokio::time::timeout(Duration::from_millis(300), stored.next()).await;
    assert!(
        leaked.is_err(),
        "a forged comment was delivered: {leaked:?}"
    );
    let leaked = tokio::time::timeout(Duration::from_millis(300), seen.next()).await;
    assert!(
        leaked.is_err(),
        "a forged live message was delivered: {leaked:?}"
    );
    let leaked = tokio::time::timeout(Duration::from_millis(300), reports.next()).await;
    assert!(
        leaked.is_err(),
        "a forged viewer report was delivered: {leaked:?}"
    );
}

/// Starts a publisher and a frontend with their NATS roles (and `tls_ca`, if given),
/// both requiring tokens; checks HTTP and NATS ingest end to end, a resume from
/// JetStream and the likes total read back; then that the server saw no permission
/// violation (the roles are enough for the real services).
async fn end_to_end_with_roles(nats: &NatsServer, tls_ca: Option<PathBuf>) {
    let ca = tls_ca.clone();
    let publisher = publisher(nats, move |c| {
        c.jwt_secret = Some(key());
        c.nats.user = Some("publisher".into());
        c.nats.password = Some(password("publisher").into());
        c.nats.tls_ca = ca;
    })
    .await;
    let ca = tls_ca.clone();
    let fe = frontend(nats, move |c| {
        c.jwt_secret = Some(key());
        c.nats.user = Some("frontend".into());
        c.nats.password = Some(password("frontend").into());
        c.nats.tls_ca = ca;
    })
    .await;
    let client = reqwest::Client::new();
    let alice = bearer(&token_for("alice"));
    let comments = format!("{}/v1/videos/locked/comments", publisher.url);
    let likes = format!("{}/v1/videos/locked/likes", publisher.url);
    let ticket = viewer_token(&["locked"]);

    // Comments before any viewer: a resuming viewer reads them from JetStream.
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let a = post(
            &client,
            &comments,
            Some(&alice),
            serde_json::json!({"text": text}),
        )
        .await;
        assert_eq!(a.status, 202, "{}", a.body);
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    let mut resumed = watch(&fe, "locked", Some(&ticket), Some(&ids[0])).await;
    for id in &ids[1..] {
        assert_eq!(
            resumed.expect_named("comment", T).await.id.as_ref(),
            Some(id)
        );
    }

    // A like over HTTP, retried with the same Idempotency-Key (counted once), and a
    // comment over NATS ingest, as the ingest role.
    for _ in 0..2 {
        let r = client
            .post(&likes)
            .header("Authorization", &alice)
            .header("Idempotency-Key", "like-1")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["total"], 1);
    }
    assert_eq!(resumed.expect_named("likes", T).await.json()["total"], 1);
    let mut options = async_nats::ConnectOptions::new();
    if let Some(ca) = &tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let (ingest, _) = connect_as(nats, "ingest", options).await;
    let request = v1::CommentRequest {
        text: "via NATS".into(),
        token: token_for("bob"),
        ..Default::default()
    };
    let reply = ingest
        .request(
            subjects::ingest_comment(&VideoId::parse("locked").unwrap()),
            request.encode_to_vec().into(),
        )
        .await
        .expect("ingest reply");
    let reply = v1::IngestReply::decode(reply.payload).unwrap();
    assert_eq!(reply.status, 202, "{reply:?}");
    let e = resumed.expect_named("comment", T).await;
    assert_eq!(e.id, Some(reply.id));
    assert_eq!(e.json()["user"], "bob");

    // A new viewer's snapshot reads the likes total back from JetStream.
    let mut fresh = SseClient::connect(
        &format!("{}/v1/videos/locked/events?token={ticket}", fe.url),
        None,
    )
    .await
    .unwrap();
    let snapshot = fresh.expect(T).await;
    assert_eq!(snapshot.json()["likes"], 1, "{snapshot:?}");

    // One connection for a video, a conversation and a member's presence, changed
    // through the topics endpoint: what /v1/stream needs of NATS is in the role too.
    let stream_token = key().sign(&Claims {
        sub: Some("alice".into()),
        exp: Some(now() + 3600),
        videos: Some(vec!["locked".into()]),
        conversations: Some(vec!["c1".into()]),
        ..Default::default()
    });
    let mut multi = SseClient::connect(
        &format!(
            "{}/v1/stream?topics=video:locked,conversation:c1,presence:bob&token={stream_token}",
            fe.url
        ),
        None,
    )
    .await
    .unwrap();
    let connected = multi.expect(T).await;
    assert_eq!(connected.event, "connected", "{connected:?}");
    let connection = connected.json()["connection"].as_str().unwrap().to_owned();
    let r = client
        .post(format!("{}/v1/stream/{connection}/topics", fe.url))
        .header("Authorization", format!("Bearer {stream_token}"))
        .json(&serde_json::json!({ "topic": "presence:carol" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut firsts = 0;
    while firsts < 4 {
        let e = multi.expect(T).await;
        if e.event == "snapshot" || e.event == "presence" {
            firsts += 1;
        }
    }

    let log = nats.log();
    assert!(
        !log.contains("Violation"),
        "the services needed more than their roles allow:\n{log}"
    );
}

#[tokio::test]
async fn services_work_end_to_end_with_nats_auth() {
    let nats = NatsServer::start_with(&["-c", &auth_conf()]);
    end_to_end_with_roles(&nats, None).await;
}

#[tokio::test]
async fn services_work_end_to_end_with_nats_auth_and_tls() {
    let certs = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/certs.sh");
    let made = std::process::Command::new("bash")
        .arg(script)
        .arg(certs.path())
        .output()
        .expect("run scripts/certs.sh");
    assert!(
        made.status.success(),
        "certs.sh failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let path = |f: &str| certs.path().join(f).to_str().unwrap().to_owned();
    let nats = NatsServer::start_with(&[
        "-c",
        &auth_conf(),
        "--tls",
        "--tlscert",
        &path("server.pem"),
        "--tlskey",
        &path("server-key.pem"),
    ]);

    // A client that does not trust the CA cannot connect.
    let untrusting = tokio::time::timeout(
        T,
        async_nats::ConnectOptions::new()
            .user_and_password("ingest".into(), password("ingest").into())
            .connect(nats.url()),
    )
    .await;
    assert!(
        !matches!(untrusting, Ok(Ok(_))),
        "a client without the CA connected"
    );

    end_to_end_with_roles(&nats, Some(certs.path().join("ca.pem"))).await;
}
