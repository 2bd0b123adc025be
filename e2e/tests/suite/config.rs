//! Bad flag values on the real binaries: each exits with code 64 and a message naming
//! the flag, before any port is bound and before NATS is contacted. The test holds the
//! `--listen` port itself, so a binary that got as far as binding would fail with
//! "cannot listen" (exit 1) instead; the NATS URL points at a port nobody serves.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

/// Runs `bin` with `args` (plus `--listen` on a port held here and a dead NATS URL);
/// kills it if it is still running after 10 s.
fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    let mut command = Command::new(testkit::process::bin(bin));
    command
        .args(["--nats", "nats://127.0.0.1:9"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !args.contains(&"--listen") {
        command.args(["--listen", &listen]);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return Outcome {
                code: status.code(),
                stderr,
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} still running after 10 s: its bad value was not refused");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_refused(bin: &str, args: &[&str], env: &[(&str, &str)], flag: &str) {
    let out = run(bin, args, env);
    assert_eq!(out.code, Some(64), "{bin} {args:?}: {}", out.stderr);
    assert!(
        out.stderr.contains(flag),
        "{bin} {args:?}: the message does not name {flag}: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("cannot listen"),
        "{bin} {args:?} tried to bind: {}",
        out.stderr
    );
}

const SECRET: &str = "a-secret-of-more-than-thirty-two-bytes-0123456789";

#[test]
fn bad_publisher_flags_exit_64_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let bad_jwks = dir.path().join("jwks.json");
    std::fs::write(
        &bad_jwks,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#,
    )
    .unwrap();
    let bad_jwks = bad_jwks.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--comments-per-sec", "0"], "--comments-per-sec"),
        (
            &["--video-comments-per-sec", "0"],
            "--video-comments-per-sec",
        ),
        (&["--video-likes-per-sec", "-3"], "--video-likes-per-sec"),
        (&["--likes-per-sec", "-1"], "--likes-per-sec"),
        (&["--likes-per-sec", "NaN"], "--likes-per-sec"),
        (&["--likes-per-sec", "inf"], "--likes-per-sec"),
        (&["--comment-retention", "0s"], "--comment-retention"),
        (&["--comment-retention=-5s"], "--comment-retention"),
        (&["--comments-per-video", "-1"], "--comments-per-video"),
        (&["--comments-per-video", "0"], "--comments-per-video"),
        (&["--region", "north", "--regions", "east,west"], "--region"),
        (&["--regions", "east,east", "--region", "east"], "--regions"),
        (&["--region", "a.b"], "--regions"),
        (&["--jwt-secret", "short"], "--jwt-secret"),
        (&["--jwt-jwks", "/nonexistent/jwks.json"], "--jwt-jwks"),
        (&["--jwt-jwks", bad_jwks], "--jwt-jwks"),
        (&["--jwt-issuer", "https://id.example.com/"], "--jwt-issuer"),
        (&["--cors-origin", "https://a.example/"], "--cors-origin"),
        (&["--cors-origin", "*,https://a.example"], "--cors-origin"),
        (&["--replicas", "9"], "--replicas"),
        (&["--partitions", "0"], "--partitions"),
        (&["--like-window", "soon"], "--like-window"),
        (
            &["--conversation-typing-per-sec", "0"],
            "--conversation-typing-per-sec",
        ),
        (&["--listen", "not-an-address"], "--listen"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, flag) in cases {
        assert_refused("publisher", args, &[], flag);
    }
    // The same checks for values from the environment.
    assert_refused("publisher", &[], &[("JWT_SECRET", "short")], "--jwt-secret");
}

#[test]
fn bad_frontend_flags_exit_64_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--heartbeat", "0s"], "--heartbeat"),
        (&["--heartbeat=-5s"], "--heartbeat"),
        (&["--like-interval", "0"], "--like-interval"),
        (&["--retry", "0s"], "--retry"),
        (&["--retry-min", "0s"], "--retry-min"),
        (&["--retry-max", "1s"], "--retry-max"),
        (&["--retry-min", "5s", "--retry-max", "3s"], "--retry-max"),
        (&["--retry-max", "1h"], "--retry-max"),
        (&["--write-timeout", "0ms"], "--write-timeout"),
        (&["--presence-ttl", "10ms"], "--presence-ttl"),
        (&["--viewers-ttl", "1s"], "--viewers-ttl"),
        (&["--viewer-queue", "0"], "--viewer-queue"),
        (&["--max-replay", "0"], "--max-replay"),
        (&["--region", "x", "--regions", "east,west"], "--region"),
        (&["--jwt-secret", "0123456789"], "--jwt-secret"),
        (&["--jwt-audience", "livewire"], "--jwt-audience"),
        (&["--dev-tokens"], "--dev-tokens"),
        (
            &[
                "--dev-tokens",
                "--jwt-secret",
                SECRET,
                "--listen",
                "0.0.0.0:0",
            ],
            "--dev-tokens",
        ),
        (&["--cors-origin", "example.com"], "--cors-origin"),
        (
            &["--publisher-url", "javascript:alert(1)"],
            "--publisher-url",
        ),
        (
            &["--publisher-url", "http://x/';alert(1);'"],
            "--publisher-url",
        ),
        (&["--max-viewers", "lots"], "--max-viewers"),
        (&["--partitions", "0"], "--partitions"),
        (&["--partitions", "-2"], "--partitions"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--head-timeout", "0s"], "--head-timeout"),
    ];
    for (args, flag) in cases {
        assert_refused("frontend", args, &[], flag);
    }
}

#[test]
fn help_and_version_exit_0() {
    for bin in ["publisher", "frontend"] {
        for flag in ["--help", "--version"] {
            let out = Command::new(testkit::process::bin(bin))
                .arg(flag)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{bin} {flag}");
            assert!(!out.stdout.is_empty());
        }
    }
}

#[test]
fn a_taken_port_is_reported_with_exit_1() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    let out = run("frontend", &["--listen", &listen], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot listen on"), "{}", out.stderr);
}

/// `scripts/run.sh` checks its fixed ports before starting anything. The test holds the
/// NATS monitoring port (8222); if another program holds it already, the check must
/// report it all the same.
#[test]
fn run_sh_stops_when_a_port_is_taken() {
    let _held = TcpListener::bind("127.0.0.1:8222");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/run.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run.sh went on with port 8222 taken");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("8222") && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("live page"),
        "printed the URLs anyway"
    );
}
