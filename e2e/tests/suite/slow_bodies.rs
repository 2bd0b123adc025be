//! Slow request bodies cannot hold a connection, against the real services and real
//! sockets: a body trickled a byte a second is cut with a `408` at the head timeout (head
//! and body together) on the publisher and on the frontend (its first request, handed
//! from the fast path to hyper, and a later one on a keep-alive connection); a few
//! hundred such sockets under the connection cap leave posts and a viewer working; and
//! a request refused anyway (no token with auth on, a `Content-Length` over 4 KiB, not
//! JSON) is answered at once, without waiting for its body, and closed.

use std::time::Duration;

use e2e::{Service, frontend, percentile, publisher, viewer};
use live_common::jwt::{Claims, Key};
use testkit::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const HEAD: Duration = Duration::from_secs(2);
/// How late after the head timeout a cut may come.
const SLACK: Duration = Duration::from_secs(2);
const SECRET: &str = "e2e-slow-body-secret-0123456789abcdef0123";

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// A request head for `path` announcing a JSON body of `length` bytes.
fn head(path: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
}

/// What a slow-body socket saw: when the server closed it (from the connect), and the
/// status of the answer it read, if any.
struct Cut {
    after: Option<Duration>,
    status: Option<u16>,
}

/// Sends `before` (whole requests, answered before the slow one is sent), then the head
/// of `path` with `Content-Length: 4000` and its body a byte every `every`, until the
/// server closes the socket or `limit` passes.
async fn slow_body(addr: String, before: &'static str, path: &str, every: Duration) -> Cut {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = tcp.into_split();
    let mut buf = vec![0u8; 4096];
    let mut start = Instant::now();
    if !before.is_empty() {
        writer.write_all(before.as_bytes()).await.unwrap();
        let n = reader.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{before}");
        // The later request's clock starts with its head.
        start = Instant::now();
    }
    writer
        .write_all(head(path, 4000, "").as_bytes())
        .await
        .unwrap();
    let writing = async {
        loop {
            tokio::time::sleep(every).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let reading = async {
        let mut answer = Vec::new();
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return (start.elapsed(), answer),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    let limit = HEAD * 2 + SLACK * 2;
    match tokio::time::timeout(limit, async {
        tokio::select! {
            _ = writing => unreachable!(),
            cut = reading => cut,
        }
    })
    .await
    {
        Ok((after, answer)) => Cut {
            after: Some(after),
            status: status(&answer),
        },
        Err(_) => Cut {
            after: None,
            status: None,
        },
    }
}

fn status(answer: &[u8]) -> Option<u16> {
    std::str::from_utf8(answer)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Sends `request` (a head whose body never comes) and reads until the server closes:
/// the status, the JSON body, and how long the answer and the close took.
async fn answered_at_once(url: &str, request: String) -> (u16, serde_json::Value, Duration) {
    let mut tcp = TcpStream::connect(addr(url)).await.unwrap();
    let start = Instant::now();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let took = start.elapsed();
    assert!(
        read.is_ok(),
        "{url}: not closed within 5 s: {}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer).into_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status(&answer).unwrap_or(0), json, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_at_the_head_timeout() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.head_timeout = HEAD).await;
    let fe = frontend(&nats, |c| c.head_timeout = HEAD).await;
    let every = Duration::from_secs(1);
    let healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases: Vec<(&str, String, &'static str, &str)> = vec![
        (
            "publisher like",
            addr(&publisher.url),
            "",
            "/v1/videos/v/likes",
        ),
        (
            "publisher comment",
            addr(&publisher.url),
            "",
            "/v1/videos/v/comments",
        ),
        (
            "publisher comment after a keep-alive request",
            addr(&publisher.url),
            healthz,
            "/v1/videos/v/comments",
        ),
        (
            "frontend topics (first request)",
            addr(&fe.url),
            "",
            "/v1/stream/c1/topics",
        ),
        (
            "frontend topics after a keep-alive request",
            addr(&fe.url),
            healthz,
            "/v1/stream/c1/topics",
        ),
    ];
    let tasks: Vec<_> = cases
        .into_iter()
        .map(|(what, addr, before, path)| {
            let path = path.to_owned();
            (
                what,
                tokio::spawn(async move { slow_body(addr, before, &path, every).await }),
            )
        })
        .collect();
    for (what, task) in tasks {
        let cut = task.await.unwrap();
        let after = cut.after.unwrap_or_else(|| panic!("{what}: never cut"));
        eprintln!("{what}: cut after {after:?}, answer {:?}", cut.status);
        assert!(
            after >= HEAD - Duration::from_millis(100) && after < HEAD + SLACK,
            "{what}: cut after {after:?}, head timeout {HEAD:?}"
        );
        // The answer may be lost to a reset (the client was still sending); if read, 408.
        assert!(
            matches!(cut.status, None | Some(408)),
            "{what}: {:?}",
            cut.status
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_bodies_under_the_cap_holds_nothing_hostage() {
    const SLOW: usize = 200;
    const CAP: usize = 240;
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| {
        c.head_timeout = HEAD;
        c.max_connections = CAP;
        c.no_rate_limit = true;
    })
    .await;
    let fe = frontend(&nats, |c| {
        c.head_timeout = HEAD;
        c.max_connections = CAP;
    })
    .await;
    let every = Duration::from_secs(1);

    let started = Instant::now();
    let mut slow = Vec::new();
    for (service, path) in [
        (&publisher, "/v1/videos/flood/comments"),
        (&fe, "/v1/stream/c1/topics"),
    ] {
        for _ in 0..SLOW {
            let addr = addr(&service.url);
            slow.push(tokio::spawn(async move {
                slow_body(addr, "", path, every).await
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile, and after: a viewer, comments, and every comment reaches the viewer.
    let mut v = viewer(&fe, "flood", None).await;
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    let mut failed = 0;
    while started.elapsed() < HEAD + SLACK + Duration::from_millis(500) {
        let t = Instant::now();
        let (status, body) = e2e::post_json(
            &format!("{}/v1/videos/flood/comments", publisher.url),
            serde_json::json!({ "user": "legit", "text": "still here" }),
        )
        .await;
        latencies.push(t.elapsed());
        match (status, body["id"].as_str()) {
            (202, Some(id)) => ids.push(id.to_owned()),
            _ => {
                eprintln!("legitimate comment refused: {status} {body}");
                failed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        let e = v.expect_named("comment", Duration::from_secs(10)).await;
        assert_eq!(e.id.as_ref(), Some(id));
    }
    latencies.sort();
    eprintln!(
        "during and after the flood ({} slow bodies): {} comments, {failed} failed, latency p50 {:?}, p99 {:?}, max {:?}; the viewer got every one",
        slow.len(),
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last()
    );
    assert_eq!(failed, 0, "legitimate comments failed");

    let mut cuts = Vec::new();
    for task in slow {
        cuts.push(task.await.unwrap());
    }
    let mut held: Vec<Duration> = cuts.iter().filter_map(|c| c.after).collect();
    held.sort();
    let answered = cuts.iter().filter(|c| c.status == Some(408)).count();
    eprintln!(
        "slow bodies: {} sockets, {} cut ({answered} read their 408); cut after p50 {:?}, max {:?}",
        cuts.len(),
        held.len(),
        percentile(&held, 50.0),
        held.last()
    );
    assert_eq!(held.len(), cuts.len(), "a slow-body socket was never cut");
    assert!(
        *held.last().unwrap() < HEAD + SLACK,
        "cut after {:?}",
        held.last()
    );
    // The places are free again: a topics call and a comment on new connections.
    let (status, _) = e2e::post_json(
        &format!("{}/v1/stream/nobody/topics", fe.url),
        serde_json::json!({ "topic": "video:flood" }),
    )
    .await;
    assert_eq!(status, 404, "an unknown connection, answered (not 503)");
    e2e::comment(&publisher, "flood", "legit", "after").await;
    v.expect_named("comment", Duration::from_secs(5)).await;
}

fn token(sub: &str) -> String {
    Key::new(SECRET.as_bytes()).sign(&Claims {
        sub: Some(sub.into()),
        exp: Some(u64::try_from(live_proto::now_ms() / 1000).unwrap() + 3600),
        ..Default::default()
    })
}

/// Checks one refusal: `status` at once (within 1 s), a JSON error, the socket closed.
async fn refused(what: &str, service: &Service, request: String, want: u16) {
    let (status, json, took) = answered_at_once(&service.url, request).await;
    eprintln!("{what}: {status} {json} after {took:?}");
    assert_eq!(status, want, "{what}: {json}");
    assert!(json["error"].is_string(), "{what}: {json}");
    assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_anyway_does_not_wait_for_its_body() {
    let nats = NatsServer::start();
    let key = || Key::new(SECRET.as_bytes());
    let publisher = publisher(&nats, |c| c.jwt_secret = Some(key())).await;
    let fe = frontend(&nats, |c| c.jwt_secret = Some(key())).await;
    let open_fe = frontend(&nats, |_| {}).await;
    let bearer = format!("Authorization: Bearer {}\r\n", token("alice"));
    let mb = 1 << 20;
    let cases = [
        (
            "publisher, no token",
            &publisher,
            head("/v1/videos/v/comments", 100, ""),
            401,
        ),
        (
            "publisher, forged token",
            &publisher,
            head(
                "/v1/videos/v/likes",
                100,
                "Authorization: Bearer e30.e30.AAAA\r\n",
            ),
            401,
        ),
        (
            "publisher, 1 MB",
            &publisher,
            head("/v1/videos/v/comments", mb, &bearer),
            413,
        ),
        (
            "publisher, not JSON",
            &publisher,
            head("/v1/videos/v/likes", 100, &bearer).replace("application/json", "text/plain"),
            415,
        ),
        (
            "publisher, conversation read, no token",
            &publisher,
            head("/v1/conversations/c/read", 100, ""),
            401,
        ),
        (
            "frontend topics, no token",
            &fe,
            head("/v1/stream/c1/topics", 100, ""),
            401,
        ),
        (
            "frontend topics, 1 MB",
            &open_fe,
            head("/v1/stream/c1/topics", mb, ""),
            413,
        ),
    ];
    for (what, service, request, want) in cases {
        refused(what, service, request, want).await;
    }
}
