//! Viewer counts across frontends, summed by the region's publishers: every viewer
//! converges to the number of viewers on all frontends; killing the publisher that
//! owns the video's shard (one of two) does not stop the counts; a frontend killed
//! with -9 leaves the total after its `--viewers-ttl`. (Across regions:
//! `multi_region::a_comment_and_likes_posted_in_east_reach_a_viewer_in_west`.)

use std::time::Duration;

use e2e::{frontend_process, publisher_process};
use futures::StreamExt;
use live_proto::v1;
use prost::Message as _;
use testkit::{NatsServer, SseClient};
use tokio::time::Instant;

const VIDEO: &str = "count";

async fn open(url: &str) -> (SseClient, u64) {
    let mut v = SseClient::connect(&format!("{url}/v1/videos/{VIDEO}/events"), None)
        .await
        .unwrap();
    let snapshot = v.expect(Duration::from_secs(10)).await;
    assert_eq!(snapshot.event, "snapshot");
    let n = snapshot.json()["viewers"].as_u64().unwrap();
    (v, n)
}

/// Reads `viewers` events until the count is `want`; returns how long it took.
async fn converge(v: &mut SseClient, current: &mut u64, want: u64, within: Duration) -> Duration {
    let start = Instant::now();
    while *current != want {
        let e = tokio::time::timeout(within.saturating_sub(start.elapsed()), v.next())
            .await
            .unwrap_or_else(|_| panic!("count stuck at {current}, want {want}"))
            .expect("stream open");
        if e.event == "viewers" {
            *current = e.json()["count"].as_u64().unwrap();
        }
    }
    start.elapsed()
}

/// Every viewer in `all` converges to `want`; the slowest's time.
async fn all_converge(all: &mut [&mut (SseClient, u64)], want: u64, within: Duration) -> Duration {
    let mut slowest = Duration::ZERO;
    for (v, n) in all.iter_mut().map(|x| &mut **x) {
        slowest = slowest.max(converge(v, n, want, within).await);
    }
    slowest
}

#[tokio::test]
async fn publishers_sum_three_frontends_and_survive_losing_one_publisher() {
    let nats = NatsServer::start();
    let (mut p1, _) = publisher_process(&nats.url(), &[]).await;
    let (mut p2, _) = publisher_process(&nats.url(), &[]).await;
    let ttl = ["--viewers-ttl", "3s"];
    let (_f1, fe1) = frontend_process(&nats.url(), &ttl).await;
    let (mut f2, fe2) = frontend_process(&nats.url(), &ttl).await;
    let (_f3, fe3) = frontend_process(&nats.url(), &ttl).await;
    // Who publishes the video's total: watched on NATS, named in each total.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut totals = client
        .subscribe(format!("live.v1.local.{VIDEO}.viewers"))
        .await
        .unwrap();
    client.flush().await.unwrap();

    let mut a = open(&fe1.url).await;
    let mut b = open(&fe1.url).await;
    let mut c = open(&fe2.url).await;
    let mut d = open(&fe2.url).await;
    let mut e = open(&fe3.url).await;
    let joined = Instant::now();
    // The publishers warm up (they listen for one refresh round before they publish),
    // so the first convergence includes that.
    all_converge(
        &mut [&mut a, &mut b, &mut c, &mut d, &mut e],
        5,
        Duration::from_secs(15),
    )
    .await;
    eprintln!(
        "5 viewers on 3 frontends: all saw 5 after {:?}",
        joined.elapsed()
    );

    // A join once the publishers are warm.
    let mut f = open(&fe3.url).await;
    let joined = Instant::now();
    all_converge(
        &mut [&mut a, &mut b, &mut c, &mut d, &mut e, &mut f],
        6,
        Duration::from_secs(5),
    )
    .await;
    eprintln!(
        "a join on frontend 3: every viewer saw 6 within {:?}",
        joined.elapsed()
    );

    // Kill -9 the publisher that publishes this video's total.
    let owner = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), totals.next())
            .await
            .expect("totals are refreshed")
            .unwrap();
        let total = v1::ViewerTotal::decode(msg.payload).unwrap();
        if total.viewers == 6 {
            break total.node;
        }
    };
    let pid = |p: &testkit::Process| format!("publisher-local-{}-", p.pid().unwrap());
    let owner_process = if owner.starts_with(&pid(&p1)) {
        &mut p1
    } else {
        assert!(owner.starts_with(&pid(&p2)), "owner {owner}");
        &mut p2
    };
    owner_process.kill9();
    let killed = Instant::now();
    let mut g = open(&fe1.url).await;
    let took = all_converge(
        &mut [&mut a, &mut b, &mut c, &mut d, &mut e, &mut f, &mut g],
        7,
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "owner publisher killed with -9, then a join: every viewer saw 7 {:?} after the kill",
        killed.elapsed()
    );
    assert!(took < Duration::from_secs(10));

    // Frontend 2 dies without a goodbye: its 2 viewers leave the total after its TTL.
    f2.kill9();
    drop((c, d));
    let killed = Instant::now();
    all_converge(
        &mut [&mut a, &mut b, &mut e, &mut f, &mut g],
        5,
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "frontend killed with -9 (--viewers-ttl 3s): every viewer saw 5 {:?} after the kill",
        killed.elapsed()
    );
}
