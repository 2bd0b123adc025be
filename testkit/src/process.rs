//! The project's binaries as real processes, for tests that kill them (`kill -9`) or
//! signal them (SIGTERM). Killed on drop; output goes to a log file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

/// The path of a workspace binary (`frontend`, `publisher`, `loadgen`), built by cargo
/// beside the test executable. Built when missing or older than a source it is made of
/// (its crate, `common`, `proto`, `Cargo.lock`): a binary that merely exists may predate
/// the code under test, since `cargo test -p e2e` does not rebuild another package's
/// binaries. A fresh one is not rebuilt, so the workspace test run in CI (which builds
/// them) starts no second, differently-featured build.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        if stale(&path, name) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "--quiet", "-p", name, "--bin", name]);
            if dir.file_name().is_some_and(|p| p == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "cargo build --bin {name} failed");
        }
        built.push(name.to_owned());
    }
    path
}

/// Whether the binary at `path` is missing or older than a source of crate `name`.
fn stale(path: &Path, name: &str) -> bool {
    let Some(built) = modified(path) else {
        return true;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources: Vec<PathBuf> = [name, "common", "proto", "Cargo.lock", "Cargo.toml"]
        .iter()
        .map(|c| root.join(c))
        .collect();
    sources.iter().any(|p| newest(p).is_some_and(|t| t > built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of `path` or anything below it.
fn newest(path: &Path) -> Option<SystemTime> {
    let own = modified(path);
    let Ok(entries) = std::fs::read_dir(path) else {
        return own;
    };
    entries
        .flatten()
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest(&e.path()))
        .chain(own)
        .max()
}

pub struct Process {
    child: Option<Child>,
    name: String,
    args: Vec<String>,
    log_dir: TempDir,
    restarts: usize,
}

impl Process {
    /// Starts the workspace binary `name` with `args`.
    pub fn start(name: &str, args: &[String]) -> Process {
        let mut p = Process {
            child: None,
            name: name.to_owned(),
            args: args.to_vec(),
            log_dir: tempfile::tempdir().expect("log dir"),
            restarts: 0,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let child = Command::new(bin(&self.name))
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // tracing logs to stdout; panics and clap errors go to stderr.
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir
            .path()
            .join(format!("{}-{}.log", self.name, self.restarts))
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no goodbye, no drain.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns whether it exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Starts the process again with the same arguments.
    pub fn restart(&mut self) {
        self.kill9();
        self.restarts += 1;
        self.spawn();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}
