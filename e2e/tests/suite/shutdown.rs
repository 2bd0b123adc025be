//! Reconnect storms: on SIGTERM a frontend closes its viewers' streams spread over the
//! drain window, each with a jittered `retry:`, so they do not all come back at once.

use std::time::Duration;

use e2e::{frontend_process, publisher};
use testkit::{NatsServer, SseClient};

#[tokio::test]
async fn sigterm_spreads_the_end_of_the_streams_over_the_drain_window() {
    let nats = NatsServer::start();
    let _publisher = publisher(&nats, |_| {}).await;
    let (mut fe_proc, fe) = frontend_process(
        &nats.url(),
        &["--drain", "2s", "--retry-min", "1s", "--retry-max", "2s"],
    )
    .await;

    let mut retries = Vec::new();
    let mut viewers = Vec::new();
    for i in 0..100 {
        let url = format!("{}/v1/videos/v{}/events", fe.url, i % 10);
        let mut v = SseClient::connect(&url, None).await.unwrap();
        let snapshot = v.expect(Duration::from_secs(10)).await;
        retries.push(snapshot.retry.expect("retry: with the snapshot"));
        viewers.push(v);
    }
    let start = tokio::time::Instant::now();
    let ends = viewers.into_iter().map(|mut v| {
        tokio::spawn(async move {
            while v.next_any().await.is_some() {}
            start.elapsed()
        })
    });
    let stopper = tokio::task::spawn_blocking(move || fe_proc.terminate(Duration::from_secs(10)));
    let mut ends: Vec<Duration> = futures::future::join_all(ends)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(stopper.await.unwrap(), "the frontend exited after draining");
    ends.sort();
    let pct = |p: usize| ends[(ends.len() - 1) * p / 100];
    eprintln!(
        "streams ended after SIGTERM: min {:?} p10 {:?} p50 {:?} p90 {:?} max {:?}",
        pct(0),
        pct(10),
        pct(50),
        pct(90),
        pct(100)
    );
    assert!(
        pct(100) < Duration::from_secs(4),
        "all ended within the window"
    );
    assert!(
        pct(90) - pct(10) > Duration::from_millis(1000),
        "ends are spread over the 2 s window, not at once"
    );
    retries.sort();
    eprintln!(
        "retry: from {} to {} ms",
        retries[0],
        retries[retries.len() - 1]
    );
    assert!(retries[0] >= 1000 && retries[retries.len() - 1] <= 2000);
    assert!(
        retries[retries.len() - 1] - retries[0] > 300,
        "retry is jittered"
    );
}
