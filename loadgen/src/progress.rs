//! The progress line printed to stderr every second.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::cpu::CpuMeter;
use crate::publish::Publisher;
use crate::stats::{Counts, Stats};

/// Starts the ticker; abort the handle to stop it.
pub fn spawn(
    stats: Arc<Stats>,
    target: usize,
    publisher: Option<Arc<Publisher>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut tick =
            tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = Counts::default();
        let mut last_pub = (0, 0, 0);
        let mut cpu = CpuMeter::start();
        loop {
            tick.tick().await;
            let mut line = format!(
                "[{:>5.0}s {:<7}]",
                start.elapsed().as_secs_f64(),
                stats.phase().name()
            );
            if target > 0 {
                let c = stats.counts();
                let d = c.minus(&last);
                last = c;
                let lat = stats.latency();
                let _ = write!(
                    line,
                    " conn {}/{target} fail {} | ev/s {} cmt/s {} dup {} | lat p50 {:.1} p99 {:.1} ms",
                    c.connects.saturating_sub(c.disconnects),
                    c.connect_failures,
                    d.events,
                    d.comments,
                    c.duplicates,
                    lat.value_at_quantile(0.5) as f64 / 1000.0,
                    lat.value_at_quantile(0.99) as f64 / 1000.0,
                );
            }
            if let Some(p) = &publisher {
                let now = (
                    p.comments.accepted.load(Relaxed),
                    p.likes.accepted.load(Relaxed),
                    p.comments.failed.load(Relaxed) + p.likes.failed.load(Relaxed),
                );
                let _ = write!(
                    line,
                    " | pub cmt/s {} like/s {} failed {}",
                    now.0 - last_pub.0,
                    now.1 - last_pub.1,
                    now.2
                );
                last_pub = now;
            }
            let _ = write!(line, " | cpu {:.0}%", cpu.percent());
            cpu = CpuMeter::start();
            eprintln!("{line}");
        }
    })
}
