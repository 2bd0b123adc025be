//! Viewer counts across frontends: every viewer converges to the true number of viewers
//! on all nodes, and a node killed with -9 drops out within its presence TTL.

use std::time::Duration;

use e2e::frontend_process;
use testkit::{NatsServer, SseClient};
use tokio::time::Instant;

async fn open(url: &str, video: &str) -> (SseClient, u64) {
    let mut v = SseClient::connect(&format!("{url}/v1/videos/{video}/events"), None)
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

#[tokio::test]
async fn counts_converge_across_nodes_and_a_dead_node_drops_out() {
    let nats = NatsServer::start();
    let (_p1, fe1) = frontend_process(&nats.url(), &["--presence-ttl", "3s"]).await;
    let (mut p2, fe2) = frontend_process(&nats.url(), &["--presence-ttl", "3s"]).await;

    let mut on1 = Vec::new();
    for _ in 0..3 {
        on1.push(open(&fe1.url, "count").await);
    }
    let mut on2 = Vec::new();
    for _ in 0..2 {
        on2.push(open(&fe2.url, "count").await);
    }
    let mut slowest = Duration::ZERO;
    for (v, n) in on1.iter_mut().chain(on2.iter_mut()) {
        slowest = slowest.max(converge(v, n, 5, Duration::from_secs(5)).await);
    }
    eprintln!("5 viewers on 2 nodes: every viewer saw 5 within {slowest:?}");

    // Two leave node 1.
    on1.truncate(1);
    let left = Instant::now();
    for (v, n) in on1.iter_mut().chain(on2.iter_mut()) {
        converge(v, n, 3, Duration::from_secs(5)).await;
    }
    eprintln!(
        "after 2 left: every viewer saw 3 within {:?}",
        left.elapsed()
    );

    // Node 2 dies without a goodbye: its 2 viewers drop out after the 3 s TTL.
    p2.kill9();
    drop(on2);
    let killed = Instant::now();
    let (v, n) = &mut on1[0];
    let took = converge(v, n, 1, Duration::from_secs(8)).await;
    eprintln!(
        "node killed with -9: count corrected after {:?}",
        killed.elapsed()
    );
    assert!(took <= Duration::from_secs(5), "within TTL + 1 s tick");
}
