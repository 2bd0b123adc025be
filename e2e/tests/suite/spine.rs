//! The core path: publisher → JetStream/NATS → frontends → SSE viewers.

use std::time::Duration;

use e2e::{comment, eventually, frontend, like, publisher, viewer};
use testkit::NatsServer;

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_comment_reaches_viewers_on_both_nodes_with_the_posted_id() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe1 = frontend(&nats, |_| {}).await;
    let fe2 = frontend(&nats, |_| {}).await;
    let mut viewers = vec![
        viewer(&fe1, "launch", None).await,
        viewer(&fe1, "launch", None).await,
        viewer(&fe2, "launch", None).await,
    ];
    let mut other_video = viewer(&fe2, "other", None).await;

    let text = "héllo <b>world</b>\nline two 🎉 \"quoted\"";
    let id = comment(&publisher, "launch", "alice", text).await;

    for v in &mut viewers {
        let e = v.expect_named("comment", T).await;
        assert_eq!(
            e.id.as_deref(),
            Some(id.as_str()),
            "SSE id is the POST's id"
        );
        let data = e.json();
        assert_eq!(data["id"], id.as_str());
        assert_eq!(data["user"], "alice");
        assert_eq!(data["text"], text, "text exactly as posted");
        assert!(data["ts"].as_i64().unwrap() > 0);
    }
    // A viewer of another video gets nothing of it.
    let nothing = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            let e = other_video.next().await.expect("stream open");
            if e.event == "comment" {
                return e;
            }
        }
    })
    .await;
    assert!(
        nothing.is_err(),
        "comment leaked to another video: {nothing:?}"
    );
}

#[tokio::test]
async fn quick_likes_arrive_coalesced_with_the_right_total() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = viewer(&fe, "likes", None).await;

    let posts = (0..20).map(|i| {
        let publisher = &publisher;
        async move { like(publisher, "likes", &format!("user{i}")).await }
    });
    let totals = futures::future::join_all(posts).await;
    assert_eq!(
        totals.iter().max(),
        Some(&20),
        "the last like's total is 20"
    );

    let (mut events, mut sum, mut last_total) = (0, 0, 0);
    while sum < 20 {
        let e = v.expect_named("likes", T).await;
        let data = e.json();
        let count = data["count"].as_u64().unwrap();
        assert!(count > 0, "likes events carry n > 0");
        sum += count;
        last_total = data["total"].as_u64().unwrap();
        events += 1;
    }
    assert_eq!(sum, 20, "counts sum to the likes posted");
    assert_eq!(last_total, 20);
    assert!(
        events < 20,
        "20 quick likes must be coalesced, got {events} events"
    );

    // A new viewer's snapshot carries the durable total.
    let mut late = e2e::SseClient::connect(&format!("{}/v1/videos/likes/events", fe.url), None)
        .await
        .unwrap();
    let snapshot = late.expect(T).await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.json()["likes"], 20);
}

#[tokio::test]
async fn one_subscription_per_video_per_node_gone_after_the_viewers_leave() {
    let nats = NatsServer::start();
    let _publisher = publisher(&nats, |_| {}).await;
    let fe1 = frontend(&nats, |c| c.room_grace = Duration::from_millis(200)).await;
    let fe2 = frontend(&nats, |c| c.room_grace = Duration::from_millis(200)).await;

    let mut viewers = Vec::new();
    for _ in 0..5 {
        viewers.push(viewer(&fe1, "popular", None).await);
    }
    for _ in 0..3 {
        viewers.push(viewer(&fe2, "popular", None).await);
    }
    viewers.push(viewer(&fe2, "niche", None).await);

    let subs = nats.subscriptions_of("frontend-");
    let count = |s: &str| subs.iter().filter(|x| x.as_str() == s).count();
    assert_eq!(count("live.v1.*.popular.*"), 2, "one per node: {subs:?}");
    assert_eq!(count("live.v1.*.niche.*"), 1, "{subs:?}");

    drop(viewers);
    let gone = eventually(Duration::from_secs(5), || {
        !nats
            .subscriptions_of("frontend-")
            .iter()
            .any(|s| s.starts_with("live.v1."))
    })
    .await;
    assert!(
        gone,
        "subscriptions left: {:?}",
        nats.subscriptions_of("frontend-")
    );
}

#[tokio::test]
async fn viewers_see_the_comment_stream_in_order_and_complete() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = viewer(&fe, "order", None).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(comment(&publisher, "order", "bob", &format!("c{i}")).await);
    }
    for (i, id) in ids.iter().enumerate() {
        let e = v.expect_named("comment", T).await;
        assert_eq!(e.id.as_ref(), Some(id));
        assert_eq!(e.json()["text"], format!("c{i}"));
    }
}

#[tokio::test]
async fn shutdown_ends_the_streams_within_the_drain_window() {
    let nats = NatsServer::start();
    let _publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |c| c.drain = Duration::from_millis(500)).await;
    let mut v = viewer(&fe, "bye", None).await;
    let started = tokio::time::Instant::now();
    let stop = tokio::spawn(fe.stop());
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while v.next_any().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "stream did not end on shutdown");
    assert!(started.elapsed() < Duration::from_secs(3));
    stop.await.unwrap();
}
