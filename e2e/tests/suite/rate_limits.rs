//! Rate limits per user and per video (`governor`) on the real publisher: a hot video
//! is limited over all its users while other videos go on; `Retry-After` is whole
//! seconds, at least 1 and sane for slow rates; `--no-rate-limit` turns both off; the
//! same answers over NATS ingest.

use e2e::publisher;
use live_proto::{subjects, v1};
use prost::Message as _;
use serde_json::json;
use testkit::NatsServer;

struct Answer {
    status: u16,
    retry_after: Option<u64>,
}

async fn post(client: &reqwest::Client, base: &str, video: &str, user: &str) -> Answer {
    let r = client
        .post(format!("{base}/v1/videos/{video}/comments"))
        .json(&json!({ "user": user, "text": "hi" }))
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().expect("whole seconds")),
    }
}

#[tokio::test]
async fn a_hot_video_is_limited_over_all_its_users() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |c| c.video_comments_per_sec = 2.0).await;
    let client = reqwest::Client::new();
    // Burst 2× the rate: 4 comments by 4 different users pass, the 5th (a 5th user) not.
    for i in 0..4 {
        assert_eq!(
            post(&client, &p.url, "hot", &format!("u{i}")).await.status,
            202
        );
    }
    let refused = post(&client, &p.url, "hot", "u9").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.retry_after, Some(1));
    // Another video, and the same users elsewhere, are not affected.
    assert_eq!(post(&client, &p.url, "calm", "u9").await.status, 202);
    assert_eq!(post(&client, &p.url, "calm", "u0").await.status, 202);

    // The same limit over NATS ingest.
    let nc = async_nats::connect(nats.url()).await.unwrap();
    let request = v1::CommentRequest {
        user: "u8".into(),
        text: "over nats".into(),
        ..Default::default()
    };
    let reply = nc
        .request(
            subjects::ingest_comment(&live_proto::VideoId::parse("hot").unwrap()),
            request.encode_to_vec().into(),
        )
        .await
        .unwrap();
    let reply = v1::IngestReply::decode(reply.payload).unwrap();
    assert_eq!(reply.status, 429, "{reply:?}");
}

#[tokio::test]
async fn retry_after_is_whole_seconds_and_sane_for_slow_rates() {
    let nats = NatsServer::start();
    // One comment every 10 s per user, burst 5× = 0.5 → at least 1.
    let p = publisher(&nats, |c| c.comments_per_sec = 0.1).await;
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &p.url, "v", "slow").await.status, 202);
    let refused = post(&client, &p.url, "v", "slow").await;
    assert_eq!(refused.status, 429);
    let secs = refused.retry_after.expect("Retry-After");
    assert!((9..=10).contains(&secs), "Retry-After: {secs}");
}

#[tokio::test]
async fn no_rate_limit_turns_both_limits_off() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |c| {
        c.no_rate_limit = true;
        c.video_comments_per_sec = 1.0;
        c.comments_per_sec = 1.0;
    })
    .await;
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(post(&client, &p.url, "v", "same").await.status, 202);
    }
}
