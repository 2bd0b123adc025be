//! The phases of a run — ramp, warm-up, measurement window (publishing), drain — and the
//! report built from what was counted inside the window. Every phase is time-bounded.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::audience::Audience;
use crate::cli::{CommonArgs, PublishArgs, ViewerArgs, video_ids};
use crate::cpu::CpuMeter;
use crate::progress;
use crate::publish::{KindStats, Publisher};
use crate::report::{
    KindReport, Latency, Loss, PublishReport, Report, VideoCount, ViewerReport, encode_hist,
};
use crate::stats::{Phase, Stats};

/// What to run.
pub struct Plan {
    pub mode: &'static str,
    pub common: CommonArgs,
    pub viewers: Option<ViewerArgs>,
    pub publish: Option<PublishArgs>,
    pub drain: Duration,
}

impl Plan {
    fn ramp_limit(&self) -> Duration {
        self.viewers
            .as_ref()
            .map_or(Duration::ZERO, |v| match v.ramp_timeout {
                Some(d) => d.0,
                None => {
                    Duration::from_secs_f64(v.viewers as f64 / v.connect_rate)
                        + Duration::from_secs(10)
                }
            })
    }

    /// Upper bound of the whole run; past it the process gives up.
    pub fn hard_limit(&self) -> Duration {
        let requests = self
            .publish
            .as_ref()
            .map_or(Duration::ZERO, |p| p.request_timeout.0);
        self.ramp_limit()
            + self.common.warmup.0
            + self.common.duration.0
            + self.drain
            + requests
            + Duration::from_secs(30)
    }
}

/// Runs the plan and returns its report.
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    let videos = video_ids(&plan.common);
    anyhow::ensure!(!videos.is_empty(), "--videos must be at least 1");
    let stats = Arc::new(Stats::default());
    let audience = match &plan.viewers {
        Some(a) => {
            anyhow::ensure!(a.connect_rate > 0.0, "--connect-rate must be positive");
            Some(Arc::new(
                Audience::new(a, videos.clone(), stats.clone()).await?,
            ))
        }
        None => None,
    };
    let publisher = match &plan.publish {
        Some(p) => Some(Publisher::new(p, videos.clone()).await?),
        None => None,
    };
    let target = audience.as_ref().map_or(0, |a| a.len());
    let progress =
        (!plan.common.quiet).then(|| progress::spawn(stats.clone(), target, publisher.clone()));

    let mut viewers = JoinSet::new();
    if let Some(aud) = &audience {
        let started = Instant::now();
        let rate = plan.viewers.as_ref().map_or(1.0, |v| v.connect_rate);
        aud.ramp(&mut viewers, rate, started + plan.ramp_limit())
            .await;
        eprintln!(
            "loadgen: {} of {target} viewers connected after {:.1} s",
            stats.connected(),
            started.elapsed().as_secs_f64()
        );
    }
    stats.set_phase(Phase::Warmup);
    tokio::time::sleep(plan.common.warmup.0).await;

    // The measurement window.
    stats.reset_latency();
    let eligible = audience.as_ref().map(|a| a.open_now()).unwrap_or_default();
    let c0 = stats.counts();
    let cpu = CpuMeter::start();
    let t0 = Instant::now();
    stats.set_phase(Phase::Measure);
    match &publisher {
        Some(p) => p.run_for(plan.common.duration.0).await,
        None => tokio::time::sleep(plan.common.duration.0).await,
    }
    let measured = t0.elapsed().as_secs_f64();
    let c1 = stats.counts();
    if audience.is_some() && publisher.is_some() {
        stats.set_phase(Phase::Drain);
        tokio::time::sleep(plan.drain).await;
    }
    let c2 = stats.counts();
    let window_s = t0.elapsed().as_secs_f64();
    let cpu_percent = cpu.percent();
    stats.set_phase(Phase::Done);
    let connected_at_end = stats.connected();
    viewers.shutdown().await;
    if let Some(p) = progress {
        p.abort();
    }

    // Per video: eligible viewers and what they received, plus what was accepted.
    let mut per_video = audience
        .as_ref()
        .map(|a| a.window_counts(&eligible))
        .unwrap_or_default();
    if let Some(p) = &publisher {
        for (i, v) in videos.iter().enumerate() {
            let accepted = p.comments.per_video[i].load(Relaxed);
            if accepted > 0 {
                per_video
                    .entry(v.clone())
                    .or_insert_with(|| VideoCount {
                        video: v.clone(),
                        ..VideoCount::default()
                    })
                    .accepted = accepted;
            }
        }
    }
    let videos: Vec<VideoCount> = per_video
        .into_iter()
        .map(|(video, vc)| VideoCount { video, ..vc })
        .collect();
    let latency = stats.latency();
    let window = c2.minus(&c0);
    let during = c1.minus(&c0);
    let viewer_report = ViewerReport {
        target: target as u64,
        connected_at_start: eligible.iter().filter(|&&e| e).count() as u64,
        connected_at_end,
        connect_failures_total: c2.connect_failures,
        counts: window,
        events_per_sec: during.events as f64 / measured,
        comments_per_sec: during.comments as f64 / measured,
        latency: Latency::of(&latency),
        latency_hist: encode_hist(&latency),
    };
    let publish = match &publisher {
        Some(p) => PublishReport {
            via: p.via().into(),
            comments: kind_report(&p.comments, measured),
            likes: kind_report(&p.likes, measured),
        },
        None => PublishReport::default(),
    };
    Ok(Report {
        mode: plan.mode.into(),
        processes: 1,
        window_s,
        cpu_percent: vec![cpu_percent],
        viewers: if audience.is_some() {
            viewer_report
        } else {
            ViewerReport::default()
        },
        publish,
        loss: Loss::compute(&videos),
        videos,
    })
}

fn kind_report(k: &KindStats, secs: f64) -> KindReport {
    let h = k.latency();
    let accepted = k.accepted.load(Relaxed);
    KindReport {
        sent: k.sent.load(Relaxed),
        accepted,
        failed: k.failed.load(Relaxed),
        accepted_per_sec: accepted as f64 / secs,
        latency: Latency::of(&h),
        latency_hist: encode_hist(&h),
    }
}

/// Prints the table (stderr) and the JSON line (stdout), and writes `json_out`.
pub fn emit(report: &Report, json_out: Option<&Path>) -> anyhow::Result<()> {
    eprintln!("\nloadgen result\n{}", report.table());
    let json = serde_json::to_string(report)?;
    println!("{json}");
    if let Some(path) = json_out {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
