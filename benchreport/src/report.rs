//! The result of a measurement window: JSON (with base64 HDR V2 histograms, mergeable
//! across processes), result files (one JSON line per window), and a human table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::hist::{decode as decode_hist, merge as merge_hists};
use crate::nats::NatsCounts;
use crate::server::{self, ServerProc};
use crate::{Error, Result};

/// Everything one process (or a merge of several) measured.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// `viewers`, `publish`, `run` (or `merged`).
    pub mode: String,
    /// `--label` (e.g. `fanout/ours`).
    pub label: String,
    /// Index of the window in a stepped run (0 otherwise).
    pub step: u32,
    /// Why a stepped run stopped after this window (empty: it did not).
    pub stop_reason: String,
    pub processes: u32,
    /// Length of the measurement window, s (the longest one after a merge).
    pub window_s: f64,
    /// Each process's CPU use over the window, % of one core.
    pub cpu_percent: Vec<f64>,
    /// The server processes of `--server-pids` over the window.
    pub server: Vec<ServerProc>,
    /// CPU use of the whole machine over the window, % of one core (after a merge, the
    /// mean): what neither the servers nor the load generators used was other work.
    pub machine_cpu_percent: f64,
    /// The 1-minute load average at the window's end (after a merge, the highest).
    pub load_average: f64,
    /// The nats-server's message and byte counters over the window (`--nats-monitor`;
    /// zero without it; after a merge, the first process's that has them, since all
    /// watch the same server).
    pub nats: NatsCounts,
    pub viewers: ViewerReport,
    pub publish: PublishReport,
    /// Comment loss over the window, from `videos`.
    pub loss: Loss,
    /// Per video: window viewers, comments received, comments accepted by publishing.
    pub videos: Vec<VideoCount>,
}

/// What the viewers saw.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewerReport {
    pub target: u64,
    /// Open at the start of the window (the viewers loss is computed for).
    pub connected_at_start: u64,
    pub connected_at_end: u64,
    /// Failed connection attempts over the whole run, ramp included.
    pub connect_failures_total: u64,
    /// Counters over the window (drain included).
    pub counts: Counts,
    /// Delivered events per second over the window (drain excluded).
    pub events_per_sec: f64,
    pub comments_per_sec: f64,
    /// Comment end-to-end latency: publisher accept (`ts`) to receipt.
    pub latency: Latency,
    /// The same, base64 of the HDR V2 serialization (µs).
    pub latency_hist: String,
    /// Like latency: a like's send to the first `likes` event whose total includes it, at
    /// the sampled viewers (`--likes-sample`), for likes published by this process.
    pub likes_latency: Latency,
    pub likes_latency_hist: String,
    /// (like, sampled viewer) pairs where the viewer saw no total including the like.
    pub likes_unseen: u64,
    /// Streams that broke while measuring (a frontend killed) and how the viewers came
    /// back, over the run so far (not reset per window).
    pub recovery: Recovery,
}

/// How viewers whose open stream ended came back: reconnected (a stream open again,
/// on whichever frontend) and caught up (they received a comment accepted after their
/// stream ended, so nothing before it was missing: ids are checked for gaps and
/// duplicates separately). One viewer counts once per outage.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recovery {
    /// Outages: open streams that ended.
    pub dropped: u64,
    /// Of them, those whose viewer had a stream open again / was caught up.
    pub reconnected: u64,
    pub caught_up: u64,
    /// UNIX ms of the first outage's start, of the last reconnect and of the last
    /// catch-up (0: none).
    pub first_drop_ms: u64,
    pub last_reconnect_ms: u64,
    pub last_caught_up_ms: u64,
    /// The longest time from a stream's end to its viewer's reconnect / catch-up, ms.
    pub max_reconnect_ms: u64,
    pub max_caught_up_ms: u64,
}

impl Recovery {
    /// Both processes' outages together.
    pub fn merge(&mut self, o: &Recovery) {
        self.first_drop_ms = match (self.first_drop_ms, o.first_drop_ms) {
            (0, x) | (x, 0) => x,
            (a, b) => a.min(b),
        };
        self.dropped += o.dropped;
        self.reconnected += o.reconnected;
        self.caught_up += o.caught_up;
        self.last_reconnect_ms = self.last_reconnect_ms.max(o.last_reconnect_ms);
        self.last_caught_up_ms = self.last_caught_up_ms.max(o.last_caught_up_ms);
        self.max_reconnect_ms = self.max_reconnect_ms.max(o.max_reconnect_ms);
        self.max_caught_up_ms = self.max_caught_up_ms.max(o.max_caught_up_ms);
    }
}

/// Per-video tallies for the loss computation.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoCount {
    pub video: String,
    /// Viewers connected when the window started.
    pub viewers: u64,
    /// New comments those viewers received in the window.
    pub received: u64,
    /// Comments accepted for this video by publishing in the window.
    pub accepted: u64,
}

/// Expected = Σ viewers × accepted per video; lost/extra are the per-video shortfall/excess.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct Loss {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// Received beyond expected (another publisher, or comments from before the window).
    pub extra: u64,
}

impl Loss {
    pub fn compute(videos: &[VideoCount]) -> Loss {
        videos.iter().fold(Loss::default(), |mut l, v| {
            let expected = v.viewers * v.accepted;
            l.expected += expected;
            l.received += v.received;
            l.lost += expected.saturating_sub(v.received);
            l.extra += v.received.saturating_sub(expected);
            l
        })
    }
}

/// A latency summary in milliseconds.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// What publishing did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishReport {
    /// `http`, `nats`, `nchan`, or empty when this process did not publish.
    pub via: String,
    /// The rates asked for in this window, per second.
    pub offered_comments_per_sec: f64,
    pub offered_likes_per_sec: f64,
    /// Likes per like request (`--like-batch`; 1 for single likes, 0 when none).
    pub like_batch: u64,
    pub comments: KindReport,
    pub likes: KindReport,
}

/// Requests of one kind.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KindReport {
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    /// Accepted per second over the window.
    pub accepted_per_sec: f64,
    /// Requests: one per like or comment, or one per batch of likes.
    pub requests_accepted: u64,
    pub requests_failed: u64,
    pub requests_per_sec: f64,
    /// Request latency (send to 202).
    pub latency: Latency,
    pub latency_hist: String,
}

impl KindReport {
    fn merge(&mut self, o: &KindReport) -> Result<()> {
        self.sent += o.sent;
        self.accepted += o.accepted;
        self.failed += o.failed;
        self.accepted_per_sec += o.accepted_per_sec;
        self.requests_accepted += o.requests_accepted;
        self.requests_failed += o.requests_failed;
        self.requests_per_sec += o.requests_per_sec;
        self.latency_hist = merge_hists(&self.latency_hist, &o.latency_hist)?;
        self.latency = Latency::of(&decode_hist(&self.latency_hist)?);
        Ok(())
    }
}

/// Merges the results of several processes.
pub fn merge(reports: &[Report]) -> Result<Report> {
    let mut out = Report {
        mode: "merged".into(),
        ..Report::default()
    };
    let mut videos = BTreeMap::<String, VideoCount>::new();
    let mut vias = Vec::new();
    let servers: Vec<&[ServerProc]> = reports.iter().map(|r| r.server.as_slice()).collect();
    out.server = server::merge(&servers);
    if let Some(r) = reports.first() {
        out.step = r.step;
    }
    if let Some(r) = reports.iter().find(|r| !r.label.is_empty()) {
        out.label = r.label.clone();
    }
    if !reports.is_empty() {
        out.machine_cpu_percent =
            reports.iter().map(|r| r.machine_cpu_percent).sum::<f64>() / reports.len() as f64;
        out.load_average = reports.iter().map(|r| r.load_average).fold(0.0, f64::max);
    }
    for r in reports {
        out.publish.offered_comments_per_sec += r.publish.offered_comments_per_sec;
        out.publish.offered_likes_per_sec += r.publish.offered_likes_per_sec;
        out.publish.like_batch = out.publish.like_batch.max(r.publish.like_batch);
        if out.nats == NatsCounts::default() {
            out.nats = r.nats;
        }
        out.processes += r.processes.max(1);
        out.window_s = out.window_s.max(r.window_s);
        out.cpu_percent.extend(&r.cpu_percent);
        let (v, o) = (&mut out.viewers, &r.viewers);
        v.target += o.target;
        v.connected_at_start += o.connected_at_start;
        v.connected_at_end += o.connected_at_end;
        v.connect_failures_total += o.connect_failures_total;
        v.counts = v.counts.plus(&o.counts);
        v.events_per_sec += o.events_per_sec;
        v.comments_per_sec += o.comments_per_sec;
        v.latency_hist = merge_hists(&v.latency_hist, &o.latency_hist)?;
        v.likes_latency_hist = merge_hists(&v.likes_latency_hist, &o.likes_latency_hist)?;
        v.likes_unseen += o.likes_unseen;
        v.recovery.merge(&o.recovery);
        for vc in &r.videos {
            let e = videos
                .entry(vc.video.clone())
                .or_insert_with(|| VideoCount {
                    video: vc.video.clone(),
                    ..VideoCount::default()
                });
            e.viewers += vc.viewers;
            e.received += vc.received;
            e.accepted += vc.accepted;
        }
        out.publish.comments.merge(&r.publish.comments)?;
        out.publish.likes.merge(&r.publish.likes)?;
        if !r.publish.via.is_empty() && !vias.contains(&r.publish.via) {
            vias.push(r.publish.via.clone());
        }
    }
    out.publish.via = vias.join("+");
    out.viewers.latency = Latency::of(&decode_hist(&out.viewers.latency_hist)?);
    out.viewers.likes_latency = Latency::of(&decode_hist(&out.viewers.likes_latency_hist)?);
    out.videos = videos.into_values().collect();
    out.loss = Loss::compute(&out.videos);
    Ok(out)
}

/// Merges the result files of several processes step by step: step i of every file with
/// step i of the others (a file with fewer steps joins only its own).
pub fn merge_steps(per_file: &[Vec<Report>]) -> Result<Vec<Report>> {
    let steps = per_file.iter().map(Vec::len).max().unwrap_or(0);
    (0..steps)
        .map(|i| {
            let reports: Vec<_> = per_file.iter().filter_map(|r| r.get(i).cloned()).collect();
            merge(&reports)
        })
        .collect()
}

impl Report {
    /// The human table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<26} {v}");
        };
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!("{}, ", self.label)
        };
        row(
            "mode",
            format!(
                "{} ({label}step {}, {} process(es), window {:.1} s)",
                self.mode, self.step, self.processes, self.window_s
            ),
        );
        let v = &self.viewers;
        if v.target > 0 {
            let c = &v.counts;
            row(
                "viewers connected",
                format!(
                    "{}/{} at start, {} at end",
                    v.connected_at_start, v.target, v.connected_at_end
                ),
            );
            row(
                "failed connects",
                format!(
                    "{} (disconnects in window {})",
                    v.connect_failures_total, c.disconnects
                ),
            );
            row(
                "delivered events/s",
                format!("{:.0} ({} events)", v.events_per_sec, c.events),
            );
            row(
                "comments received",
                format!(
                    "{} ({:.0}/s), duplicates {}",
                    c.comments, v.comments_per_sec, c.duplicates
                ),
            );
            row("comment latency ms", fmt_latency(&v.latency));
            let rec = &v.recovery;
            if rec.dropped > 0 {
                let after = |t: u64| t.saturating_sub(rec.first_drop_ms) as f64 / 1e3;
                row(
                    "streams broken, back",
                    format!(
                        "{} broken; {} reconnected (last {:.2} s after the first break), {} caught up (last {:.2} s after); longest outage {} ms",
                        rec.dropped,
                        rec.reconnected,
                        after(rec.last_reconnect_ms),
                        rec.caught_up,
                        after(rec.last_caught_up_ms),
                        rec.max_caught_up_ms
                    ),
                );
            }
            row(
                "likes events",
                format!("{} (sum of counts {})", c.likes_events, c.likes_sum),
            );
            if v.likes_latency.count > 0 || v.likes_unseen > 0 {
                row(
                    "like latency ms (sampled)",
                    format!(
                        "{}, not seen {}",
                        fmt_latency(&v.likes_latency),
                        v.likes_unseen
                    ),
                );
            }
            row(
                "other events",
                format!(
                    "snapshot {}, viewers {}, reset {}, heartbeat {}, other {}, unparsable {}",
                    c.snapshots,
                    c.viewer_counts,
                    c.resets,
                    c.heartbeats,
                    c.other_events,
                    c.bad_events
                ),
            );
            let l = &self.loss;
            let loss = if l.expected == 0 {
                format!(
                    "n/a (no comments published in this result; received {})",
                    l.received
                )
            } else {
                format!(
                    "{} of {} expected ({:.4}%), received {}, extra {}",
                    l.lost,
                    l.expected,
                    l.lost as f64 * 100.0 / l.expected as f64,
                    l.received,
                    l.extra
                )
            };
            row("comment loss", loss);
        }
        let p = &self.publish;
        if !p.via.is_empty() {
            for (name, k) in [("comments", &p.comments), ("likes", &p.likes)] {
                if k.sent == 0 {
                    continue;
                }
                let offered = if name == "comments" {
                    p.offered_comments_per_sec
                } else {
                    p.offered_likes_per_sec
                };
                row(
                    &format!("published {name} ({})", p.via),
                    format!(
                        "{} sent, {} accepted ({:.0}/s of {offered:.0}/s offered), {} failed",
                        k.sent, k.accepted, k.accepted_per_sec, k.failed
                    ),
                );
                if name == "likes" && p.like_batch > 1 {
                    row(
                        "  like batches",
                        format!(
                            "{} likes each: {} accepted ({:.0}/s), {} failed",
                            p.like_batch,
                            k.requests_accepted,
                            k.requests_per_sec,
                            k.requests_failed
                        ),
                    );
                }
                if k.accepted > 0 {
                    row(&format!("  {name} request ms"), fmt_latency(&k.latency));
                }
            }
        }
        let cpu: Vec<String> = self
            .cpu_percent
            .iter()
            .map(|c| format!("{c:.0}%"))
            .collect();
        row("loadgen cpu (1 core)", cpu.join(" "));
        row(
            "machine cpu (1 core)",
            format!(
                "{:.0}% of {:.0}% (load average {:.1})",
                self.machine_cpu_percent,
                100.0 * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
                self.load_average
            ),
        );
        if !self.stop_reason.is_empty() {
            row("stepping stopped", self.stop_reason.clone());
        }
        if self.nats != NatsCounts::default() {
            let n = &self.nats;
            row(
                "nats-server (window)",
                format!(
                    "{} msgs in, {} out; {} KiB in, {} KiB out",
                    n.in_msgs,
                    n.out_msgs,
                    n.in_bytes / 1024,
                    n.out_bytes / 1024
                ),
            );
        }
        for p in &self.server {
            row(
                &format!("server {} ({})", p.name, p.pid),
                format!(
                    "cpu {:.0}%, rss {} → {} → {} KiB (before ramp, window start, end)",
                    p.cpu_percent, p.rss_start_kb, p.rss_window_kb, p.rss_end_kb
                ),
            );
        }
        t
    }
}

/// Writes `reports` to `path`, one JSON line each.
pub fn write_file(reports: &[Report], path: &Path) -> Result<()> {
    let mut text = String::new();
    for r in reports {
        text.push_str(&serde_json::to_string(r).map_err(|source| Error::Json {
            path: path.to_owned(),
            source,
        })?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(Error::io(path))
}

/// Reads a result file: one report per line (a stepped run has several).
pub fn read_file(path: &Path) -> Result<Vec<Report>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|source| Error::Json {
                path: path.to_owned(),
                source,
            })
        })
        .collect()
}

fn fmt_latency(l: &Latency) -> String {
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n={})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist;

    #[test]
    fn recoveries_merge_earliest_break_and_latest_return() {
        let mut a = Recovery {
            dropped: 2,
            reconnected: 2,
            caught_up: 1,
            first_drop_ms: 1_000,
            last_reconnect_ms: 5_000,
            last_caught_up_ms: 4_000,
            max_reconnect_ms: 4_000,
            max_caught_up_ms: 3_000,
        };
        a.merge(&Recovery::default());
        assert_eq!(
            a.first_drop_ms, 1_000,
            "a process without outages changes nothing"
        );
        a.merge(&Recovery {
            dropped: 1,
            caught_up: 1,
            first_drop_ms: 900,
            last_caught_up_ms: 9_000,
            max_caught_up_ms: 8_100,
            ..Recovery::default()
        });
        assert_eq!((a.dropped, a.reconnected, a.caught_up), (3, 2, 2));
        assert_eq!((a.first_drop_ms, a.last_caught_up_ms), (900, 9_000));
        assert_eq!((a.max_reconnect_ms, a.max_caught_up_ms), (4_000, 8_100));
    }

    #[test]
    fn merge_sums_counts_and_histograms() {
        let mk = |lat_us: u64, received: u64, accepted: u64| {
            let mut h = hist::new_histogram();
            h.record(lat_us).unwrap();
            let mut r = Report {
                mode: "run".into(),
                processes: 1,
                window_s: 10.0,
                cpu_percent: vec![50.0],
                ..Report::default()
            };
            r.viewers.target = 2;
            r.viewers.latency_hist = hist::encode(&h);
            r.videos = vec![VideoCount {
                video: "v0000".into(),
                viewers: 2,
                received,
                accepted,
            }];
            r
        };
        let json = serde_json::to_string(&mk(1000, 10, 5)).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        let m = merge(&[back, mk(3000, 6, 3)]).unwrap();
        assert_eq!(m.processes, 2);
        assert_eq!(m.viewers.latency.count, 2);
        assert!((m.viewers.latency.max_ms - 3.0).abs() < 0.01);
        // 4 viewers × 8 accepted = 32 expected, 16 received.
        assert_eq!((m.loss.expected, m.loss.lost), (32, 16));
        assert!(m.table().contains("comment loss"));
    }
}
