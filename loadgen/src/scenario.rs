//! The phases of a run — ramp, warm-up, then one or more measurement windows (publishing)
//! each followed by a drain — and the report built from what was counted inside each
//! window. Every phase is time-bounded. A stepped run (`--comment-steps`, `--like-steps`)
//! keeps the viewers connected and raises the rates window by window until a stop
//! condition (p99, loss, accepted share) holds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::audience::Audience;
use crate::cli::{CommonArgs, PublishArgs, StepArgs, Via, ViewerArgs, video_ids};
use crate::cpu::{self, CpuMeter, MachineMeter};
use crate::natsmon::Monitor;
use crate::procstat::{self, Servers};
use crate::publish::{KindSnapshot, KindStats, Publisher};
use crate::stats::{Phase, Stats, new_histogram};
use crate::{likes, progress};
use benchreport::hist::encode as encode_hist;
use benchreport::report::{
    KindReport, Latency, Loss, PublishReport, Report, VideoCount, ViewerReport,
};

/// What to run.
pub struct Plan {
    pub mode: &'static str,
    pub common: CommonArgs,
    pub viewers: Option<ViewerArgs>,
    pub publish: Option<PublishArgs>,
    /// Rising rates (publish and run); `None` or empty lists: one window.
    pub steps: Option<StepArgs>,
    pub drain: Duration,
    /// Windows at least (`viewers --windows`); steps may ask for more.
    pub windows: usize,
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

    fn windows(&self) -> usize {
        self.steps
            .as_ref()
            .map_or(1, StepArgs::count)
            .max(self.windows)
    }

    /// The comment and like rates of window `i`.
    fn rates(&self, i: usize) -> (f64, f64) {
        let Some(p) = &self.publish else {
            return (0.0, 0.0);
        };
        let pick = |list: &[f64], fixed: f64| match list.get(i).or(list.last()) {
            Some(&r) => r,
            None => fixed,
        };
        match &self.steps {
            Some(s) => (
                pick(&s.comment_steps, p.comments_per_sec),
                pick(&s.like_steps, p.likes_per_sec),
            ),
            None => (p.comments_per_sec, p.likes_per_sec),
        }
    }

    /// How long the warm-up lasts: `--warmup`, or until `--start-at`.
    fn warmup(&self) -> Duration {
        match self.common.start_at {
            Some(at) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                Duration::from_secs_f64((at - now).max(0.0))
            }
            None => self.common.warmup.0,
        }
    }

    /// Upper bound of the whole run; past it the process gives up.
    pub fn hard_limit(&self) -> Duration {
        let requests = self.publish.as_ref().map_or(Duration::ZERO, |p| {
            p.request_timeout.0 + Duration::from_secs(1)
        });
        let window = self.common.duration.0 + self.drain + requests;
        self.ramp_limit() + self.warmup() + window * self.windows() as u32 + Duration::from_secs(30)
    }
}

/// Runs the plan; returns one report per window. `each` is called as each window ends.
pub async fn run(plan: Plan, mut each: impl FnMut(&Report)) -> anyhow::Result<Vec<Report>> {
    let videos = video_ids(&plan.common);
    anyhow::ensure!(!videos.is_empty(), "--videos must be at least 1");
    // RSS of the servers before any viewer connects.
    let servers = Servers::new(match &plan.common.server_pids {
        Some(list) => procstat::parse(list)?,
        None => Vec::new(),
    });
    if let Some(p) = &plan.publish
        && p.via == Via::Nchan
    {
        let likes = (0..plan.windows()).any(|i| plan.rates(i).1 > 0.0);
        anyhow::ensure!(
            !likes,
            "--via nchan publishes comments only: set --likes-per-sec 0"
        );
    }
    let monitor = match &plan.common.nats_monitor {
        Some(url) => Some(Monitor::new(url)?),
        None => None,
    };
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
    if plan.common.start_at.is_some() && plan.warmup().is_zero() {
        eprintln!("loadgen: --start-at was already past when the ramp ended");
    }
    tokio::time::sleep(plan.warmup()).await;

    let mut reports = Vec::new();
    for step in 0..plan.windows() {
        let (comment_rate, like_rate) = plan.rates(step);
        let report = window(
            &plan,
            step,
            comment_rate,
            like_rate,
            &stats,
            audience.as_ref(),
            publisher.as_ref(),
            &servers,
            monitor.as_ref(),
            target,
            &videos,
        )
        .await;
        let mut report = report;
        if plan.windows() > 1
            && step + 1 < plan.windows()
            && let Some(reason) = stop_reason(&plan, &report)
        {
            eprintln!("loadgen: stepping stops after step {step}: {reason}");
            report.stop_reason = reason;
            each(&report);
            reports.push(report);
            break;
        }
        each(&report);
        reports.push(report);
    }
    stats.set_phase(Phase::Done);
    viewers.shutdown().await;
    if let Some(p) = progress {
        p.abort();
    }
    Ok(reports)
}

/// Why stepping should stop after this window, if it should.
fn stop_reason(plan: &Plan, r: &Report) -> Option<String> {
    let s = plan.steps.as_ref()?;
    let v = &r.viewers;
    if v.target > 0 && v.latency.count > 0 && v.latency.p99_ms > s.stop_p99.0.as_secs_f64() * 1e3 {
        return Some(format!("comment p99 {:.0} ms", v.latency.p99_ms));
    }
    let l = &r.loss;
    if v.target > 0 && l.expected > 0 && l.lost as f64 > s.stop_loss * l.expected as f64 {
        return Some(format!("{} of {} comments lost", l.lost, l.expected));
    }
    let p = &r.publish;
    if let Some(limit) = s.stop_request_p99 {
        let limit_ms = limit.0.as_secs_f64() * 1e3;
        for (name, k) in [("comment", &p.comments), ("like", &p.likes)] {
            if k.accepted > 0 && k.latency.p99_ms > limit_ms {
                return Some(format!("{name} request p99 {:.0} ms", k.latency.p99_ms));
            }
        }
    }
    for (name, k, offered) in [
        ("comments", &p.comments, p.offered_comments_per_sec),
        ("likes", &p.likes, p.offered_likes_per_sec),
    ] {
        if offered > 0.0 && k.accepted_per_sec < s.stop_accepted * offered {
            return Some(format!(
                "{name}: {:.0}/s accepted of {offered:.0}/s offered ({} failed)",
                k.accepted_per_sec, k.failed
            ));
        }
    }
    None
}

/// One measurement window (and its drain) at the given rates.
#[allow(clippy::too_many_arguments)]
async fn window(
    plan: &Plan,
    step: usize,
    comment_rate: f64,
    like_rate: f64,
    stats: &Stats,
    audience: Option<&Arc<Audience>>,
    publisher: Option<&Arc<Publisher>>,
    servers: &Servers,
    monitor: Option<&Monitor>,
    target: usize,
    videos: &[String],
) -> Report {
    stats.reset_latency();
    if let Some(p) = publisher {
        p.comments.reset_latency();
        p.likes.reset_latency();
        p.ledger.take();
    }
    if let Some(a) = audience {
        a.take_likes_seen();
    }
    let eligible = audience.map(|a| a.open_now()).unwrap_or_default();
    let base = audience.map(|a| a.comment_counts()).unwrap_or_default();
    let snap0 = publisher.map(|p| (p.comments.snapshot(), p.likes.snapshot()));
    let c0 = stats.counts();
    let cpu = CpuMeter::start();
    let machine = MachineMeter::start();
    let server_win = servers.window();
    let nats0 = match monitor {
        Some(m) => m.read().await,
        None => None,
    };
    let t0 = Instant::now();
    stats.set_phase(Phase::Measure);
    match publisher {
        Some(p) => {
            p.run_for(plan.common.duration.0, comment_rate, like_rate)
                .await
        }
        None => tokio::time::sleep(plan.common.duration.0).await,
    }
    let measured = t0.elapsed().as_secs_f64();
    let c1 = stats.counts();
    if audience.is_some() && !plan.drain.is_zero() {
        stats.set_phase(Phase::Drain);
        tokio::time::sleep(plan.drain).await;
    }
    let c2 = stats.counts();
    let window_s = t0.elapsed().as_secs_f64();
    let cpu_percent = cpu.percent();
    let machine_cpu_percent = machine.percent();
    let server = servers.finish(&server_win);
    let nats = match (monitor, nats0) {
        (Some(m), Some(before)) => m.read().await.map(|n| n.since(&before)),
        _ => None,
    }
    .unwrap_or_default();
    let connected_at_end = stats.connected();

    // Per video: eligible viewers and what they received, plus what was accepted.
    let mut per_video = audience
        .map(|a| a.window_counts(&eligible, &base))
        .unwrap_or_default();
    let mut publish = PublishReport::default();
    let (mut likes_hist, mut likes_unseen) = (new_histogram(), 0);
    if let (Some(p), Some((c_before, l_before))) = (publisher, &snap0) {
        let comments = p.comments.snapshot().since(c_before);
        let likes = p.likes.snapshot().since(l_before);
        for (i, v) in videos.iter().enumerate() {
            let accepted = comments.per_video.get(i).copied().unwrap_or(0);
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
        publish = PublishReport {
            via: p.via().into(),
            offered_comments_per_sec: comment_rate,
            offered_likes_per_sec: like_rate,
            like_batch: if like_rate > 0.0 { p.like_batch() } else { 0 },
            comments: kind_report(&p.comments, &comments, measured),
            likes: kind_report(&p.likes, &likes, measured),
        };
        if let Some(a) = audience {
            let ledger = p.ledger.take();
            let seen = a.take_likes_seen();
            (likes_hist, likes_unseen) =
                likes::latency(&ledger, seen.iter().map(|(v, t)| (*v, t.as_slice())));
        }
    }
    let videos: Vec<VideoCount> = per_video
        .into_iter()
        .map(|(video, vc)| VideoCount { video, ..vc })
        .collect();
    let latency = stats.latency();
    let counts = c2.minus(&c0);
    let during = c1.minus(&c0);
    let viewer_report = ViewerReport {
        target: target as u64,
        connected_at_start: eligible.iter().filter(|&&e| e).count() as u64,
        connected_at_end,
        connect_failures_total: c2.connect_failures,
        counts,
        events_per_sec: during.events as f64 / measured,
        comments_per_sec: during.comments as f64 / measured,
        latency: Latency::of(&latency),
        latency_hist: encode_hist(&latency),
        likes_latency: Latency::of(&likes_hist),
        likes_latency_hist: if likes_hist.is_empty() {
            String::new()
        } else {
            encode_hist(&likes_hist)
        },
        likes_unseen,
        recovery: stats.recovery(),
    };
    Report {
        mode: plan.mode.into(),
        label: plan.common.label.clone(),
        step: step as u32,
        stop_reason: String::new(),
        processes: 1,
        window_s,
        cpu_percent: vec![cpu_percent],
        server,
        machine_cpu_percent,
        load_average: cpu::load_average(),
        nats,
        viewers: if audience.is_some() {
            viewer_report
        } else {
            ViewerReport::default()
        },
        publish,
        loss: Loss::compute(&videos),
        videos,
    }
}

fn kind_report(k: &KindStats, d: &KindSnapshot, secs: f64) -> KindReport {
    let h = k.latency();
    KindReport {
        sent: d.sent,
        accepted: d.accepted,
        failed: d.failed,
        accepted_per_sec: d.accepted as f64 / secs,
        requests_accepted: d.requests_accepted,
        requests_failed: d.requests_failed,
        requests_per_sec: d.requests_accepted as f64 / secs,
        latency: Latency::of(&h),
        latency_hist: encode_hist(&h),
    }
}

/// Prints the table (stderr) and the JSON line (stdout) of one report.
pub fn print(report: &Report) {
    eprintln!("\nloadgen result\n{}", report.table());
    match serde_json::to_string(report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("loadgen: encoding the result: {e}"),
    }
}

/// Writes the reports to `json_out`, one JSON line each.
pub fn write(reports: &[Report], json_out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = json_out {
        benchreport::report::write_file(reports, path)?;
    }
    Ok(())
}
