//! Nothing lost: a stored comment reaches every viewer who stays or comes back, through
//! a frontend killed with -9, a NATS node killed in a 3-node cluster, a single nats-server
//! restarted, and a cut link between a frontend and NATS.

use std::sync::Arc;
use std::time::Duration;

use e2e::{SseClient, frontend, frontend_process, publisher, viewer};
use testkit::{NatsCluster, NatsServer, Proxy};
use tokio::sync::Mutex;

const T: Duration = Duration::from_secs(20);

/// Posts `n` comments one after another, pacing them by `every`; returns their ids.
/// Every POST must succeed: failures are what these tests look for.
fn post_comments(
    publisher_url: String,
    video: &'static str,
    n: usize,
    every: Duration,
) -> (tokio::task::JoinHandle<Vec<String>>, Arc<Mutex<usize>>) {
    let progress = Arc::new(Mutex::new(0));
    let p = progress.clone();
    let task = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        let mut slowest = Duration::ZERO;
        for i in 0..n {
            let sent = tokio::time::Instant::now();
            let r = client
                .post(format!("{publisher_url}/v1/videos/{video}/comments"))
                .json(&serde_json::json!({"user": "writer", "text": format!("n{i}")}))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("POST answered");
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            assert_eq!(status, 202, "comment {i} failed: {body}");
            ids.push(body["id"].as_str().unwrap().to_owned());
            slowest = slowest.max(sent.elapsed());
            *p.lock().await = i + 1;
            tokio::time::sleep(every).await;
        }
        eprintln!("{video}: {n} comments accepted, slowest POST {slowest:?}");
        ids
    });
    (task, progress)
}

async fn wait_progress(progress: &Mutex<usize>, at_least: usize) {
    while *progress.lock().await < at_least {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads comments until `want` ids were seen or the stream ends; returns them.
async fn read_until(v: &mut SseClient, want: &[String]) -> Vec<String> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(T, async {
        while got.len() < want.len() {
            match v.next().await {
                Some(e) if e.event == "comment" => got.push(e.id.unwrap()),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    got
}

fn assert_exactly(got: &[String], want: &[String]) {
    let dups = got.len() - got.iter().collect::<std::collections::HashSet<_>>().len();
    assert_eq!(dups, 0, "duplicates delivered");
    let missing: Vec<_> = want.iter().filter(|id| !got.contains(id)).collect();
    assert!(missing.is_empty(), "lost comments: {missing:?}");
    assert_eq!(got, want, "in order");
}

#[tokio::test]
async fn a_frontend_killed_with_sigkill_mid_stream_loses_nothing_for_its_viewers() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let (mut fe1_proc, fe1) = frontend_process(&nats.url(), &[]).await;
    let (_fe2_proc, fe2) = frontend_process(&nats.url(), &[]).await;

    let mut v = viewer(&fe1, "crash", None).await;
    let (posting, progress) = post_comments(
        publisher.url.clone(),
        "crash",
        150,
        Duration::from_millis(5),
    );
    wait_progress(&progress, 40).await;
    let mut got = Vec::new();
    while got.len() < 20 {
        let e = v.expect_named("comment", T).await;
        got.push(e.id.unwrap());
    }
    fe1_proc.kill9();
    // The stream breaks; whatever was buffered is still read.
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), v.next()).await {
        if e.event == "comment" {
            got.push(e.id.unwrap());
        }
    }
    let last = got.last().cloned();
    let mut back = viewer(&fe2, "crash", last.as_deref()).await;
    let posted = posting.await.unwrap();
    let rest = read_until(&mut back, &posted[got.len()..]).await;
    got.extend(rest);
    assert_exactly(&got, &posted);
}

#[tokio::test]
async fn losing_the_nats_node_both_services_use_fails_no_request_and_loses_no_comment() {
    let mut cluster = NatsCluster::start(3);
    // Both services know only node 0 and learn the others from it (cluster gossip).
    let node0 = cluster.nodes[0].url();
    let publisher = {
        let mut config = publisher::Config::for_nats(&node0);
        config.replicas = 3;
        config.no_rate_limit = true;
        e2e::start_publisher(config).await
    };
    let fe = e2e::start_frontend(frontend::Config::for_nats(&node0)).await;
    let mut v = viewer(&fe, "failover", None).await;

    let (posting, progress) = post_comments(
        publisher.url.clone(),
        "failover",
        120,
        Duration::from_millis(10),
    );
    wait_progress(&progress, 30).await;
    cluster.nodes[0].kill();
    let posted = posting.await.expect("no POST failed");
    let got = read_until(&mut v, &posted).await;
    assert_exactly(&got, &posted);
}

#[tokio::test]
async fn a_single_nats_server_restarted_under_load_loses_nothing() {
    let mut nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let fe = frontend(&nats, |_| {}).await;
    let mut v = viewer(&fe, "restart", None).await;

    let (posting, progress) = post_comments(
        publisher.url.clone(),
        "restart",
        80,
        Duration::from_millis(10),
    );
    wait_progress(&progress, 25).await;
    nats.restart();
    let posted = posting.await.expect("no POST failed");
    let got = read_until(&mut v, &posted).await;
    assert_exactly(&got, &posted);
}

/// With its NATS server gone, each service's `/healthz` answers 503 with a JSON error
/// saying so (a load balancer takes it out), and 200 again once NATS is back.
#[tokio::test]
async fn healthz_says_503_with_the_cause_while_nats_is_down() {
    let mut nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let fe = frontend(&nats, |_| {}).await;
    let http = reqwest::Client::new();
    let health = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{url}/healthz")).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    nats.kill();
    for url in [&publisher.url, &fe.url] {
        let down = e2e::eventually_async(Duration::from_secs(10), || async {
            health(url.clone()).await.0 == 503
        })
        .await;
        assert!(down, "{url}: /healthz still 200 with NATS gone");
        let (_, body) = health(url.clone()).await;
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("NATS")),
            "{url}: {body}"
        );
    }
    nats.relaunch();
    for url in [&publisher.url, &fe.url] {
        let up = e2e::eventually_async(Duration::from_secs(20), || async {
            health(url.clone()).await.0 == 200
        })
        .await;
        assert!(up, "{url}: /healthz not 200 again after NATS came back");
    }
}

#[tokio::test]
async fn a_cut_link_between_frontend_and_nats_is_backfilled_on_reconnect() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let proxy = Proxy::start(format!("127.0.0.1:{}", nats.port).parse().unwrap()).await;
    let fe = frontend(&nats, |c| {
        c.nats.urls = vec![format!("nats://{}", proxy.addr())]
    })
    .await;
    let mut v = viewer(&fe, "cut", None).await;

    let mut posted = Vec::new();
    for i in 0..5 {
        posted.push(e2e::comment(&publisher, "cut", "w", &format!("before {i}")).await);
    }
    let mut got = read_until(&mut v, &posted).await;
    proxy.cut();
    for i in 0..10 {
        posted.push(e2e::comment(&publisher, "cut", "w", &format!("during {i}")).await);
    }
    let during_cut = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if v.next().await.is_some_and(|e| e.event == "comment") {
                return;
            }
        }
    })
    .await;
    assert!(during_cut.is_err(), "the link was not cut");
    let healed = tokio::time::Instant::now();
    proxy.heal();
    // No further comment is needed to reveal the gap: the reconnect triggers a catch-up.
    got.extend(read_until(&mut v, &posted[got.len()..]).await);
    eprintln!("cut: caught up {:?} after healing", healed.elapsed());
    assert_exactly(&got, &posted);
}
