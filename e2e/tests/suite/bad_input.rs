//! Every class of bad input gets a clear JSON error and changes nothing: over HTTP on
//! both services and over NATS ingest.

use std::time::Duration;

use e2e::{comment, frontend, publisher, viewer};
use live_proto::v1;
use prost::Message as _;
use testkit::NatsServer;

const T: Duration = Duration::from_secs(10);

async fn raw_post(
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut r = reqwest::Client::new().post(url).body(body);
    if let Some(ct) = content_type {
        r = r.header("Content-Type", ct);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn bad_http_input_is_refused_and_stores_nothing() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.comments_per_sec = 1.0).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = viewer(&fe, "guarded", None).await;
    let comments = format!("{}/v1/videos/guarded/comments", publisher.url);
    let likes = format!("{}/v1/videos/guarded/likes", publisher.url);
    let json = Some("application/json");

    // (what, url, content type, body, expected status)
    type Case<'a> = (&'a str, String, Option<&'a str>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "bad video id",
            format!("{}/v1/videos/a.b/comments", publisher.url),
            json,
            br#"{"user":"u","text":"t"}"#.to_vec(),
            400,
        ),
        (
            "wildcard video id",
            format!("{}/v1/videos/%3E/likes", publisher.url),
            json,
            br#"{"user":"u"}"#.to_vec(),
            400,
        ),
        (
            "a video id that is not UTF-8 (axum's own rejection, as JSON)",
            format!("{}/v1/videos/%ff/likes", publisher.url),
            json,
            br#"{"user":"u"}"#.to_vec(),
            400,
        ),
        (
            "a connection id that is not UTF-8, on the frontend",
            format!("{}/v1/stream/%ff/topics", fe.url),
            json,
            br#"{"topic":"video:a"}"#.to_vec(),
            400,
        ),
        (
            "too long video id",
            format!("{}/v1/videos/{}/likes", publisher.url, "v".repeat(65)),
            json,
            br#"{"user":"u"}"#.to_vec(),
            400,
        ),
        (
            "bad user",
            comments.clone(),
            json,
            br#"{"user":"a b","text":"t"}"#.to_vec(),
            400,
        ),
        (
            "user with subject chars",
            likes.clone(),
            json,
            br#"{"user":"x.>"}"#.to_vec(),
            400,
        ),
        (
            "empty text",
            comments.clone(),
            json,
            br#"{"user":"u","text":""}"#.to_vec(),
            400,
        ),
        (
            "text too long",
            comments.clone(),
            json,
            format!(r#"{{"user":"u","text":"{}"}}"#, "y".repeat(501)).into_bytes(),
            400,
        ),
        (
            "missing field",
            comments.clone(),
            json,
            br#"{"user":"u"}"#.to_vec(),
            400,
        ),
        (
            "unknown field",
            likes.clone(),
            json,
            br#"{"user":"u","count":1000}"#.to_vec(),
            400,
        ),
        (
            "wrong type",
            likes.clone(),
            json,
            br#"{"user":7}"#.to_vec(),
            400,
        ),
        (
            "malformed JSON",
            comments.clone(),
            json,
            br#"{"user":"u","#.to_vec(),
            400,
        ),
        (
            "invalid UTF-8",
            comments.clone(),
            json,
            b"{\"user\":\"u\",\"text\":\"\xff\xfe\"}".to_vec(),
            400,
        ),
        (
            "not JSON content type",
            comments.clone(),
            Some("text/plain"),
            br#"{"user":"u","text":"t"}"#.to_vec(),
            415,
        ),
        (
            "no content type",
            likes.clone(),
            None,
            br#"{"user":"u"}"#.to_vec(),
            415,
        ),
        (
            "body too large",
            comments.clone(),
            json,
            format!(r#"{{"user":"u","text":"{}"}}"#, "z".repeat(5000)).into_bytes(),
            413,
        ),
    ];
    for (what, url, ct, body, want) in cases {
        let (status, answer) = raw_post(&url, ct, body).await;
        assert_eq!(status, want, "{what}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: JSON error body expected, got {answer}"
        );
    }

    // Rate limit: a burst of comments from one user, then 429 with Retry-After.
    let mut limited = None;
    for i in 0..20 {
        let r = reqwest::Client::new()
            .post(&comments)
            .json(&serde_json::json!({"user": "flooder", "text": format!("spam {i}")}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("a flood from one user is rate limited");
    assert!(limited.headers().contains_key("retry-after"));
    let accepted_before_limit = {
        let mut n = 0;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), v.next()).await {
            if e.event == "comment" {
                assert_eq!(
                    e.json()["user"],
                    "flooder",
                    "only valid comments were stored"
                );
                n += 1;
            }
        }
        n
    };
    assert!(accepted_before_limit >= 1);
    // Another user is not affected.
    comment(&publisher, "guarded", "polite", "hello").await;

    // Frontend: bad video, bad Last-Event-ID.
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/v1/videos/no.dots/events", fe.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{}/v1/videos/ok/events", fe.url))
        .header("Last-Event-ID", "12abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let r = client
        .get(format!("{}/v1/videos/ok/events?last_event_id=-1", fe.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A request target that is no URI (a raw `>`), which hyper answers with an empty 400:
    // the frontend answers it with a JSON error.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = fe.url.trim_start_matches("http://");
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"DELETE /v1/stream/x.>/topics/video:a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(T, raw.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains("URI")),
            "{json}"
        );
    }
    // The fast path percent-decodes the id as axum does: a wildcard stays refused, an
    // encoded letter is that letter.
    for (path, status) in [
        ("/v1/videos/%3E/events", 400),
        ("/v1/videos/a%2Fb/events", 400),
        ("/v1/videos/%FF/events", 400),
        ("/v1/videos/o%6B/events", 200),
    ] {
        let r = client
            .get(format!("{}{path}", fe.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        if status == 200 {
            assert_eq!(r.headers()["content-type"], "text/event-stream");
        } else {
            assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
        }
    }
}

#[tokio::test]
async fn nats_ingest_validates_and_acknowledges() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = viewer(&fe, "ingested", None).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let video = live_proto::VideoId::parse("ingested").unwrap();

    let ask = |subject: String, payload: Vec<u8>| {
        let client = client.clone();
        async move {
            let reply = client
                .request(subject, payload.into())
                .await
                .expect("a reply");
            v1::IngestReply::decode(reply.payload).expect("IngestReply")
        }
    };

    // A comment: acknowledged with its id, delivered to the viewer.
    let ok = ask(
        live_proto::subjects::ingest_comment(&video),
        v1::CommentRequest {
            user: "nats_user".into(),
            text: "via NATS".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert_eq!(ok.status, 202, "{ok:?}");
    let e = v.expect_named("comment", T).await;
    assert_eq!(e.id, Some(ok.id.clone()));
    assert_eq!(e.json()["text"], "via NATS");

    // A like: acknowledged with the new total.
    let liked = ask(
        live_proto::subjects::ingest_like(&video),
        v1::LikeRequest {
            user: "nats_user".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert_eq!((liked.status, liked.total), (202, 1));
    assert_eq!(v.expect_named("likes", T).await.json()["total"], 1);

    // Garbage, a bad user, a bad text: 400, nothing stored or forwarded.
    let garbage = ask(
        live_proto::subjects::ingest_comment(&video),
        vec![0xff, 0xff, 0xff, 0x01],
    )
    .await;
    assert_eq!(garbage.status, 400, "{garbage:?}");
    let bad_user = ask(
        live_proto::subjects::ingest_like(&video),
        v1::LikeRequest {
            user: "no spaces".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert_eq!(bad_user.status, 400);
    let bad_text = ask(
        live_proto::subjects::ingest_comment(&video),
        v1::CommentRequest {
            user: "u".into(),
            text: "".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert_eq!(bad_text.status, 400);
    // A subject whose video token is not a valid id never reaches a stored subject.
    let bad_video = ask(
        "ingest.v1.x%y.like".into(),
        v1::LikeRequest {
            user: "u".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert_eq!(bad_video.status, 400);

    let quiet = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let e = v.next().await.unwrap();
            if e.event == "comment" || e.event == "likes" {
                return e;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a refused message was forwarded: {quiet:?}");

    let metrics = e2e::metrics(&publisher.url).await;
    assert!(
        metrics.contains("publisher_ingest_undecodable_total"),
        "undecodable messages are counted"
    );

    // Garbage on a live subject is counted and dropped by the frontend, never fatal.
    client
        .publish("live.v1.local.ingested.comment", vec![1, 2, 3].into())
        .await
        .unwrap();
    client
        .publish("live.v1.local.ingested.likes", vec![0xff; 9].into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let after = comment(&publisher, "ingested", "u2", "still alive").await;
    assert_eq!(v.expect_named("comment", T).await.id, Some(after));
    let metrics = e2e::metrics(&fe.url).await;
    assert!(metrics.contains("frontend_undecodable_total"));
}
