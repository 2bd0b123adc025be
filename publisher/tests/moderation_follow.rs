//! Two publishers of one region on a real nats-server: a ban set through one is enforced
//! by the other within moments (its subscription to the region's moderation bucket),
//! not only at its next full reload (every 10 s).

use std::time::{Duration, Instant};

use testkit::NatsServer;
use tokio::net::TcpListener;

async fn start(nats: &NatsServer) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = publisher::Config::for_nats(&nats.url());
    tokio::spawn(async move {
        publisher::run(listener, config, async {
            let _ = stopped.await;
        })
        .await
        .expect("publisher runs");
    });
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await
            && r.status().is_success()
        {
            return (url, stop);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("publisher did not become healthy");
}

async fn post(url: &str, body: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_ban_through_one_publisher_holds_on_the_other_at_once() {
    let nats = NatsServer::start();
    let (a, _stop_a) = start(&nats).await;
    let (b, _stop_b) = start(&nats).await;
    // Past b's first full read of the buckets.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let like = format!("{b}/v1/videos/v1/likes");
    assert_eq!(post(&like, serde_json::json!({"user": "bob"})).await, 202);

    let banned_at = Instant::now();
    let ban = serde_json::json!({"user": "bob", "seconds": 60});
    assert_eq!(post(&format!("{a}/v1/videos/v1/bans"), ban).await, 204);
    loop {
        let status = post(&like, serde_json::json!({"user": "bob"})).await;
        if status == 403 {
            break;
        }
        assert_eq!(status, 202);
        assert!(
            banned_at.elapsed() < Duration::from_secs(3),
            "the other publisher did not learn the ban from its subscription"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ban enforced by the other publisher after {:?}",
        banned_at.elapsed()
    );
}
