//! Connections that cannot be held hostage, against the real services: thousands of
//! idle and trickling sockets on the frontend (viewer fast path) and the publisher,
//! during which posts and viewers keep working and every flooding socket is cut at the
//! head timeout (a whole head, not each read); the connection cap answers 503 with a
//! JSON error and `Retry-After`; and the default head timeout is 10 s on both services
//! and on a keep-alive connection.

use std::time::Duration;

use e2e::{frontend, percentile, publisher, viewer};
use testkit::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Waits until the server closes `tcp` (EOF or reset); how long that took from `since`
/// (times are from the connect completing, so a SYN retry under the burst is not counted).
async fn closed_after(mut tcp: TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 512];
    let cut = tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    cut.ok().map(|()| since.elapsed())
}

/// A socket that sends nothing.
async fn idle(addr: String, limit: Duration) -> Option<Duration> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let start = Instant::now();
    closed_after(tcp, start, limit).await
}

/// A socket that sends a request head one byte every `every`, never finishing it.
async fn trickle(addr: String, every: Duration, limit: Duration) -> Option<Duration> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let start = Instant::now();
    let (mut reader, mut writer) = tcp.into_split();
    let head = b"GET /v1/videos/flood/events HTTP/1.1\r\nHost: x\r\n"
        .iter()
        .chain(b"X-Slow: y\r\n".iter().cycle());
    let writing = async {
        for b in head {
            tokio::time::sleep(every).await;
            if writer.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let mut buf = [0u8; 512];
    let reading = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, async {
        tokio::select! {
            _ = writing => unreachable!(),
            cut = reading => cut,
        }
    })
    .await
    .ok()
}

fn summary(what: &str, cuts: &[Option<Duration>]) -> Vec<Duration> {
    let mut held: Vec<Duration> = cuts.iter().flatten().copied().collect();
    held.sort();
    eprintln!(
        "{what}: {} sockets, {} cut; cut after p50 {:?}, max {:?}",
        cuts.len(),
        held.len(),
        percentile(&held, 50.0),
        held.last()
    );
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_and_trickling_sockets_holds_nothing_hostage() {
    const HEAD: Duration = Duration::from_secs(2);
    const IDLE: usize = 1500;
    const TRICKLING: usize = 250;
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| {
        c.head_timeout = HEAD;
        c.no_rate_limit = true;
    })
    .await;
    let fe = frontend(&nats, |c| c.head_timeout = HEAD).await;
    let limit = HEAD * 4;

    let started = Instant::now();
    let mut flood = Vec::new();
    for (service, idle_n) in [(&fe, IDLE), (&publisher, IDLE / 2)] {
        for i in 0..idle_n {
            flood.push(tokio::spawn(idle(addr(&service.url), limit)));
            if i % 100 == 99 {
                // Within the listen backlog.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let mut tricklers = Vec::new();
    for service in [&fe, &publisher] {
        for _ in 0..TRICKLING {
            tricklers.push(tokio::spawn(trickle(
                addr(&service.url),
                Duration::from_millis(400),
                limit,
            )));
        }
    }
    let sockets = flood.len() + tricklers.len();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile: a new viewer, posts, and every comment reaches the viewer.
    let mut v = viewer(&fe, "flood", None).await;
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    while started.elapsed() < HEAD + Duration::from_millis(500) || latencies.len() < 20 {
        let t = Instant::now();
        ids.push(e2e::comment(&publisher, "flood", "legit", "still here").await);
        latencies.push(t.elapsed());
    }
    for id in &ids {
        let e = v.expect_named("comment", Duration::from_secs(10)).await;
        assert_eq!(e.id.as_ref(), Some(id));
    }
    latencies.sort();
    eprintln!(
        "during the flood ({sockets} sockets): {} POSTs, latency p50 {:?}, p99 {:?}, max {:?}; the viewer got every comment",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last()
    );
    assert!(*latencies.last().unwrap() < Duration::from_secs(2));

    let mut idle_cuts = Vec::new();
    for t in flood {
        idle_cuts.push(t.await.unwrap());
    }
    let mut trickle_cuts = Vec::new();
    for t in tricklers {
        trickle_cuts.push(t.await.unwrap());
    }
    let idle_held = summary("idle", &idle_cuts);
    let trickle_held = summary("trickling (a byte every 400 ms)", &trickle_cuts);
    assert_eq!(
        idle_held.len(),
        idle_cuts.len(),
        "an idle socket was never cut"
    );
    assert_eq!(
        trickle_held.len(),
        trickle_cuts.len(),
        "a trickling socket was never cut"
    );
    for cut in idle_held.iter().chain(&trickle_held) {
        assert!(
            *cut >= HEAD - Duration::from_millis(100) && *cut < HEAD * 2,
            "cut after {cut:?}, head timeout {HEAD:?}"
        );
    }
    // And the services are fine afterwards.
    e2e::comment(&publisher, "flood", "legit", "after").await;
    v.expect_named("comment", Duration::from_secs(5)).await;
}

/// Sends `GET /healthz` on a new connection; the status and the raw answer.
async fn get_healthz(url: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr(url)).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer)).await;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn beyond_the_connection_cap_a_503_with_retry_after() {
    const CAP: usize = 40;
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.max_connections = CAP).await;
    let fe = frontend(&nats, |c| c.max_connections = CAP).await;
    for service in [&fe, &publisher] {
        let mut held = Vec::new();
        for _ in 0..CAP {
            held.push(TcpStream::connect(addr(&service.url)).await.unwrap());
        }
        // Let the server accept them all.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, answer) = get_healthz(&service.url).await;
        assert_eq!(status, 503, "{answer}");
        assert!(answer.contains("Retry-After: 1"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            json["error"].as_str().unwrap().contains("connection limit"),
            "{json}"
        );
        // A place freed is a place given out again.
        held.truncate(CAP - 5);
        let back = e2e::eventually_async(Duration::from_secs(5), || async {
            get_healthz(&service.url).await.0 == 200
        })
        .await;
        assert!(back, "{} did not admit connections again", service.url);
    }
}

#[tokio::test]
async fn by_default_a_head_must_arrive_within_10_s_also_on_keep_alive() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |_| {}).await;
    let limit = Duration::from_secs(20);
    let every = Duration::from_millis(900);
    let mut cuts = vec![
        tokio::spawn(trickle(addr(&fe.url), every, limit)),
        tokio::spawn(trickle(addr(&publisher.url), every, limit)),
        tokio::spawn(idle(addr(&fe.url), limit)),
    ];
    // A keep-alive connection after one request (the frontend's hyper path).
    cuts.push(tokio::spawn({
        let addr = addr(&fe.url);
        async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 1024];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            closed_after(tcp, Instant::now(), limit).await
        }
    }));
    for (i, cut) in cuts.into_iter().enumerate() {
        let cut = cut.await.unwrap().expect("never cut");
        eprintln!("socket {i} cut after {cut:?}");
        assert!(
            cut >= Duration::from_millis(9_900) && cut < Duration::from_secs(12),
            "socket {i} cut after {cut:?}"
        );
    }
}
