//! A viewer's stream ends at its token's `exp` (`event: expired`, then the end of the
//! stream), on the fast path and through axum; a reconnect with a fresh token and
//! `Last-Event-ID` gets every comment posted across the expiry exactly once.

use std::time::Duration;

use e2e::idp::now;
use e2e::{SseClient, frontend, publisher};
use live_common::jwt::{Claims, Key};
use testkit::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);
const SECRET: &str = "expiry-secret-0123456789abcdef0123456789";

fn viewer_token(exp: u64) -> String {
    Key::new(SECRET.as_bytes()).sign(&Claims {
        exp: Some(exp),
        videos: Some(vec!["live".into()]),
        ..Default::default()
    })
}

fn events_url(fe: &e2e::Service, token: &str) -> String {
    format!("{}/v1/videos/live/events?token={token}", fe.url)
}

#[tokio::test]
async fn a_stream_ends_at_exp_and_resumes_with_a_fresh_token_losing_nothing() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let fe = frontend(&nats, |c| c.jwt_secret = Some(Key::new(SECRET.as_bytes()))).await;

    // Expires in one to two seconds (exp has whole seconds).
    let exp = now() + 2;
    let mut v = SseClient::connect(&events_url(&fe, &viewer_token(exp)), None)
        .await
        .unwrap();
    assert_eq!(v.status, 200);
    assert_eq!(v.expect(T).await.event, "snapshot");

    // Comments every 100 ms for 3.5 s: before, across and after the expiry.
    const N: usize = 35;
    let poster = {
        let url = format!("{}/v1/videos/live/comments", publisher.url);
        tokio::spawn(async move {
            let mut texts = Vec::new();
            for i in 0..N {
                let text = format!("c{i}");
                let body = serde_json::json!({ "user": "alice", "text": text });
                assert_eq!(e2e::post_json(&url, body).await.0, 202);
                texts.push(text);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            texts
        })
    };

    let mut got: Vec<(String, String)> = Vec::new();
    let expired = loop {
        let e = v.expect(T).await;
        match e.event.as_str() {
            "comment" => got.push((
                e.id.clone().unwrap(),
                e.json()["text"].as_str().unwrap().into(),
            )),
            "expired" => break e,
            _ => {}
        }
    };
    let ended_at = now();
    assert_eq!(expired.json()["reason"], "token expired");
    assert!(
        ended_at >= exp && ended_at <= exp + 1,
        "ended at {ended_at}, exp {exp}"
    );
    assert!(expired.id.is_none());
    // The stream ends right after `expired`.
    let rest = tokio::time::timeout(Duration::from_secs(2), v.next()).await;
    assert!(matches!(rest, Ok(None)), "stream went on: {rest:?}");
    assert!(
        !got.is_empty() && got.len() < N,
        "the expiry fell mid-way: {}",
        got.len()
    );

    // A reconnect with the expired token is refused; a fresh one resumes.
    let stale_url = events_url(&fe, &viewer_token(exp));
    let stale = SseClient::connect(&stale_url, v.last_event_id.as_deref()).await;
    assert_eq!(stale.unwrap().status, 401);
    let mut v2 = SseClient::connect(
        &events_url(&fe, &viewer_token(now() + 600)),
        v.last_event_id.as_deref(),
    )
    .await
    .unwrap();
    assert_eq!(v2.status, 200);
    while got.len() < N {
        let e = v2.expect_named("comment", T).await;
        got.push((
            e.id.clone().unwrap(),
            e.json()["text"].as_str().unwrap().into(),
        ));
    }
    let texts = poster.await.unwrap();
    let got_texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(got_texts, texts, "every comment exactly once, in order");
    let mut ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), N);
    // And nothing more.
    let extra =
        tokio::time::timeout(Duration::from_millis(500), v2.expect_named("comment", T)).await;
    assert!(extra.is_err(), "a duplicate: {extra:?}");
}

#[tokio::test]
async fn a_stream_through_axum_ends_at_exp_too() {
    let nats = NatsServer::start();
    let fe = frontend(&nats, |c| c.jwt_secret = Some(Key::new(SECRET.as_bytes()))).await;
    let addr = fe.url.trim_start_matches("http://");
    // The page first, then the stream on the same keep-alive connection: hyper serves it.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let token = viewer_token(now() + 2);
    let requests = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/videos/live/events?token={token} HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    tcp.write_all(requests.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(T, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before expired");
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if text.contains("event: expired\ndata: {\"reason\":\"token expired\"}") {
                // Chunked: the body ends with the last chunk right after.
                return text.contains("event: snapshot");
            }
        }
    })
    .await;
    assert_eq!(found, Ok(true), "{}", String::from_utf8_lossy(&seen));
}

#[tokio::test]
async fn dev_tokens_are_minted_only_when_switched_on() {
    let nats = NatsServer::start();
    let key = Key::new(SECRET.as_bytes());
    let dev = frontend(&nats, |c| {
        c.jwt_secret = Some(key.clone());
        c.dev_tokens = true;
        c.dev_token_ttl = Duration::from_secs(30);
    })
    .await;
    let off = frontend(&nats, |c| c.jwt_secret = Some(key.clone())).await;
    let get = |base: &str, query: &str| {
        let url = format!("{base}/v1/dev/token?{query}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            let status = r.status().as_u16();
            let cache = r.headers().get("cache-control").cloned();
            (status, cache, r.json::<serde_json::Value>().await.ok())
        }
    };
    let (status, cache, body) = get(&dev.url, "video=live&user=alice").await;
    assert_eq!(status, 200);
    assert_eq!(cache.unwrap(), "no-store");
    let body = body.unwrap();
    let claims = key.verify(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.sub.as_deref(), Some("alice"));
    assert_eq!(claims.videos, Some(vec!["live".to_string()]));
    assert_eq!(claims.role, None, "never a moderator");
    let exp = claims.exp.unwrap();
    assert!(exp > now() + 25 && exp <= now() + 31, "{exp}");
    assert_eq!(body["exp"], exp);
    for bad in [
        "video=live",
        "video=a.b&user=alice",
        "video=live&user=*",
        "video=live&user=a&role=moderator",
        "video=live,&user=alice",
        "video=live&user=alice&member=bob",
        "video=live&user=alice&conversation=a.b",
    ] {
        assert_eq!(get(&dev.url, bad).await.0, 400, "{bad}");
    }
    // For the page's one stream: several videos, conversations, `member` as the sub.
    let (status, _, body) = get(&dev.url, "video=live,live-chat&member=ann&conversation=c1").await;
    assert_eq!(status, 200);
    let claims = key
        .verify(body.unwrap()["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub.as_deref(), Some("ann"));
    assert_eq!(claims.videos, Some(vec!["live".into(), "live-chat".into()]));
    assert_eq!(claims.conversations, Some(vec!["c1".to_string()]));
    assert_eq!(get(&off.url, "video=live&user=alice").await.0, 404);
}
