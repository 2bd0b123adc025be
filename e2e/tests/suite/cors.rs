//! Cross-origin embedding (`--cors-origin`): a listed origin is echoed with credentials
//! and `Vary: Origin` on the viewer stream's fast path, on the stream through axum, on
//! errors, on the page and on preflights; an unlisted origin gets no CORS headers; the
//! publisher takes a list the same way.

use std::time::Duration;

use e2e::{frontend, publisher};
use live_common::jwt::{Claims, Key};
use reqwest::header::HeaderMap;
use testkit::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: &str = "https://www.example.com";
const B: &str = "http://localhost:3000";
const EVIL: &str = "https://evil.example.net";

fn origins() -> Vec<String> {
    vec![A.into(), B.into()]
}

fn acao(h: &HeaderMap) -> Option<&str> {
    h.get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
}

fn assert_allowed(h: &HeaderMap, origin: &str, what: &str) {
    assert_eq!(acao(h), Some(origin), "{what}: {h:?}");
    assert_eq!(
        h.get("access-control-allow-credentials")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..]),
        "{what}"
    );
    let mut vary = h
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase());
    assert!(
        vary.any(|v| v.contains("origin")),
        "{what}: no Vary: Origin"
    );
}

fn assert_no_cors(h: &HeaderMap, what: &str) {
    assert!(
        h.keys().all(|k| !k.as_str().starts_with("access-control-")),
        "{what}: {h:?}"
    );
}

/// The head of a stream request on a fresh connection (the fast path); the body is
/// not read past the head.
async fn stream_head(url: &str, origin: Option<&str>) -> (u16, HeaderMap) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(o) = origin {
        r = r.header("Origin", o);
    }
    let response = r.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

#[tokio::test]
async fn frontend_answers_listed_origins_only() {
    let nats = NatsServer::start();
    let fe = frontend(&nats, |c| c.cors_origin = origins()).await;
    let url = format!("{}/v1/videos/embed/events", fe.url);

    // The fast path.
    for origin in [A, B] {
        let (status, h) = stream_head(&url, Some(origin)).await;
        assert_eq!(status, 200);
        assert_allowed(&h, origin, "stream, fast path");
        assert_eq!(h["content-type"], "text/event-stream");
    }
    let (status, h) = stream_head(&url, Some(EVIL)).await;
    assert_eq!(status, 200, "CORS does not refuse; the browser does");
    assert_no_cors(&h, "stream from an unlisted origin");
    let (_, h) = stream_head(&url, None).await;
    assert_no_cors(&h, "stream without Origin");

    // An error on the fast path carries the headers too, so the page can read it.
    let (status, h) = stream_head(&format!("{}/v1/videos/bad.id/events", fe.url), Some(A)).await;
    assert_eq!(status, 400);
    assert_allowed(&h, A, "400 on the fast path");

    // Preflight (e.g. EventSource polyfills sending Last-Event-ID as a header).
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "last-event-id")
            .send()
    };
    let r = preflight(A).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_allowed(r.headers(), A, "preflight");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("last-event-id"), "{allowed}");
    assert_no_cors(
        preflight(EVIL).await.unwrap().headers(),
        "preflight, unlisted",
    );
    // The preflight and the stream it precedes agree on an origin in another case.
    const UPPER: &str = "HTTPS://WWW.Example.com";
    assert_allowed(
        preflight(UPPER).await.unwrap().headers(),
        UPPER,
        "preflight, case",
    );
    let (_, h) = stream_head(&url, Some(UPPER)).await;
    assert_allowed(&h, UPPER, "stream, case");

    // Routes served by axum: the page, and /healthz.
    for path in ["/?video=embed", "/healthz"] {
        let r = client
            .get(format!("{}{path}", fe.url))
            .header("Origin", B)
            .send()
            .await
            .unwrap();
        assert_allowed(r.headers(), B, path);
    }

    // The stream through axum: the second request of a keep-alive connection.
    let addr = fe.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let requests = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/videos/embed/events HTTP/1.1\r\nHost: x\r\nOrigin: {A}\r\n\r\n"
    );
    tcp.write_all(requests.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let heads = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
            if let Some(at) = text.find("content-type: text/event-stream")
                && text[at..].contains("\r\n\r\n")
            {
                return text;
            }
        }
    })
    .await
    .expect("the stream's head");
    let stream_head = &heads[heads.rfind("http/1.1 200").unwrap()..];
    let stream_head = &stream_head[..stream_head.find("\r\n\r\n").unwrap()];
    assert!(
        stream_head.contains(&format!("access-control-allow-origin: {A}")),
        "{stream_head}"
    );
    assert!(
        stream_head.contains("access-control-allow-credentials: true"),
        "{stream_head}"
    );
}

#[tokio::test]
async fn without_the_flag_there_are_no_cors_headers() {
    let nats = NatsServer::start();
    let secret = Key::new(b"cors-secret-0123456789abcdef0123456789");
    let fe = frontend(&nats, |c| c.jwt_secret = Some(secret.clone())).await;
    let url = format!("{}/v1/videos/embed/events", fe.url);
    let (status, h) = stream_head(&url, Some(A)).await;
    assert_eq!(status, 401);
    assert_no_cors(&h, "no --cors-origin");
    let token = secret.sign(&Claims {
        exp: Some(e2e::idp::now() + 60),
        videos: Some(vec!["embed".into()]),
        ..Default::default()
    });
    let (status, h) = stream_head(&format!("{url}?token={token}"), Some(A)).await;
    assert_eq!(status, 200);
    assert_no_cors(&h, "no --cors-origin");
}

#[tokio::test]
async fn publisher_takes_a_list_of_origins() {
    let nats = NatsServer::start();
    let listed = publisher(&nats, |c| c.cors_origin = origins()).await;
    let any = publisher(&nats, |_| {}).await;
    let client = reqwest::Client::new();
    let post = |base: &str, origin: &'static str| {
        client
            .post(format!("{base}/v1/videos/embed/likes"))
            .header("Origin", origin)
            .json(&serde_json::json!({ "user": "alice" }))
            .send()
    };
    let r = post(&listed.url, B).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_allowed(r.headers(), B, "POST from a listed origin");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.to_ascii_lowercase().contains("retry-after"),
        "{exposed}"
    );
    assert_no_cors(post(&listed.url, EVIL).await.unwrap().headers(), "unlisted");
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/videos/embed/comments", listed.url),
        )
        .header("Origin", A)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_allowed(preflight.headers(), A, "preflight");
    // The default, "*": any origin, without credentials.
    let r = post(&any.url, EVIL).await.unwrap();
    assert_eq!(acao(r.headers()), Some("*"));
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}
