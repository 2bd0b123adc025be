//! Retried writes count once: a client retrying a POST with the same `Idempotency-Key`
//! gets the original answer and the comment or like is stored once.

use std::time::Duration;

use e2e::{frontend, like, post_json, publisher, viewer};
use live_proto::Partitions;
use testkit::NatsServer;

#[tokio::test]
async fn idempotency_key_stores_a_retried_comment_once() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let url = format!("{}/v1/videos/idem/comments", publisher.url);
    let send = || async {
        let r = reqwest::Client::new()
            .post(&url)
            .header("Idempotency-Key", "req-42")
            .json(&serde_json::json!({"user": "frank", "text": "once"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<serde_json::Value>().await.unwrap()["id"].clone()
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(first, second, "the retry gets the original id");
    let (status, body) =
        post_json(&url, serde_json::json!({"user": "frank", "text": "other"})).await;
    assert_eq!(status, 202);
    assert_ne!(body["id"], first);
}

#[tokio::test]
async fn idempotency_key_counts_a_retried_like_once() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = viewer(&fe, "idem_likes", None).await;
    let url = format!("{}/v1/videos/idem_likes/likes", publisher.url);
    let send = |key: &'static str| {
        let url = url.clone();
        async move {
            let r = reqwest::Client::new()
                .post(&url)
                .header("Idempotency-Key", key)
                .json(&serde_json::json!({"user": "gina"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<serde_json::Value>().await.unwrap()["total"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(send("tap-1").await, 1);
    assert_eq!(send("tap-1").await, 1, "the retry is not counted");
    assert_eq!(send("tap-1").await, 1);
    assert_eq!(send("tap-2").await, 2, "another key is another like");
    assert_eq!(like(&publisher, "idem_likes", "hank").await, 3);

    let mut sum = 0;
    let mut total = 0;
    while total < 3 {
        let e = v
            .expect_named("likes", Duration::from_secs(10))
            .await
            .json();
        sum += e["count"].as_u64().unwrap();
        total = e["total"].as_u64().unwrap();
    }
    assert_eq!((sum, total), (3, 3), "viewers saw three likes, not five");

    let (status, _) = post_json(&url, serde_json::json!({"user": "gina"})).await;
    assert_eq!(status, 202);
    let r = reqwest::Client::new()
        .post(&url)
        .header("Idempotency-Key", "no spaces allowed")
        .json(&serde_json::json!({"user": "gina"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a malformed key is refused");
}

#[tokio::test]
async fn a_like_retried_over_nats_with_the_same_key_counts_once() {
    use prost::Message as _;
    let nats = NatsServer::start();
    let _publisher = publisher(&nats, |_| {}).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let video = live_proto::VideoId::parse("idem_nats").unwrap();
    let ask = |key: &str| {
        let request = live_proto::v1::LikeRequest {
            user: "ivy".into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        let client = client.clone();
        let subject = live_proto::subjects::ingest_like(&video);
        async move {
            let reply = client
                .request(subject, request.encode_to_vec().into())
                .await
                .unwrap();
            live_proto::v1::IngestReply::decode(reply.payload).unwrap()
        }
    };
    let first = ask("k1").await;
    assert_eq!((first.status, first.total), (202, 1));
    let retry = ask("k1").await;
    assert_eq!((retry.status, retry.total), (202, 1), "counted once");
    let other = ask("k2").await;
    assert_eq!(other.total, 2);
    let bad = ask("not a key").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_batch_of_likes_counts_once_on_retry_and_reaches_viewers_in_their_total() {
    use prost::Message as _;
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.partitions = Partitions::new(3).unwrap()).await;
    let fe = frontend(&nats, |c| c.partitions = Partitions::new(3).unwrap()).await;
    let mut v = viewer(&fe, "batched", None).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let video = live_proto::VideoId::parse("batched").unwrap();
    let ask = |count: u64, key: &str| {
        let request = live_proto::v1::LikeBatch {
            user: "edge-1".into(),
            count,
            idempotency_key: key.into(),
            ..Default::default()
        };
        let client = client.clone();
        let subject = live_proto::subjects::ingest_like_batch(&video);
        async move {
            let reply = client
                .request(subject, request.encode_to_vec().into())
                .await
                .unwrap();
            live_proto::v1::IngestReply::decode(reply.payload).unwrap()
        }
    };
    let first = ask(500, "b1").await;
    assert_eq!((first.status, first.total), (202, 500));
    let retry = ask(500, "b1").await;
    assert_eq!(
        (retry.status, retry.total),
        (202, 500),
        "a retried batch counts once"
    );
    let second = ask(250, "b2").await;
    assert_eq!(second.total, 750);
    // Bad batches change nothing.
    for (count, key) in [(0, "b3"), (1_000_001, "b3"), (5, ""), (5, "bad key")] {
        assert_eq!(ask(count, key).await.status, 400, "{count} {key:?}");
    }
    // The viewer's totals follow; the last one is the durable total.
    let mut total = 0;
    while total < 750 {
        let e = v.expect_named("likes", Duration::from_secs(10)).await;
        total = e.json()["total"].as_u64().unwrap();
    }
    assert_eq!(total, 750);
    assert_eq!(like(&publisher, "batched", "ann").await, 751);
}
