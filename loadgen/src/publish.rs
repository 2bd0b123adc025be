//! Open-loop publishing at a fixed rate per kind, round robin over the videos, with at most
//! `--concurrency` requests in flight; counts and request latencies per kind. With
//! `--like-batch N` a like request is one `LikeBatch` of N likes (its own idempotency
//! key), paced at likes/s ÷ N requests per second; counts are in likes, and requests
//! (batches) are counted beside them.

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
    /// Requests (one per like or comment, or one per batch of likes).
    pub requests_accepted: AtomicU64,
    pub requests_failed: AtomicU64,
}

impl KindStats {
    fn new(videos: usize) -> Self {
        KindStats {
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            per_video: (0..videos).map(|_| AtomicU64::new(0)).collect(),
            requests_accepted: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
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
            requests_accepted: self.requests_accepted.load(Relaxed),
            requests_failed: self.requests_failed.load(Relaxed),
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
    pub requests_accepted: u64,
    pub requests_failed: u64,
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
            requests_accepted: self.requests_accepted - before.requests_accepted,
            requests_failed: self.requests_failed - before.requests_failed,
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
    /// Unique per process run: the idempotency keys of batches are `{key_prefix}-{n}`.
    key_prefix: String,
    batches: AtomicU64,
}

impl Publisher {
    pub async fn new(args: &PublishArgs, videos: Vec<String>) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
        anyhow::ensure!(args.users > 0, "--users must be at least 1");
        anyhow::ensure!(
            args.like_batch.is_none() || args.via == crate::cli::Via::Nats,
            "--like-batch needs --via nats"
        );
        Ok(Arc::new(Publisher {
            ingest: Ingest::connect(args).await?,
            comments: KindStats::new(videos.len()),
            likes: KindStats::new(videos.len()),
            ledger: Ledger::new(videos.len()),
            videos,
            args: args.clone(),
            sem: Arc::new(Semaphore::new(args.concurrency)),
            errors: AtomicU32::new(0),
            key_prefix: format!("lg{}x{}", std::process::id(), unix_us()),
            batches: AtomicU64::new(0),
        }))
    }

    pub fn via(&self) -> &'static str {
        match self.ingest {
            Ingest::Http { nchan: true, .. } => "nchan",
            Ingest::Http { .. } => "http",
            Ingest::Nats(_) => "nats",
        }
    }

    /// Likes per like request: the batch size, or 1.
    pub fn like_batch(&self) -> u64 {
        self.args.like_batch.unwrap_or(1)
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
        let like_requests = likes / self.like_batch() as f64;
        let l = tokio::spawn(self.clone().pace(Kind::Like, like_requests, until));
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
        let batch = match kind {
            Kind::Like => self.args.like_batch,
            Kind::Comment => None,
        };
        let count = batch.unwrap_or(1);
        st.sent.fetch_add(count, Relaxed);
        let send_us = unix_us();
        let t0 = Instant::now();
        let result = match batch {
            Some(count) => {
                let key = format!("{}-{}", self.key_prefix, self.batches.fetch_add(1, Relaxed));
                self.ingest
                    .send_like_batch(&self.videos[v], &user, count, &key)
                    .await
            }
            None => {
                self.ingest
                    .send(kind, n + 1, &self.videos[v], &user, &text)
                    .await
            }
        };
        let us = t0.elapsed().as_micros() as u64;
        match result {
            Ok(total) => {
                if kind == Kind::Like && total > 0 {
                    self.ledger.record_n(v, total, send_us, count);
                }
                st.accepted.fetch_add(count, Relaxed);
                st.requests_accepted.fetch_add(1, Relaxed);
                st.per_video[v].fetch_add(count, Relaxed);
                stats::record(
                    &mut st.latency.lock().unwrap_or_else(|e| e.into_inner()),
                    us,
                );
            }
            Err(e) => {
                st.failed.fetch_add(count, Relaxed);
                st.requests_failed.fetch_add(1, Relaxed);
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
