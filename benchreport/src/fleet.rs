//! The fleet scenario of `scripts/bench.sh` (`--only fleet`): what one frontend costs as
//! the number of frontends grows. For each fleet size F, `loadgen fleet` writes one
//! [`FleetStep`] (NATS messages per second of every `frontend-…` and `publisher-…`
//! connection from the nats-server's `/connz`, the server's own `/varz` totals, and each
//! process's CPU from `/proc`); `benchreport fleet` turns the steps into a markdown table
//! (median and max over the frontends), a JSON summary and an SVG plot against F.
//!
//! A frontend's NATS messages in are what the server sent it: its connection's
//! `out_msgs` in `/connz`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nats::NatsCounts;
use crate::report;
use crate::summary::thousands;
use crate::{Error, Result};

/// The label of fleet size `f`'s step and of its viewers' `loadgen` results.
pub fn label(f: usize) -> String {
    format!("fleet/{f}")
}

/// One client connection of a nats-server's `/connz`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conn {
    pub cid: u64,
    pub name: String,
    /// Messages the client sent the server.
    pub in_msgs: u64,
    /// Messages the server sent the client.
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// One page of `/connz` (`?limit=L&offset=O`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Connz {
    /// Connections on the server (all pages).
    pub total: usize,
    pub offset: usize,
    pub connections: Vec<Conn>,
}

impl Connz {
    /// The offset of the next page, if this one did not reach the end.
    pub fn next_offset(&self) -> Option<usize> {
        let next = self.offset + self.connections.len();
        (!self.connections.is_empty() && next < self.total).then_some(next)
    }
}

/// One connection's NATS messages over a window, from the client's side.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnRate {
    pub name: String,
    /// Messages the server delivered to it per second (`/connz` `out_msgs`).
    pub msgs_in_per_sec: f64,
    /// Messages it published per second (`/connz` `in_msgs`).
    pub msgs_out_per_sec: f64,
}

/// The rates of the connections named `prefix…` over `secs`: those present at both ends
/// of the window (matched by `cid`, so one that reconnected inside it is left out).
pub fn conn_rates(before: &[Conn], after: &[Conn], prefix: &str, secs: f64) -> Vec<ConnRate> {
    if secs <= 0.0 {
        return Vec::new();
    }
    let start: BTreeMap<u64, &Conn> = before.iter().map(|c| (c.cid, c)).collect();
    let mut out: Vec<ConnRate> = after
        .iter()
        .filter(|c| c.name.starts_with(prefix))
        .filter_map(|c| {
            let b = start.get(&c.cid)?;
            Some(ConnRate {
                name: c.name.clone(),
                msgs_in_per_sec: c.out_msgs.saturating_sub(b.out_msgs) as f64 / secs,
                msgs_out_per_sec: c.in_msgs.saturating_sub(b.in_msgs) as f64 / secs,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The CPU one process used over a window.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcCpu {
    pub name: String,
    pub pid: u32,
    /// % of one core; `None` when the process could not be read at both ends.
    pub cpu_percent: Option<f64>,
}

/// CPU seconds used between two readings over `wall` seconds, in % of one core.
pub fn cpu_percent(before: Option<f64>, after: Option<f64>, wall: f64) -> Option<f64> {
    match (before, after) {
        (Some(a), Some(b)) if wall > 0.0 && b >= a => Some((b - a) / wall * 100.0),
        _ => None,
    }
}

/// The nats-server's totals over a window, per second (`/varz`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsRates {
    pub in_msgs_per_sec: f64,
    pub out_msgs_per_sec: f64,
    pub in_bytes_per_sec: f64,
    pub out_bytes_per_sec: f64,
}

impl NatsRates {
    pub fn over(before: &NatsCounts, after: &NatsCounts, secs: f64) -> NatsRates {
        if secs <= 0.0 {
            return NatsRates::default();
        }
        let d = after.since(before);
        NatsRates {
            in_msgs_per_sec: d.in_msgs as f64 / secs,
            out_msgs_per_sec: d.out_msgs as f64 / secs,
            in_bytes_per_sec: d.in_bytes as f64 / secs,
            out_bytes_per_sec: d.out_bytes as f64 / secs,
        }
    }
}

/// What `loadgen fleet` measured over one window with F frontends running.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetStep {
    /// [`label`]`(frontends)`.
    pub label: String,
    /// F: frontend processes started.
    pub frontends: usize,
    pub window_s: f64,
    /// When the window started (UNIX seconds).
    pub started_unix: f64,
    /// Every `frontend-…` connection present over the whole window.
    pub frontend_conns: Vec<ConnRate>,
    /// Every frontend process.
    pub frontend_cpu: Vec<ProcCpu>,
    /// Every `publisher-…` connection present over the whole window.
    pub publisher_conns: Vec<ConnRate>,
    pub publisher_cpu: Vec<ProcCpu>,
    /// The nats-server's totals (`/varz`).
    pub nats: NatsRates,
    pub nats_cpu: Option<ProcCpu>,
    /// The whole machine over the window, % of one core (other work shows here).
    pub machine_cpu_percent: f64,
    /// The 1-minute load average at the window's end.
    pub load_average: f64,
}

/// Median and max of a set of values.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spread {
    /// How many values.
    pub n: usize,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// The median (mean of the middle two for an even count) and the max.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            n,
            median,
            max: v[n - 1],
        }
    }
}

/// One fleet size, summarized: a row of the table and of the JSON summary.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetRow {
    pub frontends: usize,
    /// Viewers open at the window's start, and asked for (from the viewers' results).
    pub viewers_connected: u64,
    pub viewers_target: u64,
    /// Per frontend (over its `frontend-…` connection).
    pub frontend_msgs_in_per_sec: Spread,
    pub frontend_msgs_out_per_sec: Spread,
    /// Per frontend process, % of one core.
    pub frontend_cpu_percent: Spread,
    pub nats_in_msgs_per_sec: f64,
    pub nats_out_msgs_per_sec: f64,
    pub nats_cpu_percent: Option<f64>,
    /// Summed over the `publisher-…` connections.
    pub publisher_msgs_in_per_sec: f64,
    pub publisher_msgs_out_per_sec: f64,
    pub publisher_cpu_percent: Option<f64>,
    pub machine_cpu_percent: f64,
    pub load_average: f64,
    pub window_s: f64,
}

impl FleetStep {
    /// The summary row; `viewers` = (connected, target) from the viewers' results.
    pub fn row(&self, viewers: (u64, u64)) -> FleetRow {
        let sum_cpu = |procs: &[ProcCpu]| -> Option<f64> {
            procs.iter().map(|p| p.cpu_percent).sum::<Option<f64>>()
        };
        FleetRow {
            frontends: self.frontends,
            viewers_connected: viewers.0,
            viewers_target: viewers.1,
            frontend_msgs_in_per_sec: Spread::of(
                self.frontend_conns.iter().map(|c| c.msgs_in_per_sec),
            ),
            frontend_msgs_out_per_sec: Spread::of(
                self.frontend_conns.iter().map(|c| c.msgs_out_per_sec),
            ),
            frontend_cpu_percent: Spread::of(
                self.frontend_cpu.iter().filter_map(|p| p.cpu_percent),
            ),
            nats_in_msgs_per_sec: self.nats.in_msgs_per_sec,
            nats_out_msgs_per_sec: self.nats.out_msgs_per_sec,
            nats_cpu_percent: self.nats_cpu.as_ref().and_then(|p| p.cpu_percent),
            publisher_msgs_in_per_sec: self.publisher_conns.iter().map(|c| c.msgs_in_per_sec).sum(),
            publisher_msgs_out_per_sec: self
                .publisher_conns
                .iter()
                .map(|c| c.msgs_out_per_sec)
                .sum(),
            publisher_cpu_percent: (!self.publisher_cpu.is_empty())
                .then(|| sum_cpu(&self.publisher_cpu))
                .flatten(),
            machine_cpu_percent: self.machine_cpu_percent,
            load_average: self.load_average,
            window_s: self.window_s,
        }
    }
}

/// Flags of `fleet`.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Directory of the scenario's files: `fleet-*.json` (`loadgen fleet --json-out`, one
    /// step per line) and `viewers-*.json` (the viewers' `loadgen --json-out`, labelled
    /// `fleet/F`).
    #[arg(long)]
    pub dir: PathBuf,
    /// The table, and the plot (NATS messages per second against the number of
    /// frontends).
    #[command(flatten)]
    pub out: crate::Outputs,
    /// Write the summary rows as JSON here.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// Prints the table (and writes it, the JSON summary and the plot where asked).
pub fn run(args: &FleetArgs) -> Result<()> {
    let rows = load(&args.dir)?;
    if rows.is_empty() {
        return Err(Error::Invalid(format!(
            "no fleet results (fleet-*.json) in {}",
            args.dir.display()
        )));
    }
    args.out.table(&markdown(&rows, &args.out.note))?;
    if let Some(path) = &args.json_out {
        let json = serde_json::to_string_pretty(&rows).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(path, json + "\n").map_err(Error::io(path))?;
    }
    if let Some(path) = &args.out.svg_out {
        plot(&rows, path)?;
        eprintln!("benchreport: wrote {}", path.display());
    }
    Ok(())
}

/// Reads the steps of `dir` and the viewers' results, one row per fleet size, by F.
pub fn load(dir: &Path) -> Result<Vec<FleetRow>> {
    let mut steps: BTreeMap<usize, FleetStep> = BTreeMap::new();
    let mut viewers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in crate::json_files(dir)? {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("fleet-") {
            let text = std::fs::read_to_string(&p).map_err(Error::io(&p))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let s: FleetStep = serde_json::from_str(line).map_err(|source| Error::Json {
                    path: p.clone(),
                    source,
                })?;
                // A repeated size: the later window wins.
                steps.insert(s.frontends, s);
            }
        } else if name.starts_with("viewers-") {
            for r in report::read_file(&p)? {
                let v = viewers.entry(r.label.clone()).or_default();
                v.0 += r.viewers.connected_at_start;
                v.1 += r.viewers.target;
            }
        }
    }
    Ok(steps
        .values()
        .map(|s| s.row(viewers.get(&s.label).copied().unwrap_or_default()))
        .collect())
}

fn rate(x: f64) -> String {
    if x >= 100.0 || x == 0.0 {
        thousands(x)
    } else {
        format!("{x:.1}")
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |x| format!("{x:.1}"))
}

/// The markdown table, then how the per-frontend inbound grew with F.
pub fn markdown(rows: &[FleetRow], note: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| frontends | viewers | frontend NATS msgs in/s (median / max) | frontend NATS msgs out/s (median) | frontend CPU % (median / max) | NATS in/s | NATS out/s | NATS CPU % | publisher msgs in/s | publisher msgs out/s | publisher CPU % |"
    );
    let _ = writeln!(
        t,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut marked = false;
    for r in rows {
        // A frontend whose connection was not seen over the whole window, or viewers
        // that did not all connect: the row is marked.
        let short =
            r.frontend_msgs_in_per_sec.n != r.frontends || r.viewers_connected < r.viewers_target;
        marked |= short;
        let _ = writeln!(
            t,
            "| {}{} | {} / {} | {} / {} | {} | {} / {} | {} | {} | {} | {} | {} | {} |",
            r.frontends,
            if short { " ‡" } else { "" },
            thousands(r.viewers_connected as f64),
            thousands(r.viewers_target as f64),
            rate(r.frontend_msgs_in_per_sec.median),
            rate(r.frontend_msgs_in_per_sec.max),
            rate(r.frontend_msgs_out_per_sec.median),
            pct(Some(r.frontend_cpu_percent.median)),
            pct(Some(r.frontend_cpu_percent.max)),
            rate(r.nats_in_msgs_per_sec),
            rate(r.nats_out_msgs_per_sec),
            pct(r.nats_cpu_percent),
            rate(r.publisher_msgs_in_per_sec),
            rate(r.publisher_msgs_out_per_sec),
            pct(r.publisher_cpu_percent),
        );
    }
    let _ = writeln!(t);
    if let Some(g) = growth(rows) {
        let _ = writeln!(t, "{g}");
        let _ = writeln!(t);
    }
    let _ = writeln!(
        t,
        "Msgs in/s of a frontend = what the nats-server sent its `frontend-…` connection (`/connz` `out_msgs`), out/s = what it published; publisher = its `publisher-…` connection(s), summed; NATS = `/varz` totals; CPU = `/proc` utime+stime, % of one core; load average at the window's end: {}.",
        rows.iter()
            .map(|r| format!("{:.2} (F={})", r.load_average, r.frontends))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if marked {
        let _ = writeln!(
            t,
            "‡ fewer frontend connections over the whole window than frontends started, or not every viewer connected."
        );
    }
    if !note.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "{note}");
    }
    t
}

/// How the median per-frontend inbound grew from the smallest fleet to the largest,
/// against how the fleet grew.
pub fn growth(rows: &[FleetRow]) -> Option<String> {
    let first = rows.first()?;
    let last = rows.last()?;
    if rows.len() < 2 || first.frontends == 0 {
        return None;
    }
    let a = first.frontend_msgs_in_per_sec.median;
    let b = last.frontend_msgs_in_per_sec.median;
    let fleet = last.frontends as f64 / first.frontends as f64;
    let per_fe = if a > 0.0 {
        format!("{:.2}×", b / a)
    } else {
        "— (none at the smallest size)".into()
    };
    Some(format!(
        "From {} to {} frontends ({fleet:.1}× the fleet), a frontend's NATS msgs in/s (median) went from {} to {}: {per_fe}; the nats-server's out/s went {}×.",
        first.frontends,
        last.frontends,
        rate(a),
        rate(b),
        if first.nats_out_msgs_per_sec > 0.0 {
            format!(
                "{:.2}",
                last.nats_out_msgs_per_sec / first.nats_out_msgs_per_sec
            )
        } else {
            "—".into()
        }
    ))
}

/// NATS messages per second (log) against the number of frontends: a frontend's inbound
/// (median and max), the nats-server's totals in and out, the publisher's inbound.
fn plot(rows: &[FleetRow], path: &Path) -> Result<()> {
    type Pick = fn(&FleetRow) -> f64;
    let series: [(&str, RGBColor, u32, Pick); 5] = [
        (
            "per frontend: msgs in/s (median)",
            RGBColor(31, 119, 180),
            3,
            |r| r.frontend_msgs_in_per_sec.median,
        ),
        (
            "per frontend: msgs in/s (max)",
            RGBColor(174, 199, 232),
            2,
            |r| r.frontend_msgs_in_per_sec.max,
        ),
        ("nats-server: msgs in/s", RGBColor(44, 160, 44), 2, |r| {
            r.nats_in_msgs_per_sec
        }),
        ("nats-server: msgs out/s", RGBColor(214, 39, 40), 3, |r| {
            r.nats_out_msgs_per_sec
        }),
        ("publisher: msgs in/s", RGBColor(148, 103, 189), 2, |r| {
            r.publisher_msgs_in_per_sec
        }),
    ];
    // Whole frontends on the x axis, so its ticks are whole numbers.
    let points = |pick: Pick| -> Vec<(u32, f64)> {
        rows.iter()
            .map(|r| (u32::try_from(r.frontends).unwrap_or(u32::MAX), pick(r)))
            .filter(|&(_, y)| y > 0.0)
            .collect()
    };
    let all: Vec<(u32, f64)> = series.iter().flat_map(|s| points(s.3)).collect();
    if all.is_empty() {
        return Err(Error::Plot("no fleet rates to plot".into()));
    }
    let max_f = all.iter().map(|p| p.0).max().unwrap_or(1);
    let x1 = max_f.saturating_add((max_f / 12).max(1));
    let (y0, y1) = all
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    // Whole decades, so the log axis gets labelled ticks; room above for the legend.
    let y0 = 10f64.powf(y0.log10().floor());
    let y1 = 10f64.powf((y1 * 1.01).log10().ceil()) * 10.0;

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| Error::Plot(e.to_string());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fleet: NATS messages per second vs frontends (shared 2-core machine)",
            ("sans-serif", 20),
        )
        .margin(15)
        .margin_right(50)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..x1, (y0..y1).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("frontends (each with the same videos)")
        .y_desc("NATS messages per second")
        .x_label_formatter(&|x| x.to_string())
        .y_label_formatter(&|y| thousands(*y))
        .x_labels(usize::try_from(x1).unwrap_or(10).clamp(2, 12))
        .y_labels(12)
        .draw()
        .map_err(|e| err(&e))?;
    for (name, color, width, pick) in series {
        let pts = points(pick);
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 2 + width, color.filled())),
            )
            .map_err(|e| err(&e))?;
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

    fn conn(cid: u64, name: &str, in_msgs: u64, out_msgs: u64) -> Conn {
        Conn {
            cid,
            name: name.into(),
            in_msgs,
            out_msgs,
            ..Conn::default()
        }
    }

    #[test]
    fn connz_pages_and_fields() {
        let page: Connz = serde_json::from_str(
            r#"{"server_id":"x","num_connections":2,"total":3,"offset":0,"limit":2,
                "connections":[{"cid":5,"name":"frontend-local-1-a","in_msgs":7,"out_msgs":90,
                "in_bytes":1,"out_bytes":2,"subscriptions":4},{"cid":6,"in_msgs":1,"out_msgs":2}]}"#,
        )
        .unwrap();
        assert_eq!(page.next_offset(), Some(2));
        assert_eq!(page.connections[0].out_msgs, 90);
        // A connection without a name parses with an empty one.
        assert_eq!(page.connections[1].name, "");
        let last = Connz {
            total: 3,
            offset: 2,
            connections: vec![conn(7, "x", 0, 0)],
        };
        assert_eq!(last.next_offset(), None);
        // An empty page ends the paging even if the total says otherwise.
        let empty = Connz {
            total: 3,
            offset: 3,
            connections: vec![],
        };
        assert_eq!(empty.next_offset(), None);
    }

    #[test]
    fn rates_by_prefix_and_cid() {
        let before = [
            conn(1, "frontend-a", 10, 100),
            conn(2, "frontend-b", 0, 0),
            conn(3, "publisher-local-9", 50, 500),
            conn(4, "frontend-gone", 0, 0),
        ];
        let after = [
            conn(2, "frontend-b", 20, 400),
            conn(1, "frontend-a", 30, 300),
            conn(3, "publisher-local-9", 150, 700),
            // Reconnected inside the window: a new cid, left out.
            conn(9, "frontend-gone", 5, 5),
        ];
        let fe = conn_rates(&before, &after, "frontend-", 10.0);
        assert_eq!(fe.len(), 2);
        assert_eq!(fe[0].name, "frontend-a");
        // In = the server's out_msgs to it; out = its in_msgs.
        assert_eq!((fe[0].msgs_in_per_sec, fe[0].msgs_out_per_sec), (20.0, 2.0));
        assert_eq!((fe[1].msgs_in_per_sec, fe[1].msgs_out_per_sec), (40.0, 2.0));
        let p = conn_rates(&before, &after, "publisher-", 10.0);
        assert_eq!((p[0].msgs_in_per_sec, p[0].msgs_out_per_sec), (20.0, 10.0));
        assert!(conn_rates(&before, &after, "frontend-", 0.0).is_empty());
        // A counter that went down (a reused cid) counts as zero, not as a wrap.
        let r = conn_rates(
            &[conn(1, "frontend-a", 9, 9)],
            &[conn(1, "frontend-a", 1, 1)],
            "",
            1.0,
        );
        assert_eq!(r[0].msgs_in_per_sec, 0.0);
    }

    #[test]
    fn spread_cpu_and_nats_rates() {
        assert_eq!(Spread::of([]), Spread::default());
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.n, s.median, s.max), (3, 2.0, 3.0));
        let s = Spread::of([4.0, 1.0, 2.0, 10.0, f64::NAN]);
        assert_eq!((s.n, s.median, s.max), (4, 3.0, 10.0));
        assert_eq!(cpu_percent(Some(1.0), Some(1.5), 2.0), Some(25.0));
        assert_eq!(cpu_percent(None, Some(1.5), 2.0), None);
        assert_eq!(cpu_percent(Some(1.0), Some(1.5), 0.0), None);
        let a = NatsCounts {
            in_msgs: 100,
            out_msgs: 1000,
            ..NatsCounts::default()
        };
        let b = NatsCounts {
            in_msgs: 300,
            out_msgs: 5000,
            ..NatsCounts::default()
        };
        let r = NatsRates::over(&a, &b, 4.0);
        assert_eq!((r.in_msgs_per_sec, r.out_msgs_per_sec), (50.0, 1000.0));
        assert_eq!(NatsRates::over(&a, &b, 0.0), NatsRates::default());
    }

    fn step(f: usize, per_fe_in: f64) -> FleetStep {
        FleetStep {
            label: label(f),
            frontends: f,
            window_s: 10.0,
            frontend_conns: (0..f)
                .map(|i| ConnRate {
                    name: format!("frontend-{i}"),
                    msgs_in_per_sec: per_fe_in + i as f64,
                    msgs_out_per_sec: 20.0,
                })
                .collect(),
            frontend_cpu: (0..f)
                .map(|i| ProcCpu {
                    name: format!("frontend{i}"),
                    pid: i as u32,
                    cpu_percent: Some(1.0 + i as f64),
                })
                .collect(),
            publisher_conns: vec![ConnRate {
                name: "publisher-local-1".into(),
                msgs_in_per_sec: 5.0,
                msgs_out_per_sec: 1.0,
            }],
            publisher_cpu: vec![ProcCpu {
                name: "publisher".into(),
                pid: 1,
                cpu_percent: Some(2.0),
            }],
            nats: NatsRates {
                in_msgs_per_sec: 20.0 * f as f64,
                out_msgs_per_sec: per_fe_in * f as f64,
                ..NatsRates::default()
            },
            nats_cpu: Some(ProcCpu {
                name: "nats".into(),
                pid: 2,
                cpu_percent: Some(7.5),
            }),
            machine_cpu_percent: 50.0,
            load_average: 1.5,
            ..FleetStep::default()
        }
    }

    #[test]
    fn rows_table_json_and_plot_from_files() {
        let dir = std::env::temp_dir().join(format!(
            "benchreport-fleet-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, per_fe_in) in [(2, 40.0), (4, 80.0)] {
            let line = serde_json::to_string(&step(f, per_fe_in)).unwrap();
            std::fs::write(dir.join(format!("fleet-{f}.json")), line + "\n").unwrap();
        }
        // Viewers of F=2 in two processes, all connected; of F=4 one short.
        for (file, lbl, connected, target) in [
            ("viewers-2-0.json", "fleet/2", 20, 20),
            ("viewers-2-1.json", "fleet/2", 20, 20),
            ("viewers-4-0.json", "fleet/4", 79, 80),
        ] {
            let mut r = report::Report {
                label: lbl.into(),
                ..report::Report::default()
            };
            r.viewers.connected_at_start = connected;
            r.viewers.target = target;
            report::write_file(&[r], &dir.join(file)).unwrap();
        }
        let rows = load(&dir).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].viewers_connected, rows[0].viewers_target),
            (40, 40)
        );
        // Medians of 40, 41 and of 80..83.
        assert_eq!(rows[0].frontend_msgs_in_per_sec.median, 40.5);
        assert_eq!(rows[1].frontend_msgs_in_per_sec.max, 83.0);
        assert_eq!(rows[1].frontend_cpu_percent.median, 2.5);
        assert_eq!(rows[1].publisher_cpu_percent, Some(2.0));
        let md = markdown(&rows, "note");
        assert!(
            md.contains("| 2 | 40 / 40 | 40.5 / 41.0 | 20.0 | 1.5 / 2.0 | 40.0 | 80.0 | 7.5 | 5.0 | 1.0 | 2.0 |"),
            "{md}"
        );
        // Not every viewer connected: marked.
        assert!(md.contains("| 4 ‡ | 79 / 80 |"), "{md}");
        assert!(md.contains("81.5: 2.01×"), "{md}");
        assert!(md.ends_with("note\n"));
        let args = FleetArgs {
            dir: dir.clone(),
            out: crate::Outputs {
                md_out: Some(dir.join("fleet.md")),
                svg_out: Some(dir.join("fleet.svg")),
                note: String::new(),
            },
            json_out: Some(dir.join("summary.out")),
        };
        run(&args).unwrap();
        let svg = std::fs::read_to_string(dir.join("fleet.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("per frontend: msgs in/s (median)"));
        let back: Vec<FleetRow> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.out")).unwrap())
                .unwrap();
        assert_eq!(back, rows);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn growth_needs_two_sizes() {
        assert_eq!(growth(&[]), None);
        let one = step(4, 80.0).row((0, 0));
        assert_eq!(growth(std::slice::from_ref(&one)), None);
    }
}
