//! `scripts/run.sh`, as a user runs it: started (`--demo`, on this test build's binaries),
//! then Ctrl-C (SIGINT to its process group). Everything stops within 5 s — the demo
//! audience, the frontend and the publisher each before nats-server — and no process or
//! listening port stays behind. (It once left nats-server stopping first, a publisher
//! retrying for ~17 s, and the demo audience's loop restarting its load generator.)

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The ports run.sh uses (NATS, its monitoring, the publisher, the frontend).
const PORTS: [u16; 4] = [4222, 8222, 8081, 8080];

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Processes whose command line starts with `prefix` (a binary of this build) and
/// contains `args` (run.sh's own: other tests run the same binaries beside this one).
fn processes_of(prefix: &str, args: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.starts_with(prefix) && cmd.contains(args) {
                found.push(cmd);
            }
        }
    }
    found
}

#[tokio::test]
async fn ctrl_c_stops_everything_in_order_within_5_s() {
    // The demo audience (300 viewers, 300 likes/s) loads both cores: never beside a
    // cluster test, whose leader elections it would slow past the write deadline.
    let _slot = testkit::cluster_slot::ClusterSlot::take();
    let busy: Vec<u16> = PORTS.into_iter().filter(|p| listening(*p)).collect();
    assert!(
        busy.is_empty(),
        "ports {busy:?} are in use (another scripts/run.sh?): this test runs run.sh on them"
    );
    let bin_dir = testkit::process::bin("frontend")
        .parent()
        .unwrap()
        .to_owned();
    for name in ["publisher", "loadgen"] {
        testkit::process::bin(name);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut run = Command::new(root.join("scripts/run.sh"))
        .arg("--demo")
        .current_dir(&root)
        .env("LIVE_BIN_DIR", &bin_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        // Its own process group, as a terminal's foreground job: Ctrl-C signals it.
        .process_group(0)
        .spawn()
        .unwrap();
    let up = Instant::now();
    while !listening(8080) {
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "run.sh did not start"
        );
        assert!(run.try_wait().unwrap().is_none(), "run.sh exited at start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The demo audience connects and posts for a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // What run.sh starts, told from what other tests start by its fixed arguments.
    let ours = |name: &str| {
        let args = match name {
            "frontend" => "--listen 127.0.0.1:8080",
            "publisher" => "--listen 127.0.0.1:8081",
            _ => "--video-ids demo",
        };
        processes_of(&bin_dir.join(name).to_string_lossy(), args)
    };
    assert!(!ours("loadgen").is_empty(), "the demo audience runs");

    let pid = run.id() as i32;
    let interrupted = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = loop {
        if run.try_wait().unwrap().is_some() {
            break interrupted.elapsed();
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(15),
            "run.sh still running 15 s after Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = std::fs::read_to_string(log.path()).unwrap();
    println!("run.sh stopped {exited:?} after Ctrl-C");
    assert!(
        exited < Duration::from_secs(5),
        "took {exited:?}:\n{output}"
    );
    let order: Vec<&str> = output
        .lines()
        .filter_map(|l| l.strip_prefix("run.sh: stopped "))
        .collect();
    assert_eq!(
        order,
        ["demo audience", "frontend", "publisher", "nats-server"],
        "{output}"
    );
    for name in ["frontend", "publisher", "loadgen"] {
        assert_eq!(ours(name), Vec::<String>::new(), "{name} left behind");
    }
    for port in PORTS {
        assert!(!listening(port), "port {port} still listening");
    }
}
