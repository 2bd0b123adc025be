//! The summary of `scripts/bench.sh`: reads the labelled result files of one benchmark run
//! (`SCENARIO/SYSTEM`, e.g. `fanout/ours`, `fanout/reference`, `fanout/nchan`), prints one
//! markdown table with this system beside the reference broadcast server
//! (`bench/reference`, fan-out and idle memory only) and nginx + nchan, with the ratios
//! and the issue's targets, the per-step details (fan-out p99 side by side, step by
//! step), and draws the fan-out latency percentiles against the delivered rate as an SVG.
//!
//! Labels it knows: `idle/*`, `fanout/*` (`*` = `ours`, `reference`, `nchan`), `many/*`
//! (`many-p1/ours`: the same with one partition), `ingest/*`, `100k/ours`,
//! `likes-http/ours`, `likes-nats/ours`, `likes-batch/ours`, `likes-latency/ours`,
//! `likes-batch-latency/ours`. Missing ones show as "—"; a blank cell is a scenario the
//! reference server does not take part in.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use plotters::prelude::*;

use crate::report::{self, Latency, Report};
use crate::{Error, Result};

/// A window counts as sustained when nothing was lost and p99 stayed under this.
const SUSTAINED_P99_MS: f64 = 1000.0;
/// Comment ingest counts a step while its p99 stays under this.
const INGEST_P99_MS: f64 = 100.0;
/// The issue's fan-out targets: no loss and p99 < 1 s up to this many deliveries/s …
const TARGET_CLEAN_DELIVERIES: f64 = 5_000_000.0;
/// … and p99 at most this many times the reference server's at these delivered rates.
const TARGET_P99_VS_REFERENCE: f64 = 1.25;
const TARGET_RATES: [f64; 3] = [100_000.0, 1_000_000.0, 3_000_000.0];
/// The idle-memory target, bytes per viewer (2 KB).
const TARGET_IDLE_BYTES: f64 = 2000.0;
/// A window where other work took at least this much CPU (% of one core) is marked.
const NOISY_OTHER_CPU: f64 = 50.0;

pub type Results = BTreeMap<String, Vec<Report>>;

/// Flags of `summary`.
#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// Directory of result files (`*.json`, one report per line, labelled with --label).
    #[arg(long)]
    pub dir: PathBuf,
    /// The table, and the plot (latency percentiles against delivered comments/s).
    #[command(flatten)]
    pub out: crate::Outputs,
}

/// Prints the table (and writes it and the plot where asked).
pub fn run(args: &SummaryArgs) -> Result<()> {
    let results = load(&args.dir)?;
    if results.is_empty() {
        return Err(Error::Invalid(format!(
            "no labelled results in {}",
            args.dir.display()
        )));
    }
    args.out.table(&markdown(&results, &args.out.note))?;
    if let Some(path) = &args.out.svg_out {
        if has_fanout(&results) {
            plot(&results, path)?;
            eprintln!("benchreport: wrote {}", path.display());
        } else {
            eprintln!("benchreport: no fan-out results, so no plot");
        }
    }
    Ok(())
}

fn has_fanout(res: &Results) -> bool {
    ["fanout/ours", "fanout/reference", "fanout/nchan"]
        .iter()
        .any(|l| get(res, l).iter().any(|r| r.viewers.latency.count > 0))
}

/// Every report of every `*.json` file in `dir`, by label, in step order.
pub fn load(dir: &Path) -> Result<Results> {
    let mut out = Results::new();
    for p in crate::json_files(dir)? {
        for r in report::read_file(&p)? {
            if !r.label.is_empty() {
                out.entry(r.label.clone()).or_default().push(r);
            }
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|r| r.step);
    }
    Ok(out)
}

pub fn get<'a>(res: &'a Results, label: &str) -> &'a [Report] {
    res.get(label).map_or(&[], Vec::as_slice)
}

fn server_cpu(r: &Report) -> f64 {
    r.server.iter().map(|p| p.cpu_percent).sum()
}

fn loadgen_cpu(r: &Report) -> f64 {
    r.cpu_percent.iter().sum()
}

/// RSS growth of the processes that hold the viewers (`frontend*`, `reference*`,
/// `nginx*`) per viewer connected at the window's start, KiB.
pub fn kib_per_viewer(r: &Report) -> Option<f64> {
    let viewers = r.viewers.connected_at_start;
    let holders: Vec<_> = r
        .server
        .iter()
        .filter(|p| {
            ["frontend", "reference", "nginx"]
                .iter()
                .any(|n| p.name.starts_with(n))
        })
        .collect();
    if viewers == 0 || holders.is_empty() {
        return None;
    }
    let grown: i64 = holders
        .iter()
        .map(|p| p.rss_window_kb as i64 - p.rss_start_kb as i64)
        .sum();
    Some(grown as f64 / viewers as f64)
}

/// No comment lost and p99 under the limit.
fn sustained(r: &Report) -> bool {
    r.loss.lost == 0 && r.viewers.latency.count > 0 && r.viewers.latency.p99_ms <= SUSTAINED_P99_MS
}

/// The sustained window with the most deliveries per second.
fn best(steps: &[Report]) -> Option<&Report> {
    steps.iter().filter(|r| sustained(r)).max_by(|a, b| {
        a.viewers
            .comments_per_sec
            .total_cmp(&b.viewers.comments_per_sec)
    })
}

/// The window whose delivered rate is closest to `rate` (by ratio).
pub fn nearest(steps: &[Report], rate: f64) -> Option<&Report> {
    let dist = |r: &Report| (r.viewers.comments_per_sec.max(1.0) / rate).ln().abs();
    steps
        .iter()
        .filter(|r| r.viewers.latency.count > 0)
        .min_by(|a, b| dist(a).total_cmp(&dist(b)))
}

/// Comment ingest: the step with the most comments stored per second whose request p99
/// and viewer p99 stayed under 100 ms, with no loss and at least 95 % accepted.
pub fn best_ingest(steps: &[Report]) -> Option<&Report> {
    steps
        .iter()
        .filter(|r| {
            let k = &r.publish.comments;
            k.accepted > 0
                && k.latency.p99_ms < INGEST_P99_MS
                && (r.viewers.latency.count == 0 || r.viewers.latency.p99_ms < INGEST_P99_MS)
                && r.loss.lost == 0
                && k.accepted_per_sec >= 0.95 * r.publish.offered_comments_per_sec
        })
        .max_by(|a, b| {
            a.publish
                .comments
                .accepted_per_sec
                .total_cmp(&b.publish.comments.accepted_per_sec)
        })
}

/// The window nearest to `rate` deliveries/s, if one came within a factor of 2 of it.
fn near(steps: &[Report], rate: f64) -> Option<&Report> {
    nearest(steps, rate).filter(|r| (r.viewers.comments_per_sec / rate).ln().abs() < 2f64.ln())
}

/// Deliveries per second a window offered: comments/s × viewers connected.
fn offered_deliveries(r: &Report) -> f64 {
    r.publish.offered_comments_per_sec * r.viewers.connected_at_start as f64
}

/// The step of `steps` that offered the same comments/s as `r` (the same step of another
/// system in the same run).
fn same_step<'a>(steps: &'a [Report], r: &Report) -> Option<&'a Report> {
    let offered = r.publish.offered_comments_per_sec;
    steps
        .iter()
        .find(|s| (s.publish.offered_comments_per_sec - offered).abs() <= 1e-6 * offered.max(1.0))
}

/// `1234567` → `1,234,567`.
pub fn thousands(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn pcts(l: &Latency) -> String {
    format!("{} / {} / {}", ms(l.p50_ms), ms(l.p90_ms), ms(l.p99_ms))
}

/// `a / b` as `2.5×`, or "—".
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => {
            if a / b >= 10.0 {
                format!("{:.0}×", a / b)
            } else {
                format!("{:.2}×", a / b)
            }
        }
        _ => "—".into(),
    }
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "—".into())
}

/// CPU of the machine used by neither the servers nor the load generator(s).
fn other_cpu(r: &Report) -> f64 {
    (r.machine_cpu_percent - server_cpu(r) - loadgen_cpu(r)).max(0.0)
}

fn cpu_text(r: &Report) -> String {
    format!(
        "{:.0}% (loadgen {:.0}%, other work {:.0}%)",
        server_cpu(r),
        loadgen_cpu(r),
        other_cpu(r)
    )
}

/// The loss of a window: `0` or `lost of expected (x%)`.
fn loss_text(r: &Report) -> String {
    let l = &r.loss;
    if l.expected == 0 {
        return "—".into();
    }
    if l.lost == 0 {
        return "0".into();
    }
    format!(
        "{} of {} ({:.2}%)",
        thousands(l.lost as f64),
        thousands(l.expected as f64),
        l.lost as f64 * 100.0 / l.expected as f64
    )
}

/// The markdown: the side-by-side table, then the steps of fan-out and likes ingest.
fn markdown(res: &Results, note: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scenario | measure | this system | reference | nginx + nchan | ours / reference | ours / nchan |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    // Three systems: (this system, reference, nchan, ours/reference, ours/nchan).
    let rows = std::cell::RefCell::new(String::new());
    let row3 = |a: &str, b: &str, c: String, r: String, d: String, er: String, e: String| {
        let _ = writeln!(
            rows.borrow_mut(),
            "| {a} | {b} | {c} | {r} | {d} | {er} | {e} |"
        );
    };
    // Scenarios without the reference server.
    let row = |a: &str, b: &str, c: String, d: String, e: String| {
        row3(a, b, c, String::new(), d, String::new(), e)
    };

    // Fan-out.
    let (fo, fr, fn_) = (
        get(res, "fanout/ours"),
        get(res, "fanout/reference"),
        get(res, "fanout/nchan"),
    );
    if !fo.is_empty() || !fr.is_empty() || !fn_.is_empty() {
        let viewers = fo
            .first()
            .or(fr.first())
            .or(fn_.first())
            .map_or(0, |r| r.viewers.connected_at_start);
        let title = format!("fan-out: {} viewers, 1 video", thousands(viewers as f64));
        let (bo, br, bn) = (best(fo), best(fr), best(fn_));
        let rate = |r: Option<&Report>| r.map(|r| r.viewers.comments_per_sec);
        let each = |f: &dyn Fn(&Report) -> String| {
            (or_dash(bo.map(f)), or_dash(br.map(f)), or_dash(bn.map(f)))
        };
        let (c, r, d) = each(&|r| thousands(r.viewers.comments_per_sec));
        row3(
            &title,
            &format!(
                "most deliveries/s with no loss and p99 < 1 s (target ≥ {})",
                thousands(TARGET_CLEAN_DELIVERIES)
            ),
            c,
            r,
            d,
            ratio(rate(bo), rate(br)),
            ratio(rate(bo), rate(bn)),
        );
        let (c, r, d) = each(&|r| pcts(&r.viewers.latency));
        row3(
            "",
            "p50 / p90 / p99 there, ms",
            c,
            r,
            d,
            "".into(),
            "".into(),
        );
        let (c, r, d) = each(&cpu_text);
        row3(
            "",
            "server CPU there, % of a core",
            c,
            r,
            d,
            "".into(),
            "".into(),
        );
        let stop = |s: &[Report]| {
            s.last().map(|r| {
                let offered = thousands(offered_deliveries(r));
                if r.stop_reason.is_empty() {
                    format!("none up to {offered}/s")
                } else {
                    format!("{} at {offered} deliveries/s offered", r.stop_reason)
                }
            })
        };
        row3(
            "",
            "what ended the steps",
            or_dash(stop(fo)),
            or_dash(stop(fr)),
            or_dash(stop(fn_)),
            "".into(),
            "".into(),
        );
        // At the issue's rates, only where a step came within a factor of 2 of it.
        let p99 = |r: Option<&Report>| r.map(|r| r.viewers.latency.p99_ms);
        let at = |r: &Report| {
            format!(
                "{}; {}",
                thousands(r.viewers.comments_per_sec),
                pcts(&r.viewers.latency)
            )
        };
        for target in TARGET_RATES {
            let (no, nr, nn) = (near(fo, target), near(fr, target), near(fn_, target));
            if no.is_none() && nr.is_none() && nn.is_none() {
                continue;
            }
            // Ours against the reference's same step (the same offered rate).
            let vs_ref = match no.and_then(|o| same_step(fr, o)) {
                Some(r) if r.viewers.latency.count > 0 => {
                    let x = no.map_or(0.0, |o| o.viewers.latency.p99_ms) / r.viewers.latency.p99_ms;
                    let verdict = if x <= TARGET_P99_VS_REFERENCE {
                        "met"
                    } else {
                        "not met"
                    };
                    format!(
                        "p99 {} (same step; target ≤ {TARGET_P99_VS_REFERENCE}×: {verdict})",
                        ratio(Some(x), Some(1.0))
                    )
                }
                _ => "—".into(),
            };
            row3(
                &format!("fan-out at ~{} deliveries/s", thousands(target)),
                "delivered/s; p50 / p90 / p99, ms",
                or_dash(no.map(at)),
                or_dash(nr.map(at)),
                or_dash(nn.map(at)),
                vs_ref,
                format!("p99 {}", ratio(p99(no), p99(nn))),
            );
            row3(
                "",
                "server CPU there, % of a core",
                or_dash(no.map(cpu_text)),
                or_dash(nr.map(cpu_text)),
                or_dash(nn.map(cpu_text)),
                ratio(no.map(server_cpu), nr.map(server_cpu)),
                ratio(no.map(server_cpu), nn.map(server_cpu)),
            );
        }
    }

    // Many videos (ours with the bench's partitions, ours with one, nchan).
    let (mo, m1, mn) = (
        get(res, "many/ours").last(),
        get(res, "many-p1/ours").last(),
        get(res, "many/nchan").last(),
    );
    for (sys, mo) in [("", mo), (" (1 partition)", m1)] {
        if mo.is_none() && (mn.is_none() || !sys.is_empty()) {
            continue;
        }
        let any = mo.or(mn).expect("one of them");
        let title = format!(
            "many videos{sys}: {} viewers, {} videos, {} comments/s",
            thousands(any.viewers.connected_at_start as f64),
            any.videos.len(),
            thousands(any.publish.offered_comments_per_sec)
        );
        let rate = |r: Option<&Report>| r.map(|r| r.viewers.comments_per_sec);
        let text = |r: &Report| {
            format!(
                "{}; {}; {}",
                thousands(r.publish.comments.accepted_per_sec),
                thousands(r.viewers.comments_per_sec),
                loss_text(r)
            )
        };
        row(
            &title,
            "comments accepted/s; delivered/s; comments lost",
            or_dash(mo.map(text)),
            or_dash(mn.map(text)),
            ratio(rate(mo), rate(mn)),
        );
        let p99 = |r: Option<&Report>| r.map(|r| r.viewers.latency.p99_ms);
        row(
            "",
            "p50 / p90 / p99, ms",
            or_dash(mo.map(|r| pcts(&r.viewers.latency))),
            or_dash(mn.map(|r| pcts(&r.viewers.latency))),
            format!("p99 {}", ratio(p99(mo), p99(mn))),
        );
        row(
            "",
            "comment request (stored) p50 / p90 / p99, ms",
            or_dash(mo.map(|r| pcts(&r.publish.comments.latency))),
            or_dash(mn.map(|r| pcts(&r.publish.comments.latency))),
            "".into(),
        );
        row(
            "",
            "server CPU, % of a core",
            or_dash(mo.map(cpu_text)),
            or_dash(mn.map(cpu_text)),
            ratio(mo.map(server_cpu), mn.map(server_cpu)),
        );
    }

    // Comment ingest.
    let (go, gn) = (get(res, "ingest/ours"), get(res, "ingest/nchan"));
    if !go.is_empty() || !gn.is_empty() {
        let any = go.first().or(gn.first()).expect("one of them");
        let (bo, bn) = (best_ingest(go), best_ingest(gn));
        let rate = |r: Option<&Report>| r.map(|r| r.publish.comments.accepted_per_sec);
        let text = |r: &Report| {
            format!(
                "{} (request p99 {} ms, viewers' p99 {} ms; {})",
                thousands(r.publish.comments.accepted_per_sec),
                ms(r.publish.comments.latency.p99_ms),
                ms(r.viewers.latency.p99_ms),
                cpu_text(r)
            )
        };
        row(
            &format!(
                "comment ingest: {} videos, {} viewers",
                any.videos.len(),
                thousands(any.viewers.connected_at_start as f64)
            ),
            "most comments/s stored with p99 < 100 ms (ours fsynced; nchan in memory)",
            or_dash(bo.map(text)),
            or_dash(bn.map(text)),
            ratio(rate(bo), rate(bn)),
        );
    }

    // Idle memory.
    let (io, ir, in_) = (
        get(res, "idle/ours").last(),
        get(res, "idle/reference").last(),
        get(res, "idle/nchan").last(),
    );
    if io.is_some() || ir.is_some() || in_.is_some() {
        let any = io.or(ir).or(in_).expect("one of them");
        let kib = |r: Option<&Report>| r.and_then(kib_per_viewer);
        let (ko, kr, kn) = (kib(io), kib(ir), kib(in_));
        let text = |k: Option<f64>| or_dash(k.map(|k| format!("{k:.2}")));
        let target = TARGET_IDLE_BYTES / 1024.0;
        let verdict = match ko {
            Some(k) if k <= target => " (target met)",
            Some(_) => " (target not met)",
            None => "",
        };
        row3(
            &format!(
                "idle memory: {} viewers",
                thousands(any.viewers.connected_at_start as f64)
            ),
            &format!(
                "RSS growth per viewer, KiB (frontend; reference; nginx workers); target ≤ {} B = {target:.2} KiB",
                TARGET_IDLE_BYTES
            ),
            format!("{}{verdict}", text(ko)),
            text(kr),
            text(kn),
            ratio(ko, kr),
            ratio(ko, kn),
        );
    }

    // 100k viewers.
    if let Some(r) = get(res, "100k/ours").last() {
        let frontends = r
            .server
            .iter()
            .filter(|p| p.name.starts_with("frontend"))
            .count();
        let title = format!(
            "{} viewers: {} frontends, {} videos, {} loadgen processes",
            thousands(r.viewers.target as f64),
            frontends,
            r.videos.len(),
            r.processes
        );
        row(
            &title,
            "connected; comments delivered/s (all events/s); comments lost",
            format!(
                "{}; {} ({}); {}",
                thousands(r.viewers.connected_at_start as f64),
                thousands(r.viewers.comments_per_sec),
                thousands(r.viewers.events_per_sec),
                loss_text(r)
            ),
            "—".into(),
            "".into(),
        );
        row(
            "",
            "p50 / p90 / p99, ms",
            pcts(&r.viewers.latency),
            "—".into(),
            "".into(),
        );
        row(
            "",
            "published comments/s + likes/s; server CPU",
            format!(
                "{} + {}; {}",
                thousands(r.publish.comments.accepted_per_sec),
                thousands(r.publish.likes.accepted_per_sec),
                cpu_text(r)
            ),
            "—".into(),
            "".into(),
        );
        row(
            "",
            "RSS growth per viewer, KiB (all frontends)",
            or_dash(kib_per_viewer(r).map(|k| format!("{k:.2}"))),
            "—".into(),
            "".into(),
        );
    }

    // Likes.
    for (label, via) in [
        ("likes-http/ours", "HTTP"),
        ("likes-nats/ours", "NATS"),
        ("likes-batch/ours", "NATS, batched"),
    ] {
        let steps = get(res, label);
        let top = steps.iter().max_by(|a, b| {
            a.publish
                .likes
                .accepted_per_sec
                .total_cmp(&b.publish.likes.accepted_per_sec)
        });
        if let Some(r) = top {
            let k = &r.publish.likes;
            let via = if r.publish.like_batch > 1 {
                format!(
                    "{via} ({} likes a batch, {} batches/s)",
                    r.publish.like_batch,
                    thousands(k.requests_per_sec)
                )
            } else {
                via.to_owned()
            };
            row(
                &format!("likes ingest over {via}"),
                "most likes/s accepted (stored durably); request p50 / p99 ms there",
                format!(
                    "{} of {} offered; {} / {} ({} failed; server {})",
                    thousands(k.accepted_per_sec),
                    thousands(r.publish.offered_likes_per_sec),
                    ms(k.latency.p50_ms),
                    ms(k.latency.p99_ms),
                    k.failed,
                    cpu_text(r)
                ),
                "— (nchan has no likes)".into(),
                "".into(),
            );
        }
    }
    let latency_runs: Vec<&Report> = [
        "likes-latency/ours",
        "likes-batch-latency/ours",
        "100k/ours",
    ]
    .iter()
    .filter_map(|l| get(res, l).last())
    .filter(|r| r.viewers.likes_latency.count > 0)
    .collect();
    for r in latency_runs {
        let l = &r.viewers.likes_latency;
        row(
            &format!("like latency at viewers ({})", r.label),
            "like sent → total seen: p50 / p90 / p99, ms",
            format!(
                "{} / {} / {} at {} likes/s over {}{} ({} samples)",
                ms(l.p50_ms),
                ms(l.p90_ms),
                ms(l.p99_ms),
                thousands(r.publish.likes.accepted_per_sec),
                r.publish.via.to_uppercase(),
                if r.publish.like_batch > 1 {
                    format!(" in batches of {}", r.publish.like_batch)
                } else {
                    String::new()
                },
                thousands(l.count as f64)
            ),
            "—".into(),
            "".into(),
        );
    }

    // The main table is complete: from here on, the per-step tables.
    t.push_str(&rows.into_inner());

    // Steps.
    if !fo.is_empty() || !fr.is_empty() || !fn_.is_empty() {
        let _ = writeln!(
            t,
            "\nFan-out p99 step by step (the same offered rate for each system):\n"
        );
        let _ = writeln!(
            t,
            "| comments/s offered | deliveries/s offered | this system: delivered/s; p99 ms | reference | nginx + nchan | ours / reference p99 | ours / nchan p99 |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|");
        // Every offered rate any system ran, in order.
        let mut offered: Vec<&Report> = Vec::new();
        for r in fo.iter().chain(fr).chain(fn_) {
            if !offered
                .iter()
                .any(|o| same_step(std::slice::from_ref(*o), r).is_some())
            {
                offered.push(r);
            }
        }
        offered.sort_by(|a, b| {
            a.publish
                .offered_comments_per_sec
                .total_cmp(&b.publish.offered_comments_per_sec)
        });
        for o in offered {
            let (so, sr, sn) = (same_step(fo, o), same_step(fr, o), same_step(fn_, o));
            let cell = |r: Option<&Report>| {
                or_dash(r.map(|r| {
                    let lost = if r.loss.lost > 0 {
                        format!(", lost {}", loss_text(r))
                    } else {
                        String::new()
                    };
                    let noisy = if other_cpu(r) >= NOISY_OTHER_CPU {
                        " †"
                    } else {
                        ""
                    };
                    format!(
                        "{}; {}{lost}{noisy}",
                        thousands(r.viewers.comments_per_sec),
                        ms(r.viewers.latency.p99_ms)
                    )
                }))
            };
            let p99 = |r: Option<&Report>| {
                r.filter(|r| r.viewers.latency.count > 0)
                    .map(|r| r.viewers.latency.p99_ms)
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} |",
                thousands(o.publish.offered_comments_per_sec),
                thousands(offered_deliveries(o)),
                cell(so),
                cell(sr),
                cell(sn),
                ratio(p99(so), p99(sr)),
                ratio(p99(so), p99(sn)),
            );
        }
        let _ = writeln!(
            t,
            "\n† other work (neither the servers nor loadgen) took ≥ {NOISY_OTHER_CPU:.0} % of a core during that window: compare those with care."
        );
        let _ = writeln!(t, "\nFan-out steps:\n");
        let _ = writeln!(
            t,
            "| system | comments/s offered | delivered/s | p50 ms | p90 ms | p99 ms | lost | server CPU | loadgen CPU | other CPU |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|");
        for (name, steps) in [
            ("this system", fo),
            ("reference", fr),
            ("nginx + nchan", fn_),
        ] {
            for r in steps {
                let l = &r.viewers.latency;
                let _ = writeln!(
                    t,
                    "| {name} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% |",
                    thousands(r.publish.offered_comments_per_sec),
                    thousands(r.viewers.comments_per_sec),
                    ms(l.p50_ms),
                    ms(l.p90_ms),
                    ms(l.p99_ms),
                    loss_text(r),
                    server_cpu(r),
                    loadgen_cpu(r),
                    other_cpu(r)
                );
            }
        }
    }
    if !go.is_empty() || !gn.is_empty() {
        let _ = writeln!(t, "\nComment ingest steps:\n");
        let _ = writeln!(
            t,
            "| system | offered/s | stored/s | failed | request p50 ms | request p99 ms | viewers' p99 ms | lost | server CPU | loadgen CPU | other CPU |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|");
        for (name, steps) in [("this system", go), ("nginx + nchan", gn)] {
            for r in steps {
                let k = &r.publish.comments;
                let _ = writeln!(
                    t,
                    "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% |",
                    thousands(r.publish.offered_comments_per_sec),
                    thousands(k.accepted_per_sec),
                    k.failed,
                    ms(k.latency.p50_ms),
                    ms(k.latency.p99_ms),
                    ms(r.viewers.latency.p99_ms),
                    loss_text(r),
                    server_cpu(r),
                    loadgen_cpu(r),
                    other_cpu(r)
                );
            }
        }
    }
    let (lh, ln, lb) = (
        get(res, "likes-http/ours"),
        get(res, "likes-nats/ours"),
        get(res, "likes-batch/ours"),
    );
    if !lh.is_empty() || !ln.is_empty() || !lb.is_empty() {
        let _ = writeln!(t, "\nLikes ingest steps:\n");
        let _ = writeln!(
            t,
            "| via | offered/s | accepted/s | requests/s | failed | request p50 ms | request p99 ms | server CPU | loadgen CPU | other CPU |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|");
        for (via, steps) in [("HTTP", lh), ("NATS", ln), ("NATS batched", lb)] {
            for r in steps {
                let k = &r.publish.likes;
                let via = if r.publish.like_batch > 1 {
                    format!("{via} ×{}", r.publish.like_batch)
                } else {
                    via.to_owned()
                };
                let _ = writeln!(
                    t,
                    "| {via} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% |",
                    thousands(r.publish.offered_likes_per_sec),
                    thousands(k.accepted_per_sec),
                    thousands(k.requests_per_sec),
                    k.failed,
                    ms(k.latency.p50_ms),
                    ms(k.latency.p99_ms),
                    server_cpu(r),
                    loadgen_cpu(r),
                    other_cpu(r)
                );
            }
        }
    }
    if !note.is_empty() {
        let _ = writeln!(t, "\n{note}");
    }
    t
}

/// Latency percentiles (log) against delivered comments/s (log), one line per system and
/// percentile, from the fan-out steps.
fn plot(res: &Results, path: &Path) -> Result<()> {
    let series: Vec<(&str, RGBColor, &[Report])> = vec![
        (
            "this system",
            RGBColor(31, 119, 180),
            get(res, "fanout/ours"),
        ),
        (
            "reference",
            RGBColor(44, 160, 44),
            get(res, "fanout/reference"),
        ),
        (
            "nginx + nchan",
            RGBColor(214, 39, 40),
            get(res, "fanout/nchan"),
        ),
    ];
    type Pick = fn(&Latency) -> f64;
    let pcts: [(&str, Pick, u32); 3] = [
        ("p50", |l| l.p50_ms, 1),
        ("p90", |l| l.p90_ms, 2),
        ("p99", |l| l.p99_ms, 3),
    ];
    let points = |steps: &[Report], pick: Pick| -> Vec<(f64, f64)> {
        steps
            .iter()
            .filter(|r| r.viewers.latency.count > 0 && r.viewers.comments_per_sec > 0.0)
            .map(|r| {
                (
                    r.viewers.comments_per_sec,
                    pick(&r.viewers.latency).max(0.01),
                )
            })
            .collect()
    };
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, _, s)| pcts.iter().flat_map(move |(_, p, _)| points(s, *p)))
        .collect();
    if all.is_empty() {
        return Err(Error::Plot("no fan-out results to plot".into()));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, 0f64, f64::MAX, 0f64);
    for &(x, y) in &all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    // Whole decades, so the log axes get labelled ticks; room above for the legend.
    let decade_down = |v: f64| 10f64.powf(v.log10().floor());
    let decade_up = |v: f64| 10f64.powf((v * 1.01).log10().ceil());
    let (x0, x1) = (decade_down(x0), decade_up(x1));
    let (y0, y1) = (decade_down(y0), decade_up(y1) * 10.0);

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| Error::Plot(e.to_string());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fan-out: comment latency vs delivered comments/s (shared 2-core machine)",
            ("sans-serif", 20),
        )
        .margin(15)
        .margin_right(50)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("delivered comments per second (all viewers)")
        .y_desc("end-to-end latency, ms")
        .x_label_formatter(&|x| thousands(*x))
        .y_label_formatter(&|y| ms(*y))
        .x_labels(12)
        .y_labels(12)
        .draw()
        .map_err(|e| err(&e))?;
    for (name, color, steps) in &series {
        for (pname, pick, width) in &pcts {
            let pts = points(steps, *pick);
            if pts.is_empty() {
                continue;
            }
            let style = color.stroke_width(*width);
            let color = *color;
            let w = *width;
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(|e| err(&e))?
                .label(format!("{name} {pname}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(w))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2 + w, color.filled())))
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerProc;

    fn step(label: &str, step: u32, delivered: f64, p99: f64, lost: u64) -> Report {
        let mut r = Report {
            label: label.into(),
            step,
            cpu_percent: vec![50.0],
            ..Report::default()
        };
        r.viewers.target = 100;
        r.viewers.connected_at_start = 100;
        r.viewers.comments_per_sec = delivered;
        r.viewers.latency = Latency {
            count: 10,
            p50_ms: p99 / 4.0,
            p90_ms: p99 / 2.0,
            p99_ms: p99,
            ..Latency::default()
        };
        r.publish.offered_comments_per_sec = delivered / 100.0;
        r.loss.expected = 1000;
        r.loss.lost = lost;
        r.server = vec![ServerProc {
            name: "frontend".into(),
            pid: 1,
            cpu_percent: 80.0,
            rss_start_kb: 1000,
            rss_window_kb: 1300,
            rss_end_kb: 1300,
        }];
        r
    }

    #[test]
    fn table_and_plot_from_results() {
        let dir = tempdir();
        let mut ours = String::new();
        for (i, (d, p99, lost)) in [(1000.0, 20.0, 0), (2000.0, 40.0, 0), (4000.0, 2000.0, 0)]
            .into_iter()
            .enumerate()
        {
            ours += &serde_json::to_string(&step("fanout/ours", i as u32, d, p99, lost)).unwrap();
            ours.push('\n');
        }
        std::fs::write(dir.join("fanout-ours.json"), ours).unwrap();
        let nchan = serde_json::to_string(&step("fanout/nchan", 0, 1000.0, 80.0, 0)).unwrap();
        std::fs::write(dir.join("fanout-nchan.json"), nchan).unwrap();
        // The reference: the same first two steps, at half ours' p99; a third at 100k/s.
        let mut reference = String::new();
        for (i, (d, p99)) in [(1000.0, 10.0), (2000.0, 20.0), (100_000.0, 50.0)]
            .into_iter()
            .enumerate()
        {
            let mut r = step("fanout/reference", i as u32, d, p99, 0);
            r.server[0].name = "reference".into();
            reference += &serde_json::to_string(&r).unwrap();
            reference.push('\n');
        }
        std::fs::write(dir.join("fanout-reference.json"), reference).unwrap();
        let idle = serde_json::to_string(&step("idle/ours", 0, 0.0, 0.0, 0)).unwrap();
        std::fs::write(dir.join("idle-ours.json"), idle).unwrap();
        let mut idle_ref = step("idle/reference", 0, 0.0, 0.0, 0);
        idle_ref.server[0].name = "reference".into();
        idle_ref.server[0].rss_window_kb = 1100; // 100 KiB over 100 viewers
        let idle_ref = serde_json::to_string(&idle_ref).unwrap();
        std::fs::write(dir.join("idle-reference.json"), idle_ref).unwrap();
        let res = load(&dir).unwrap();
        let md = markdown(&res, "note");
        // The best sustained step: ours 2000/s, the reference 100k/s, nchan 1000/s.
        assert!(
            md.contains("| 2,000 | 100,000 | 1,000 | 0.02× | 2.00× |"),
            "{md}"
        );
        // 300 KiB over 100 viewers, against the reference's 100 KiB.
        assert!(
            md.contains("| 3.00 (target not met) | 1.00 | — | 3.00× | — |"),
            "{md}"
        );
        // Step by step: ours' p99 against the reference's at the same offered rate.
        assert!(
            md.contains("| 20 | 2,000 | 2,000; 40.0 | 2,000; 20.0 | — | 2.00× | — |"),
            "{md}"
        );
        assert!(
            md.contains("| 1,000 | 100,000 | — | 100,000; 50.0 | — | — | — |"),
            "{md}"
        );
        // A window with other work beside it is marked.
        let mut noisy = step("fanout/ours", 0, 1000.0, 20.0, 0);
        noisy.machine_cpu_percent = 200.0;
        let mut res2 = Results::new();
        res2.insert("fanout/ours".into(), vec![noisy]);
        assert!(markdown(&res2, "").contains("| 1,000; 20.0 † |"));
        // At ~100k deliveries/s only the reference has a step: no ratio.
        assert!(md.contains("| fan-out at ~100,000 deliveries/s |"), "{md}");
        let svg = dir.join("plot.svg");
        plot(&res, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("nginx + nchan p99"));
        assert!(text.contains("reference p99"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn p99_against_the_reference_at_the_issue_rates() {
        let mut res = Results::new();
        // 1M and 3M deliveries/s, the same steps: 1.1× (met), then 2× (not met).
        res.insert(
            "fanout/ours".into(),
            vec![
                step("fanout/ours", 0, 1_000_000.0, 55.0, 0),
                step("fanout/ours", 1, 3_000_000.0, 200.0, 0),
            ],
        );
        res.insert(
            "fanout/reference".into(),
            vec![
                step("fanout/reference", 0, 1_000_000.0, 50.0, 0),
                step("fanout/reference", 1, 3_000_000.0, 100.0, 0),
            ],
        );
        let md = markdown(&res, "");
        let line = |rate: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| fan-out at ~{rate} deliveries/s")))
                .unwrap_or_else(|| panic!("no row for {rate}: {md}"))
                .to_owned()
        };
        assert!(line("1,000,000").contains("p99 1.10× (same step; target ≤ 1.25×: met)"));
        assert!(line("3,000,000").contains("p99 2.00× (same step; target ≤ 1.25×: not met)"));
        assert!(!md.contains("~100,000 deliveries/s"), "{md}");
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "loadgen-summary-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
