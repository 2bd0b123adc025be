//! The audience: N viewers spread over videos, frontends and source addresses, opened at
//! a bounded rate, with a per-viewer slot the run reads to compute loss.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{Server, ViewerArgs};
use crate::stats::Stats;
use crate::target::{Target, split_list};
use crate::viewer;
use benchreport::report::VideoCount;

/// How many connection errors are printed (the rest are only counted).
const ERRORS_LOGGED: u32 = 10;

/// What one viewer shares with the run; written only by that viewer.
#[derive(Debug, Default)]
pub struct Slot {
    /// Its stream is open right now.
    pub open: AtomicBool,
    /// New comments received since the measurement window started.
    pub window_comments: AtomicU64,
    /// Likes totals seen in the window with the UNIX µs they arrived (sampled viewers).
    pub likes_seen: Mutex<Vec<(u64, u64)>>,
}

/// Configuration and shared state of all viewers of this process.
pub struct Audience {
    pub stats: Arc<Stats>,
    pub targets: Vec<Target>,
    pub source_ips: Vec<IpAddr>,
    pub videos: Vec<String>,
    /// Global index of this process's first viewer (spreads processes over videos).
    pub offset: usize,
    /// Query string appended to the events path (`?token=…`), or empty.
    pub query: String,
    pub recv_buffer: u32,
    pub connect_timeout: Duration,
    pub reconnect: bool,
    /// `--failover`: start on the first frontend, move on when a connect fails.
    pub failover: bool,
    pub server: Server,
    /// The first this-many viewers of each video record the likes totals they see.
    pub likes_sample: usize,
    pub slots: Box<[Slot]>,
    errors: AtomicU32,
}

impl Audience {
    pub async fn new(
        args: &ViewerArgs,
        videos: Vec<String>,
        stats: Arc<Stats>,
    ) -> anyhow::Result<Self> {
        let mut targets = Vec::new();
        for url in split_list(&args.frontend) {
            targets.push(Target::resolve(&url).await?);
        }
        anyhow::ensure!(!targets.is_empty(), "--frontend lists no URL");
        let source_ips = split_list(args.source_ips.as_deref().unwrap_or_default())
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| anyhow::anyhow!("--source-ips {s}: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Audience {
            stats,
            targets,
            source_ips,
            videos,
            offset: args.viewer_offset,
            query: args
                .token
                .as_ref()
                .map(|t| format!("?token={t}"))
                .unwrap_or_default(),
            recv_buffer: args.recv_buffer,
            connect_timeout: args.connect_timeout.0,
            reconnect: !args.no_reconnect,
            failover: args.failover,
            server: args.target,
            likes_sample: args.likes_sample,
            slots: (0..args.viewers).map(|_| Slot::default()).collect(),
            errors: AtomicU32::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn video_of(&self, i: usize) -> &str {
        &self.videos[self.video_index(i)]
    }

    /// Index (into `videos`) of viewer `i`'s video.
    pub fn video_index(&self, i: usize) -> usize {
        (self.offset + i) % self.videos.len()
    }

    /// Whether viewer `i` records the likes totals it sees.
    pub fn samples_likes(&self, i: usize) -> bool {
        (self.offset + i) / self.videos.len() < self.likes_sample
    }

    /// The totals the sampled viewers saw since the last call, per video index; clears them.
    pub fn take_likes_seen(&self) -> Vec<(usize, Vec<(u64, u64)>)> {
        (0..self.len())
            .filter(|&i| self.samples_likes(i))
            .map(|i| {
                let seen = std::mem::take(
                    &mut *self.slots[i]
                        .likes_seen
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()),
                );
                (self.video_index(i), seen)
            })
            .collect()
    }

    /// Prints an error while the budget lasts.
    pub fn log_error(&self, msg: std::fmt::Arguments<'_>) {
        let n = self.errors.fetch_add(1, Relaxed);
        if n < ERRORS_LOGGED {
            eprintln!("loadgen: {msg}");
        } else if n == ERRORS_LOGGED {
            eprintln!("loadgen: further connection errors are only counted");
        }
    }

    /// Spawns the viewers at `rate` per second, then waits until all are connected;
    /// returns at `deadline` either way.
    pub async fn ramp(self: &Arc<Self>, set: &mut JoinSet<()>, rate: f64, deadline: Instant) {
        let start = Instant::now();
        for i in 0..self.len() {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if due > deadline {
                eprintln!("loadgen: ramp deadline reached after starting {i} viewers");
                return;
            }
            tokio::time::sleep_until(due).await;
            set.spawn(viewer::run(self.clone(), i));
        }
        while self.stats.connected() < self.len() as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Which viewers are connected now (at the start of the window).
    pub fn open_now(&self) -> Vec<bool> {
        self.slots.iter().map(|s| s.open.load(Relaxed)).collect()
    }

    /// Each viewer's count of window comments so far (the base of the next window).
    pub fn comment_counts(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.window_comments.load(Relaxed))
            .collect()
    }

    /// Per video: viewers connected at the window's start and the comments they received
    /// since `base` (from [`comment_counts`](Self::comment_counts) at the window's start).
    pub fn window_counts(&self, eligible: &[bool], base: &[u64]) -> BTreeMap<String, VideoCount> {
        let mut out = BTreeMap::<String, VideoCount>::new();
        for (i, slot) in self.slots.iter().enumerate() {
            if eligible.get(i).copied().unwrap_or(false) {
                let v = out.entry(self.video_of(i).to_owned()).or_default();
                v.viewers += 1;
                v.received += slot
                    .window_comments
                    .load(Relaxed)
                    .saturating_sub(base.get(i).copied().unwrap_or(0));
            }
        }
        out
    }
}
