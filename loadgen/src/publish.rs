//! Open-loop publishing at a fixed rate per kind, round robin over the videos, with at most
//! `--concurrency` requests in flight; counts and request latencies per kind.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cli::PublishArgs;
use crate::ingest::{Ingest, Kind};
use crate::likes::Ledger;
use crate::stats::{self, new_histogram};

/// How many failed requests are printed (the rest are only counted).
const ERRORS_LOGGED: u32 = 10;

/// Counters of one kind.
pub struct KindStats {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub failed: AtomicU64,
    /// Request latency, µs.
    pub latency: Mutex<Histogram<u64>>,
    /// Accepted per video index.
    pub per_video: Box<[AtomicU64]>,
}

impl KindStats {
    fn new(videos: usize) -> Self {
        KindStats {
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            per_video: (0..videos).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn latency(&self) -> Histogram<u64> {
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Empties the latency histogram (at the start of a window).
    pub fn reset_latency(&self) {
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
    }

    /// The counters now, to subtract at the end of a window.
    pub fn snapshot(&self) -> KindSnapshot {
        KindSnapshot {
            sent: self.sent.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            failed: self.failed.load(Relaxed),
            per_video: self.per_video.iter().map(|a| a.load(Relaxed)).collect(),
        }
    }
}

/// [`KindStats`] counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct KindSnapshot {
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    pub per_video: Vec<u64>,
}

impl KindSnapshot {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &KindSnapshot) -> KindSnapshot {
        KindSnapshot {
            sent: self.sent - before.sent,
            accepted: self.accepted - before.accepted,
            failed: self.failed - before.failed,
            per_video: self
                .per_video
                .iter()
                .zip(before.per_video.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| a - b)
                .collect(),
        }
    }
}

/// The publishing side of a run.
pub struct Publisher {
    ingest: Ingest,
    pub videos: Vec<String>,
    args: PublishArgs,
    pub comments: KindStats,
    pub likes: KindStats,
    /// Accepted likes by total, for the like latency at the viewers.
    pub ledger: Ledger,
    sem: Arc<Semaphore>,
    errors: AtomicU32,
}

impl Publisher {
    pub async fn new(args: &PublishArgs, videos: Vec<String>) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
        anyhow::ensure!(args.users > 0, "--users must be at least 1");
        Ok(Arc::new(Publisher {
            ingest: Ingest::connect(args).await?,
            comments: KindStats::new(videos.len()),
            likes: KindStats::new(videos.len()),
            ledger: Ledger::new(videos.len()),
            videos,
            args: args.clone(),
            sem: Arc::new(Semaphore::new(args.concurrency)),
            errors: AtomicU32::new(0),
        }))
    }

    pub fn via(&self) -> &'static str {
        match self.ingest {
            Ingest::Http { nchan: true, .. } => "nchan",
            Ingest::Http { .. } => "http",
            Ingest::Nats(_) => "nats",
        }
    }

    fn stats(&self, kind: Kind) -> &KindStats {
        match kind {
            Kind::Comment => &self.comments,
            Kind::Like => &self.likes,
        }
    }

    /// Publishes for `window` at the given rates per second, then waits (bounded) for the
    /// requests still in flight.
    pub async fn run_for(self: &Arc<Self>, window: Duration, comments: f64, likes: f64) {
        let until = Instant::now() + window;
        let c = tokio::spawn(self.clone().pace(Kind::Comment, comments, until));
        let l = tokio::spawn(self.clone().pace(Kind::Like, likes, until));
        let _ = tokio::join!(c, l);
        let grace = self.args.request_timeout.0 + Duration::from_secs(1);
        let all = self.args.concurrency as u32;
        if tokio::time::timeout(grace, self.sem.acquire_many(all))
            .await
            .is_err()
        {
            eprintln!("loadgen: requests still in flight after {grace:?}; not counted");
        }
    }

    /// Issues request n at `start + n / rate` until `until`.
    async fn pace(self: Arc<Self>, kind: Kind, rate: f64, until: Instant) {
        if rate <= 0.0 {
            return;
        }
        let start = Instant::now();
        let mut n: u64 = 0;
        loop {
            let due = start + Duration::from_secs_f64(n as f64 / rate);
            if due >= until {
                return;
            }
            tokio::time::sleep_until(due).await;
            let Ok(Ok(permit)) =
                tokio::time::timeout_at(until, self.sem.clone().acquire_owned()).await
            else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.one(kind, n).await;
                drop(permit);
            });
            n += 1;
        }
    }

    async fn one(&self, kind: Kind, n: u64) {
        let v = (n % self.videos.len() as u64) as usize;
        let user = format!("{}{}", self.args.user_prefix, n % self.args.users as u64);
        let text = match kind {
            Kind::Comment => comment_text(n, self.args.text_len),
            Kind::Like => String::new(),
        };
        let st = self.stats(kind);
        st.sent.fetch_add(1, Relaxed);
        let send_us = unix_us();
        let t0 = Instant::now();
        let result = self
            .ingest
            .send(kind, n + 1, &self.videos[v], &user, &text)
            .await;
        let us = t0.elapsed().as_micros() as u64;
        match result {
            Ok(total) => {
                if kind == Kind::Like && total > 0 {
                    self.ledger.record(v, total, send_us);
                }
                st.accepted.fetch_add(1, Relaxed);
                st.per_video[v].fetch_add(1, Relaxed);
                stats::record(
                    &mut st.latency.lock().unwrap_or_else(|e| e.into_inner()),
                    us,
                );
            }
            Err(e) => {
                st.failed.fetch_add(1, Relaxed);
                let k = self.errors.fetch_add(1, Relaxed);
                if k < ERRORS_LOGGED {
                    eprintln!("loadgen: {kind:?} to {}: {e}", self.videos[v]);
                } else if k == ERRORS_LOGGED {
                    eprintln!("loadgen: further publish errors are only counted");
                }
            }
        }
    }
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `len` characters: the sequence number, then filler.
fn comment_text(n: u64, len: usize) -> String {
    let mut s = format!("loadgen {n} ");
    let len = len.max(1);
    if s.len() < len {
        s.extend(std::iter::repeat_n('x', len - s.len()));
    }
    s.truncate(len);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn comment_text_has_the_asked_length() {
        assert_eq!(super::comment_text(7, 12), "loadgen 7 xx");
        assert_eq!(super::comment_text(7, 3), "loa");
        assert_eq!(super::comment_text(7, 0), "l");
    }
}
