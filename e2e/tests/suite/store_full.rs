//! A full store (nats-server's `max_file_store` reached): writes are refused at once with a
//! 503 naming the cause (HTTP and NATS ingest), `/healthz` says 503 with the cause while it
//! lasts, and once there is room again (a purge) writes succeed and `/healthz` says 200 by
//! themselves. An idle publisher notices a store that filled while nobody wrote.

use std::time::{Duration, Instant};

use e2e::publisher;
use live_proto::{VideoId, subjects, v1};
use prost::Message as _;
use testkit::NatsServer;

/// Within this a write refused as full is answered.
const FAST: Duration = Duration::from_secs(1);

/// Writes 200 KB messages to a stream of its own until the server refuses one as full
/// (every stream of the server shares `max_file_store`); returns the refusal.
async fn fill(js: &async_nats::jetstream::Context) -> String {
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "FILLER".into(),
        subjects: vec!["filler.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("filler stream");
    let big = bytes::Bytes::from(vec![b'x'; 200_000]);
    for _ in 0..50 {
        match js.publish("filler.x", big.clone()).await.unwrap().await {
            Ok(_) => {}
            Err(e) => return format!("{e}: {:?}", std::error::Error::source(&e)),
        }
    }
    panic!("the store never filled");
}

async fn post(url: &str, body: serde_json::Value) -> (u16, serde_json::Value, Duration) {
    let sent = Instant::now();
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("answered");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or_default();
    (status, body, sent.elapsed())
}

async fn healthz(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("healthz");
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

fn assert_full(what: &str, (status, body, took): &(u16, serde_json::Value, Duration)) {
    eprintln!("{what}: {status} in {took:?}: {body}");
    assert_eq!(*status, 503, "{what}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("the store is full: "), "{what}: {body}");
    assert!(error.contains("insufficient resources"), "{what}: {body}");
    assert!(*took < FAST, "{what} took {took:?}");
}

#[tokio::test]
async fn a_full_store_is_refused_at_once_and_reported_until_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tiny.conf");
    std::fs::write(&conf, "jetstream { max_file_store: 1MB }\n").unwrap();
    let nats = NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let url = &publisher.url;

    // Room: writes are stored, healthy.
    let (status, _, _) = post(
        &format!("{url}/v1/videos/full/comments"),
        serde_json::json!({"user": "u1", "text": "before"}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(healthz(url).await.0, 200);

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let refusal = fill(&js).await;
    eprintln!("nats-server refused the filler with: {refusal}");

    // HTTP: a comment, a like and a read receipt, each refused within a second.
    assert_full(
        "comment",
        &post(
            &format!("{url}/v1/videos/full/comments"),
            serde_json::json!({"user": "u1", "text": "no room"}),
        )
        .await,
    );
    let (status, body) = healthz(url).await;
    eprintln!("healthz while full: {status} {body}");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("the store is full: "),
        "{body}"
    );
    assert_full(
        "like",
        &post(
            &format!("{url}/v1/videos/full/likes"),
            serde_json::json!({"user": "u1"}),
        )
        .await,
    );
    // A like with an Idempotency-Key (its key is stored first), and the Retry-After.
    let sent = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/videos/full/likes"))
        .header("Idempotency-Key", "k1")
        .json(&serde_json::json!({"user": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["retry-after"], "5");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or_default();
    assert_full("like with a key", &(status, body, sent.elapsed()));
    assert_full(
        "read receipt",
        &post(
            &format!("{url}/v1/conversations/c1/read"),
            serde_json::json!({"user": "u1", "message": "m1"}),
        )
        .await,
    );

    // NATS ingest: the same answer in the IngestReply.
    let video = VideoId::parse("full").unwrap();
    let ask = |subject: String, payload: Vec<u8>| {
        let client = client.clone();
        async move {
            let sent = Instant::now();
            let reply = client
                .request(subject, payload.into())
                .await
                .expect("a reply");
            let reply = v1::IngestReply::decode(reply.payload).expect("IngestReply");
            (
                reply.status as u16,
                serde_json::json!({"error": reply.error}),
                sent.elapsed(),
            )
        }
    };
    let comment = v1::CommentRequest {
        user: "u2".into(),
        text: "via NATS".into(),
        ..Default::default()
    };
    assert_full(
        "NATS comment",
        &ask(subjects::ingest_comment(&video), comment.encode_to_vec()).await,
    );
    let like = v1::LikeRequest {
        user: "u2".into(),
        ..Default::default()
    };
    assert_full(
        "NATS like",
        &ask(subjects::ingest_like(&video), like.encode_to_vec()).await,
    );

    let metrics = e2e::metrics(url).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("publisher_store_full_total{write=\"comment\"}")),
        "{metrics}"
    );

    // Room again: /healthz recovers by itself (the probe), then writes are stored.
    let purged = Instant::now();
    js.get_stream("FILLER")
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    loop {
        let (status, body) = healthz(url).await;
        if status == 200 {
            break;
        }
        assert!(
            purged.elapsed() < Duration::from_secs(5),
            "still unhealthy after the purge: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("healthy {:?} after the purge", purged.elapsed());
    let (status, body, _) = post(
        &format!("{url}/v1/videos/full/comments"),
        serde_json::json!({"user": "u1", "text": "after"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body, _) = post(
        &format!("{url}/v1/videos/full/likes"),
        serde_json::json!({"user": "u1"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    // Filled again while nobody writes: an idle publisher notices (its idle probe).
    fill(&js).await;
    let filled = Instant::now();
    loop {
        let (status, body) = healthz(url).await;
        if status == 503 {
            eprintln!(
                "idle: unhealthy {:?} after the store filled: {body}",
                filled.elapsed()
            );
            break;
        }
        assert!(
            filled.elapsed() < Duration::from_secs(10),
            "an idle publisher did not notice the full store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publisher.stop().await;
}
