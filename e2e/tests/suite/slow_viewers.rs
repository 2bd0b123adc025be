//! Slow and dead viewers: 200 viewers that never read cost bounded memory and do not
//! delay the viewers who keep up.

use std::time::Duration;

use e2e::{frontend_process, publisher, read_comments_resuming, rss_kib};
use futures::StreamExt;
use testkit::NatsServer;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn viewers_that_never_read_cost_bounded_memory_and_slow_no_one() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let (fe_proc, fe) = frontend_process(&nats.url(), &["--write-timeout", "3s"]).await;
    let pid = fe_proc.pid().unwrap();
    let addr = fe.url.trim_start_matches("http://").to_owned();

    // 200 viewers that send their request and never read a byte.
    let mut stuck = Vec::new();
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
        s.write_all(b"GET /v1/videos/flood/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stuck.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid);

    const N: usize = 3000;
    let readers: Vec<_> = (0..5)
        .map(|_| {
            let url = fe.url.clone();
            tokio::spawn(async move {
                read_comments_resuming(&url, "flood", N, Duration::from_secs(120)).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 3000 comments of 480 characters: 1.5 MB for every viewer, 300 MB if each stuck
    // viewer had its own unbounded queue.
    let text = "x".repeat(480);
    let url = format!("{}/v1/videos/flood/comments", publisher.url);
    let client = reqwest::Client::new();
    let posted = futures::stream::iter(0..N)
        .map(|_| {
            let (client, url, text) = (client.clone(), url.clone(), text.clone());
            async move {
                let r = client
                    .post(url)
                    .json(&serde_json::json!({"user": "loud", "text": text}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }
        })
        .buffer_unordered(16)
        .count()
        .await;
    assert_eq!(posted, N);

    for reader in readers {
        let (ids, reconnects) = reader.await.unwrap();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), N, "a reading viewer got every comment");
        assert_eq!(ids.len(), N, "and none twice");
        eprintln!("reader: {N} comments, {reconnects} reconnects");
    }
    let rss_after = rss_kib(pid);
    eprintln!("frontend RSS: {rss_before} KiB → {rss_after} KiB with 200 stuck viewers");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory grew by {} KiB",
        rss_after - rss_before
    );

    // Their sockets stopped draining: after --write-timeout they are closed and counted
    // out, leaving only the readers' connections (closed by now too).
    let reaped = e2e::eventually_async(Duration::from_secs(15), || async {
        let metrics = e2e::metrics(&fe.url).await;
        metrics.lines().any(|l| l == "frontend_viewers 0")
    })
    .await;
    assert!(reaped, "stuck viewers were not reaped");
    drop(stuck);
}
