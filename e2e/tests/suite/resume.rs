//! `Last-Event-ID`: a viewer coming back (to any frontend) gets every comment after the
//! id it last saw, then live, with no gap and no duplicate; a resume point older than
//! the retained history gets an explicit `reset`.

use std::time::Duration;

use e2e::{comment, frontend, publisher, viewer};
use testkit::NatsServer;

const T: Duration = Duration::from_secs(10);

async fn comment_ids(v: &mut e2e::SseClient, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(v.expect_named("comment", T).await.id.expect("comment id"));
    }
    ids
}

/// Reads until no event arrives for a moment; returns the comment ids seen.
async fn drain_comments(v: &mut e2e::SseClient) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(400), v.next()).await {
        if e.event == "comment" {
            ids.push(e.id.expect("id"));
        }
    }
    ids
}

async fn check_resume(replay_buffer: usize) {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let fe1 = frontend(&nats, |c| c.replay_buffer = replay_buffer).await;
    let fe2 = frontend(&nats, |c| c.replay_buffer = replay_buffer).await;
    // fe2 has a room for the video already (its ring covers little or much).
    let _watcher = viewer(&fe2, "resume", None).await;

    let mut v = viewer(&fe1, "resume", None).await;
    let mut posted = Vec::new();
    for i in 0..10 {
        posted.push(comment(&publisher, "resume", "carol", &format!("m{i}")).await);
    }
    let seen = comment_ids(&mut v, 4).await;
    assert_eq!(seen, posted[..4]);
    drop(v); // the connection breaks after the 4th comment

    for i in 10..15 {
        posted.push(comment(&publisher, "resume", "carol", &format!("m{i}")).await);
    }
    // Comes back on the other node with the last id it saw, by header...
    let mut back = viewer(&fe2, "resume", Some(&seen[3])).await;
    let replayed = comment_ids(&mut back, 11).await;
    assert_eq!(
        replayed,
        posted[4..],
        "every comment after the id, in order"
    );
    posted.push(comment(&publisher, "resume", "carol", "live").await);
    let rest = drain_comments(&mut back).await;
    assert_eq!(rest, posted[15..], "then live, no duplicate");

    // ...and by query parameter.
    let url = format!(
        "{}/v1/videos/resume/events?last_event_id={}",
        fe1.url, posted[13]
    );
    let mut q = e2e::SseClient::connect(&url, None).await.unwrap();
    assert_eq!(q.expect(T).await.event, "snapshot");
    assert_eq!(drain_comments(&mut q).await, posted[14..]);
}

#[tokio::test]
async fn resume_from_the_rooms_memory() {
    check_resume(256).await;
}

#[tokio::test]
async fn resume_from_jetstream_when_memory_does_not_reach_back() {
    check_resume(2).await;
}

#[tokio::test]
async fn resume_before_the_retained_history_gets_a_reset() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| {
        c.no_rate_limit = true;
        c.comments_per_video = 3;
    })
    .await;
    let fe = frontend(&nats, |c| c.replay_buffer = 2).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(comment(&publisher, "short", "dave", &format!("x{i}")).await);
    }
    let mut v = viewer(&fe, "short", Some(&ids[0])).await;
    let e = v.expect(T).await;
    assert_eq!(e.event, "reset", "history before the cursor is gone");
    assert!(e.json()["reason"].as_str().unwrap().contains("retained"));

    // A cursor inside the retained history still replays exactly.
    let mut ok = viewer(&fe, "short", Some(&ids[5])).await;
    assert_eq!(comment_ids(&mut ok, 2).await, ids[6..]);
}

#[tokio::test]
async fn an_unknown_resume_point_gets_a_reset_not_silence() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |_| {}).await;
    let id = comment(&publisher, "future", "erin", "one").await;
    let bogus = (id.parse::<u64>().unwrap() + 1000).to_string();
    let mut v = viewer(&fe, "future", Some(&bogus)).await;
    assert_eq!(v.expect(T).await.event, "reset");
    let next = comment(&publisher, "future", "erin", "two").await;
    assert_eq!(v.expect_named("comment", T).await.id, Some(next));
}
