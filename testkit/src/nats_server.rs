//! A real nats-server for one test: free ports, JetStream on a temporary store, killed on
//! drop. The binary is `$NATS_SERVER_BIN`, else the repo's `.tools/nats/bin/nats-server`
//! (installed by `scripts/lib/nats-server.sh`), else `nats-server` on PATH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct NatsServer {
    child: Option<Child>,
    store: TempDir,
    pub port: u16,
    pub monitor_port: u16,
    extra_args: Vec<String>,
    jetstream: bool,
}

/// The nats-server binary the tests use.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return bin.into();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let local = repo.join(".tools/nats/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
}

impl NatsServer {
    /// Starts a single JetStream-enabled server and waits until it is ready.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (e.g. `-c file.conf`).
    pub fn start_with(extra: &[&str]) -> Self {
        let server = Self::launch(extra);
        server.wait_ready();
        server
    }

    /// Starts a server without waiting until it is ready (cluster nodes are ready only
    /// once a quorum runs).
    pub fn launch(extra: &[&str]) -> Self {
        Self::launch_on(crate::free_port(), extra)
    }

    /// Like [`launch`](Self::launch), on a given client port.
    pub fn launch_on(port: u16, extra: &[&str]) -> Self {
        Self::launch_with(port, extra, true)
    }

    /// Like [`launch_on`](Self::launch_on), without JetStream (e.g. a leaf server that
    /// uses its hub's JetStream).
    pub fn launch_without_jetstream(port: u16, extra: &[&str]) -> Self {
        Self::launch_with(port, extra, false)
    }

    fn launch_with(port: u16, extra: &[&str], jetstream: bool) -> Self {
        let store = tempfile::tempdir().expect("temporary JetStream store");
        let mut server = NatsServer {
            child: None,
            store,
            port,
            monitor_port: crate::free_port(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            jetstream,
        };
        server.spawn_process();
        server
    }

    fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    fn spawn_process(&mut self) {
        let log = std::fs::File::create(self.store.path().join("nats-server.log"))
            .expect("nats-server log file");
        let mut command = Command::new(binary());
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()]);
        if self.jetstream {
            command
                .arg("-js")
                .arg("-sd")
                .arg(self.store.path().join("js"));
        }
        let child = command
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start nats-server ({}): {e}; run scripts/lib/nats-server.sh or set NATS_SERVER_BIN",
                    binary().display()
                )
            });
        self.child = Some(child);
    }

    /// Waits until `/healthz` says ok (JetStream included); panics after 30 s.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://127.0.0.1:{}/healthz", self.monitor_port);
        while Instant::now() < deadline {
            if let Ok(body) = http_get(&url)
                && body.contains("ok")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server did not become ready; log: {}", self.log());
    }

    /// The client URL, e.g. `nats://127.0.0.1:4222`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.store.path().join("nats-server.log")).unwrap_or_default()
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the process started and then exited by itself (e.g. its port was taken).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Kills the server (SIGKILL) and keeps its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills and starts the server again on the same ports with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts a killed server again (same ports, same store) without waiting.
    pub fn relaunch(&mut self) {
        self.kill();
        self.spawn_process();
    }

    /// `GET /{path}` of the monitoring endpoint (e.g. `"gatewayz"`, `"varz"`), as JSON;
    /// `Null` if the server does not answer.
    pub fn monitor(&self, path: &str) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/{path}", self.monitor_port);
        http_get(&url)
            .ok()
            .and_then(|body| serde_json::from_str(&body).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// `GET /connz?subs=detail` of the monitoring endpoint, as JSON.
    pub fn connz(&self) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/connz?subs=1", self.monitor_port);
        serde_json::from_str(&http_get(&url).expect("connz")).expect("connz JSON")
    }

    /// The subscriptions of the client connections whose name starts with `name_prefix`.
    pub fn subscriptions_of(&self, name_prefix: &str) -> Vec<String> {
        let connz = self.connz();
        let mut subs = Vec::new();
        for conn in connz["connections"].as_array().into_iter().flatten() {
            let name = conn["name"].as_str().unwrap_or_default();
            if name.starts_with(name_prefix) {
                for s in conn["subscriptions_list"].as_array().into_iter().flatten() {
                    subs.push(s.as_str().unwrap_or_default().to_owned());
                }
            }
        }
        subs
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tiny blocking HTTP GET (the monitoring endpoint only), without an async runtime.
fn http_get(url: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
