//! A test system: one real nats-server, a publisher and frontends started in-process on
//! free ports through their `run(listener, config, shutdown)`, stopped on drop.

use std::time::Duration;

use testkit::NatsServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use testkit::{SseClient, SseEvent};

/// A running service; dropping it signals shutdown.
pub struct Service {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Service {
    /// Signals shutdown and waits until `run` returned.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn spawn<F, Fut, E>(run: F) -> Service
where
    F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel();
    let fut = run(listener, stopped);
    let task = tokio::spawn(async move {
        if let Err(e) = fut.await {
            panic!("service failed: {e}");
        }
    });
    let service = Service {
        url,
        stop: Some(stop),
        task: Some(task),
    };
    wait_healthy(&service.url).await;
    service
}

async fn wait_healthy(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not become healthy");
}

/// Starts a publisher against `nats` with `configure` applied to its default config.
pub async fn publisher(
    nats: &NatsServer,
    configure: impl FnOnce(&mut publisher::Config),
) -> Service {
    let mut config = publisher::Config::for_nats(&nats.url());
    configure(&mut config);
    start_publisher(config).await
}

/// Starts a publisher with `config` (its `listen` is ignored: a free port is used).
pub async fn start_publisher(config: publisher::Config) -> Service {
    spawn(|listener, stop| async move {
        publisher::run(listener, config, async {
            let _ = stop.await;
        })
        .await
    })
    .await
}

/// Starts a frontend against `nats` with `configure` applied to its default config.
pub async fn frontend(nats: &NatsServer, configure: impl FnOnce(&mut frontend::Config)) -> Service {
    let mut config = frontend::Config::for_nats(&nats.url());
    configure(&mut config);
    start_frontend(config).await
}

/// Starts a frontend with `config` (its `listen` is ignored: a free port is used).
pub async fn start_frontend(config: frontend::Config) -> Service {
    spawn(|listener, stop| async move {
        frontend::run(listener, config, async {
            let _ = stop.await;
        })
        .await
    })
    .await
}

/// `POST {url}` with a JSON body; returns the status and the JSON answer.
pub async fn post_json(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let json = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Posts a comment; panics unless accepted; returns its id.
pub async fn comment(publisher: &Service, video: &str, user: &str, text: &str) -> String {
    let (status, body) = post_json(
        &format!("{}/v1/videos/{video}/comments", publisher.url),
        serde_json::json!({ "user": user, "text": text }),
    )
    .await;
    assert_eq!(status, 202, "comment refused: {body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Posts a like; panics unless accepted; returns the new total.
pub async fn like(publisher: &Service, video: &str, user: &str) -> u64 {
    let (status, body) = post_json(
        &format!("{}/v1/videos/{video}/likes", publisher.url),
        serde_json::json!({ "user": user }),
    )
    .await;
    assert_eq!(status, 202, "like refused: {body}");
    body["total"].as_u64().expect("total")
}

/// Opens a viewer of `video` on `frontend` and reads its `snapshot`.
pub async fn viewer(frontend: &Service, video: &str, last_event_id: Option<&str>) -> SseClient {
    let mut sse = SseClient::connect(
        &format!("{}/v1/videos/{video}/events", frontend.url),
        last_event_id,
    )
    .await
    .expect("connect viewer");
    assert_eq!(sse.status, 200);
    let first = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(first.event, "snapshot", "first event must be the snapshot");
    sse
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// A service's `/metrics` (Prometheus text) at `base_url`.
pub async fn metrics(base_url: &str) -> String {
    reqwest::get(format!("{base_url}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// A frontend as a real process (so it can be killed with -9), on a free port.
pub async fn frontend_process(nats_urls: &str, extra: &[&str]) -> (testkit::Process, Service) {
    service_process("frontend", nats_urls, extra).await
}

/// A publisher as a real process (so it can be killed with -9), on a free port.
pub async fn publisher_process(nats_urls: &str, extra: &[&str]) -> (testkit::Process, Service) {
    service_process("publisher", nats_urls, extra).await
}

async fn service_process(
    binary: &str,
    nats_urls: &str,
    extra: &[&str],
) -> (testkit::Process, Service) {
    let port = testkit::free_port();
    let mut args: Vec<String> = vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--nats".into(),
        nats_urls.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let process = testkit::Process::start(binary, &args);
    let url = format!("http://127.0.0.1:{port}");
    wait_healthy(&url).await;
    (
        process,
        Service {
            url,
            stop: None,
            task: None,
        },
    )
}

/// Reads `n` comments of `video` from `frontend_url` like a browser would: on a broken
/// stream it reconnects with the last id it saw. Returns the ids and the reconnects.
pub async fn read_comments_resuming(
    frontend_url: &str,
    video: &str,
    n: usize,
    timeout: Duration,
) -> (Vec<String>, usize) {
    let url = format!("{frontend_url}/v1/videos/{video}/events");
    let (comments, reconnects) = read_comments_at(&url, n, timeout).await;
    let ids = comments
        .into_iter()
        .map(|e| e.id.unwrap_or_default())
        .collect();
    (ids, reconnects)
}

/// Reads `n` `comment` events from the stream at `url` (a video's or a `/v1/stream`),
/// reconnecting with the last id it saw whenever the stream breaks, as `EventSource`
/// does. Returns the comments and the reconnects.
pub async fn read_comments_at(url: &str, n: usize, timeout: Duration) -> (Vec<SseEvent>, usize) {
    let mut comments = Vec::new();
    let mut reconnects = 0;
    let _ = tokio::time::timeout(timeout, async {
        let mut last: Option<String> = None;
        loop {
            let Ok(mut sse) = SseClient::connect(url, last.as_deref()).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            while let Some(e) = sse.next().await {
                if e.event == "comment" {
                    last = e.id.clone();
                    comments.push(e);
                    if comments.len() >= n {
                        return;
                    }
                }
            }
            reconnects += 1;
        }
    })
    .await;
    (comments, reconnects)
}

/// Resident memory of a process in KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Polls the async `f` until it returns true or `timeout` passes.
pub async fn eventually_async<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Waits until `{url}/healthz` answers 200 (e.g. after `Process::restart`); panics after 5 s.
pub async fn wait_until_healthy(url: &str) {
    wait_healthy(url).await
}

/// A minimal WebDriver client (chromedriver + headless Chromium) for the browser test.
pub mod idp;
pub mod webdriver;

/// Starts a publisher on the NATS servers `urls` (comma separated) with `configure`
/// applied to its default config; e.g. a region's publisher in a supercluster.
pub async fn publisher_at(urls: &str, configure: impl FnOnce(&mut publisher::Config)) -> Service {
    let mut config = publisher::Config::for_nats(urls);
    configure(&mut config);
    start_publisher(config).await
}

/// Starts a frontend on the NATS servers `urls` (comma separated) with `configure`
/// applied to its default config.
pub async fn frontend_at(urls: &str, configure: impl FnOnce(&mut frontend::Config)) -> Service {
    let mut config = frontend::Config::for_nats(urls);
    configure(&mut config);
    start_frontend(config).await
}

/// Percentile `p` (0–100) of `sorted` (ascending), nearest rank; `None` if empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Waits until the server has handled everything `client` sent before (its
/// subscriptions above all): a request it answers itself, after them on the same
/// connection. `Client::flush` only empties the socket's buffer, so a message published
/// by another connection right after it can still miss a new subscription.
pub async fn server_has_subscriptions(client: &async_nats::Client) {
    client
        .request("$JS.API.INFO", bytes::Bytes::new())
        .await
        .expect("a round trip through the server (JetStream on)");
}
