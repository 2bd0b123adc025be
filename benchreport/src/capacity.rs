//! The capacity model (`benchreport capacity`, also `loadgen capacity`): from unit costs measured by `scripts/bench.sh`
//! (CPU-µs per delivery, per stored comment, per batch of likes; bytes per viewer; NATS
//! messages per event), how many frontends, NATS servers, partitions and publishers a
//! deployment needs for a load, and which limit it meets first. [`plan`] is pure
//! arithmetic (unit-tested); [`measured`] derives the unit costs from a results directory.
//! The model and its numbers are explained in docs/capacity.md.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::report::Report;
use crate::summary;
use crate::{Error, Result};

/// Flags of `capacity`. Unit-cost defaults are the medians measured on the shared 2-core
/// machine (docs/capacity.md says with which command).
#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    /// Concurrent viewers.
    #[arg(long, default_value_t = 25_000_000.0)]
    pub viewers: f64,
    /// Live videos.
    #[arg(long, default_value_t = 1000.0)]
    pub videos: f64,
    /// Likes per second over all videos.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub likes_per_sec: f64,
    /// Comments per second over all videos.
    #[arg(long, default_value_t = 10_000.0)]
    pub comments_per_sec: f64,
    /// Likes per `LikeBatch` the edge tier sends (each batch is one counter write).
    #[arg(long, default_value_t = 100.0)]
    pub like_batch: f64,
    /// Take the unit costs from this `scripts/bench.sh` results directory: a measured cost
    /// replaces its flag; where a scenario is missing, the flag's value stays.
    #[arg(long)]
    pub measured: Option<PathBuf>,
    /// The partitions the measured servers ran with (per-partition rates are the
    /// measured rates divided by it).
    #[arg(long, default_value_t = 4.0)]
    pub measured_partitions: f64,
    #[command(flatten)]
    pub costs: UnitCosts,
    #[command(flatten)]
    pub nodes: Nodes,
}

/// What one unit of work costs, measured here.
#[derive(Debug, Clone, Args)]
pub struct UnitCosts {
    /// Frontend CPU-µs per event delivered to a viewer (fan-out at ~100k deliveries/s).
    #[arg(long, default_value_t = 2.5)]
    pub frontend_us_per_delivery: f64,
    /// Frontend CPU-µs per live NATS message it receives (a comment, likes or presence
    /// message for a room it holds; upper bound: includes that message's deliveries).
    #[arg(long, default_value_t = 30.0)]
    pub frontend_us_per_nats_msg: f64,
    /// Frontend memory per connected viewer, bytes.
    #[arg(long, default_value_t = 2660.0)]
    pub frontend_bytes_per_viewer: f64,
    /// Publisher CPU-µs per stored comment.
    #[arg(long, default_value_t = 60.0)]
    pub publisher_us_per_comment: f64,
    /// nats-server CPU-µs per stored comment (JetStream write, fsync, republish), one
    /// replica.
    #[arg(long, default_value_t = 60.0)]
    pub nats_us_per_comment: f64,
    /// Publisher CPU-µs per `LikeBatch` (one counter write).
    #[arg(long, default_value_t = 60.0)]
    pub publisher_us_per_batch: f64,
    /// nats-server CPU-µs per `LikeBatch` (request, counter write, reply), one replica.
    #[arg(long, default_value_t = 60.0)]
    pub nats_us_per_batch: f64,
    /// nats-server CPU-µs per plain message routed to a subscriber (live events to
    /// frontends, viewer reports and totals).
    #[arg(long, default_value_t = 2.0)]
    pub nats_us_per_msg: f64,
    /// Comments one partition stores per second with p99 < 100 ms.
    #[arg(long, default_value_t = 4000.0)]
    pub partition_comments_per_sec: f64,
    /// Counter writes (batches of likes) one partition stores per second.
    #[arg(long, default_value_t = 4000.0)]
    pub partition_writes_per_sec: f64,
    /// Publisher CPU-µs per video count in a frontend's viewer report (summing).
    #[arg(long, default_value_t = 2.0)]
    pub publisher_us_per_report_entry: f64,
}

/// Shards of viewer reports: a frontend sends at most this many report messages a
/// second, plus its refresh (proto's `subjects::VIEWER_SHARDS`).
const REPORT_SHARDS: f64 = 16.0;
/// A frontend's report refresh per second (every third of the default 10 s TTL), on top
/// of at most one change per video per second.
const REFRESH_PER_SEC: f64 = 0.3;

/// The machines and the policy of the deployment.
#[derive(Debug, Clone, Args)]
pub struct Nodes {
    /// Cores of one server (every role).
    #[arg(long, default_value_t = 16.0)]
    pub cores: f64,
    /// Memory of one frontend server, GiB.
    #[arg(long, default_value_t = 64.0)]
    pub memory_gib: f64,
    /// Share of a server's CPU and memory to plan for (headroom for spikes and failover).
    #[arg(long, default_value_t = 0.6)]
    pub utilization: f64,
    /// A frontend server's network egress, Gbit/s.
    #[arg(long, default_value_t = 25.0)]
    pub nic_gbit: f64,
    /// Bytes of an event on the wire, averaged (a 40-character comment as SSE is ~120 B,
    /// a `likes` event ~50 B).
    #[arg(long, default_value_t = 120.0)]
    pub event_bytes: f64,
    /// Viewers one frontend process holds at most (open files, failover size).
    #[arg(long, default_value_t = 250_000.0)]
    pub max_viewers_per_frontend: f64,
    /// JetStream replicas of every stream.
    #[arg(long, default_value_t = 3.0)]
    pub replicas: f64,
    /// Frontends coalesce likes into at most one event per this many ms per video.
    #[arg(long, default_value_t = 50.0)]
    pub like_interval_ms: f64,
    /// Viewer totals per video per region per second a frontend receives (a region's
    /// publisher sends a video's total at most once a second, when it changed).
    #[arg(long, default_value_t = 1.0)]
    pub viewer_totals_per_sec: f64,
    /// Regions whose viewer totals every frontend receives.
    #[arg(long, default_value_t = 1.0)]
    pub regions: f64,
    /// Publishers of a region (each sums every frontend's viewer reports).
    #[arg(long, default_value_t = 2.0)]
    pub publishers_per_region: f64,
}

/// One role's size and what decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: &'static str,
    pub count: u64,
    /// The load that sized it, in words with numbers.
    pub load: String,
    /// Which constraint gave `count`.
    pub bound_by: &'static str,
}

/// A limit that more servers do not move, and how much load it leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Ceiling {
    pub what: String,
    /// Used share of the limit at this load (1.0 = at the limit).
    pub used: f64,
}

/// The result of [`plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub roles: Vec<Role>,
    pub ceilings: Vec<Ceiling>,
    /// Events per second each viewer receives.
    pub events_per_viewer: f64,
    /// Deliveries per second over all viewers.
    pub deliveries_per_sec: f64,
    /// NATS messages per second over the cluster (in + out).
    pub nats_msgs_per_sec: f64,
}

/// Whole servers for `need` units when one holds `per`.
fn servers(need: f64, per: f64) -> u64 {
    if need <= 0.0 {
        return 0;
    }
    (need / per).ceil().max(1.0) as u64
}

/// Events per second each viewer receives: its video's comments, its likes events (at
/// most one per --like-interval, at most one per stored batch) and a viewer count a
/// second.
pub fn events_per_viewer(a: &CapacityArgs) -> f64 {
    let videos = a.videos.max(1.0);
    let batches = a.likes_per_sec / a.like_batch.max(1.0);
    let likes_events = (batches / videos).min(1000.0 / a.nodes.like_interval_ms);
    a.comments_per_sec / videos + likes_events + 1.0
}

/// The deployment for a load: pure arithmetic over the inputs (see docs/capacity.md).
pub fn plan(a: &CapacityArgs) -> Plan {
    let (c, n) = (&a.costs, &a.nodes);
    let videos = a.videos.max(1.0);
    let cpu = n.cores * n.utilization;
    let batches = a.likes_per_sec / a.like_batch.max(1.0);

    // Frontends: every viewer gets its video's events.
    let events_per_viewer = events_per_viewer(a);
    let deliveries = a.viewers * events_per_viewer;
    let delivery_cores = deliveries * c.frontend_us_per_delivery / 1e6;
    let memory = a.viewers * c.frontend_bytes_per_viewer;
    let by_cpu = servers(delivery_cores, cpu);
    let by_mem = servers(memory, n.memory_gib * 1024f64.powi(3) * n.utilization);
    let by_conn = servers(a.viewers, n.max_viewers_per_frontend);
    let egress_gbit = deliveries * n.event_bytes * 8.0 / 1e9;
    let by_nic = servers(egress_gbit, n.nic_gbit * n.utilization);
    // Each frontend also takes every live message of the videos it holds (all of them,
    // once it holds more viewers than there are videos), and one viewer total per video
    // per region — not one count per other frontend: the publishers sum those. What it
    // holds shrinks as frontends are added only once V/F < N, so iterate to a fixed point.
    let mut frontends = by_cpu.max(by_mem).max(by_conn).max(by_nic).max(1);
    let mut bound = if frontends == by_cpu {
        "CPU (deliveries)"
    } else if frontends == by_nic {
        "network egress"
    } else if frontends == by_mem {
        "memory"
    } else {
        "viewers per process"
    };
    // NATS messages in per frontend per second, and CPU cores per frontend, with `k`.
    let inbound_at = |k: u64| {
        let f = k as f64;
        let held = videos.min(a.viewers / f);
        held * (a.comments_per_sec / videos
            + batches / videos
            + n.regions * n.viewer_totals_per_sec)
    };
    let cores_at = |k: u64| {
        (delivery_cores + k as f64 * inbound_at(k) * c.frontend_us_per_nats_msg / 1e6) / k as f64
    };
    for _ in 0..64 {
        let cores = cores_at(frontends);
        if cores <= cpu {
            break;
        }
        let next = servers(frontends as f64 * cores, cpu).max(frontends + 1);
        if cores_at(next) >= cores {
            bound = "does not fit: one frontend's NATS inbound alone is more than a server, and more frontends do not shrink it";
            break;
        }
        frontends = next;
        bound = "CPU (deliveries + NATS messages)";
    }
    let inbound = inbound_at(frontends);
    let f = frontends as f64;
    let held = videos.min(a.viewers / f);

    // NATS: stored writes on every replica, plus every live message to every frontend
    // that holds the video (viewer totals: one per video per region), plus the
    // frontends' viewer reports to each of the region's publishers (linear in F).
    let live = a.comments_per_sec + batches;
    let totals_in = videos * n.regions * n.viewer_totals_per_sec;
    let reports_in = f * (REPORT_SHARDS.min(held) * (1.0 + REFRESH_PER_SEC));
    let reports_out = reports_in * n.publishers_per_region;
    let fanout_out = (live + totals_in) * f * held / videos;
    let msgs = a.comments_per_sec * 4.0
        + batches * 4.0
        + live
        + totals_in
        + fanout_out
        + reports_in
        + reports_out;
    let nats_cores = (a.comments_per_sec * c.nats_us_per_comment + batches * c.nats_us_per_batch)
        * n.replicas
        / 1e6
        + (totals_in + fanout_out + reports_in + reports_out) * c.nats_us_per_msg / 1e6;
    let nats_by_cpu = servers(nats_cores, cpu);
    let nats = nats_by_cpu.max(n.replicas.ceil() as u64);

    // Partitions: stored comments and counter writes per partition; leaders spread, so
    // at least one per NATS server.
    // A partition stores both, so their shares of a partition add up.
    let by_writes = servers(
        a.comments_per_sec / c.partition_comments_per_sec + batches / c.partition_writes_per_sec,
        1.0,
    );
    let partitions = by_writes.max(nats).max(1);

    // Publishers: CPU per comment and per batch, and each sums every frontend's viewer
    // reports (a count per held video per second at most, plus the refresh); two at
    // least (one may fail).
    let report_entries = f * held * (1.0 + REFRESH_PER_SEC);
    let pub_cores = (a.comments_per_sec * c.publisher_us_per_comment
        + batches * c.publisher_us_per_batch)
        / 1e6;
    let sum_cores = report_entries * c.publisher_us_per_report_entry / 1e6;
    // The writes spread over the publishers; every one of them sums all reports.
    let publishers = if sum_cores >= cpu {
        u64::MAX
    } else {
        servers(pub_cores, cpu - sum_cores).max(2)
    };

    let roles = vec![
        Role {
            name: "frontends",
            count: frontends,
            load: format!(
                "{} viewers × {:.1} events/s = {} deliveries/s ({:.0} cores, {:.0} Gbit/s out); {:.1} GiB; {} NATS msgs/s in per frontend",
                summary::thousands(a.viewers),
                events_per_viewer,
                summary::thousands(deliveries),
                delivery_cores,
                egress_gbit,
                memory / 1024f64.powi(3),
                summary::thousands(inbound)
            ),
            bound_by: bound,
        },
        Role {
            name: "NATS servers",
            count: nats,
            load: format!(
                "{} msgs/s ({} stored writes/s × {} replicas; {} viewer reports/s in); {:.0} cores",
                summary::thousands(msgs),
                summary::thousands(a.comments_per_sec + batches),
                n.replicas,
                summary::thousands(reports_in),
                nats_cores
            ),
            bound_by: if nats_by_cpu >= nats {
                "CPU"
            } else {
                "replicas"
            },
        },
        Role {
            name: "partitions",
            count: partitions,
            load: format!(
                "{} comments/s, {} counter writes/s ({} likes/s in batches of {})",
                summary::thousands(a.comments_per_sec),
                summary::thousands(batches),
                summary::thousands(a.likes_per_sec),
                a.like_batch
            ),
            bound_by: if partitions == by_writes {
                "writes per partition (comments + counter writes)"
            } else {
                "one leader per NATS server"
            },
        },
        Role {
            name: "publishers",
            count: publishers,
            load: format!(
                "{pub_cores:.1} cores of writes; each sums {} viewer counts/s ({sum_cores:.2} cores)",
                summary::thousands(report_entries)
            ),
            bound_by: if publishers == u64::MAX {
                "does not fit: summing the viewer reports takes a whole publisher"
            } else if publishers > 2 {
                "CPU"
            } else {
                "two for failover"
            },
        },
    ];

    // Limits more servers do not lift: one video lives in one partition (its comments
    // and its counter are one stream's), every frontend receives every message of every
    // video it holds, and every publisher of a region sums every frontend's reports.
    let hottest = a.comments_per_sec / videos;
    let ceilings = vec![
        Ceiling {
            what: format!(
                "one frontend's network egress: {:.1} Gbit/s of {} Gbit/s",
                egress_gbit / f,
                n.nic_gbit
            ),
            used: egress_gbit / f / (n.nic_gbit * n.utilization),
        },
        Ceiling {
            what: format!(
                "one frontend's NATS inbound: {} msgs/s × {} µs of {:.1} cores",
                summary::thousands(inbound),
                c.frontend_us_per_nats_msg,
                cpu
            ),
            used: inbound * c.frontend_us_per_nats_msg / 1e6 / cpu,
        },
        Ceiling {
            what: format!(
                "one partition's writes: {} comments/s + {} counter writes/s of a partition's {} + {}",
                summary::thousands(a.comments_per_sec / partitions as f64),
                summary::thousands(batches / partitions as f64),
                summary::thousands(c.partition_comments_per_sec),
                summary::thousands(c.partition_writes_per_sec)
            ),
            used: a.comments_per_sec / partitions as f64 / c.partition_comments_per_sec
                + batches / partitions as f64 / c.partition_writes_per_sec,
        },
        Ceiling {
            what: format!(
                "one video (a video is in one partition): {hottest:.0} comments/s of {}",
                summary::thousands(c.partition_comments_per_sec)
            ),
            used: hottest / c.partition_comments_per_sec,
        },
        Ceiling {
            what: format!(
                "one video's likes (one partition): {} counter writes/s of {}",
                summary::thousands(batches / videos),
                summary::thousands(c.partition_writes_per_sec)
            ),
            used: batches / videos / c.partition_writes_per_sec,
        },
        Ceiling {
            what: format!(
                "one publisher sums every frontend's viewer reports: {} counts/s × {} µs of {:.1} cores",
                summary::thousands(report_entries),
                c.publisher_us_per_report_entry,
                cpu
            ),
            used: sum_cores / cpu,
        },
    ];
    Plan {
        roles,
        ceilings,
        events_per_viewer,
        deliveries_per_sec: deliveries,
        nats_msgs_per_sec: msgs,
    }
}

/// The table `loadgen capacity` prints.
pub fn table(a: &CapacityArgs, p: &Plan) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Load: {} viewers, {} videos, {} likes/s (batches of {}), {} comments/s; servers of {} cores, {} GiB, planned at {:.0} %.\n",
        summary::thousands(a.viewers),
        summary::thousands(a.videos),
        summary::thousands(a.likes_per_sec),
        a.like_batch,
        summary::thousands(a.comments_per_sec),
        a.nodes.cores,
        a.nodes.memory_gib,
        a.nodes.utilization * 100.0
    );
    let _ = writeln!(t, "| role | count | load | bound by |");
    let _ = writeln!(t, "|---|---|---|---|");
    for r in &p.roles {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} |",
            r.name, r.count, r.load, r.bound_by
        );
    }
    let _ = writeln!(
        t,
        "\nLimits more servers do not lift (used share at this load; the largest breaks first):\n"
    );
    let _ = writeln!(t, "| limit | used |");
    let _ = writeln!(t, "|---|---|");
    let mut ceilings = p.ceilings.clone();
    ceilings.sort_by(|x, y| y.used.total_cmp(&x.used));
    for c in &ceilings {
        let _ = writeln!(t, "| {} | {:.0} % |", c.what, c.used * 100.0);
    }
    let c = &a.costs;
    let _ = writeln!(
        t,
        "\nUnit costs: frontend {} µs/delivery, {} µs/NATS msg, {:.0} B/viewer; publisher {} µs/comment, {} µs/batch ({:.2} µs/like); nats-server {} µs/comment, {} µs/batch, {} µs/msg; a partition {} comments/s, {} counter writes/s.",
        c.frontend_us_per_delivery,
        c.frontend_us_per_nats_msg,
        c.frontend_bytes_per_viewer,
        c.publisher_us_per_comment,
        c.publisher_us_per_batch,
        c.publisher_us_per_batch / a.like_batch.max(1.0),
        c.nats_us_per_comment,
        c.nats_us_per_batch,
        c.nats_us_per_msg,
        c.partition_comments_per_sec,
        c.partition_writes_per_sec
    );
    t
}

/// CPU of the named server processes (name prefix), % of one core.
fn cpu_of(r: &Report, prefix: &str) -> f64 {
    r.server
        .iter()
        .filter(|p| p.name.starts_with(prefix))
        .map(|p| p.cpu_percent)
        .sum()
}

/// µs of CPU per unit: `cpu_percent` % of a core for `per_sec` units a second.
fn us_per(cpu_percent: f64, per_sec: f64) -> Option<f64> {
    (per_sec > 0.0 && cpu_percent > 0.0).then(|| cpu_percent / 100.0 * 1e6 / per_sec)
}

/// Round to 3 significant digits (costs are printed and passed on as flags).
fn sig3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// Sets the unit costs from a results directory of `scripts/bench.sh`; returns what was
/// taken from where, one line each.
pub fn measured(a: &mut CapacityArgs, results: &summary::Results) -> Vec<String> {
    let mut notes = Vec::new();
    let parts = a.measured_partitions.max(1.0);
    let per_viewer = events_per_viewer(a);
    let c = &mut a.costs;
    let mut set = |field: &mut f64, value: Option<f64>, what: String| {
        if let Some(v) = value.filter(|v| v.is_finite() && *v > 0.0) {
            *field = sig3(v);
            notes.push(format!("{what}: {}", sig3(v)));
        }
    };
    // Deliveries: a delivery's cost falls as a viewer's events come closer together
    // (they share a write), so the fan-out step whose events per viewer per second are
    // nearest this load's (all events, not only comments).
    let fanout = summary::get(results, "fanout/ours");
    let dist = |r: &Report| {
        let e = r.viewers.events_per_sec / (r.viewers.connected_at_start.max(1) as f64);
        (e.max(0.01) / per_viewer).ln().abs()
    };
    if let Some(r) = fanout
        .iter()
        .filter(|r| r.viewers.latency.count > 0)
        .min_by(|x, y| dist(x).total_cmp(&dist(y)))
    {
        set(
            &mut c.frontend_us_per_delivery,
            us_per(cpu_of(r, "frontend"), r.viewers.events_per_sec),
            format!(
                "frontend µs/delivery (fanout/ours step {}, {:.0} events/s, {:.1} per viewer; this load {per_viewer:.1})",
                r.step,
                r.viewers.events_per_sec,
                r.viewers.events_per_sec / (r.viewers.connected_at_start.max(1) as f64)
            ),
        );
    }
    // NATS messages into a frontend: comment ingest has 2 viewers per video, so its
    // frontend CPU per comment is one message plus two unbatched deliveries (an upper
    // bound); else many videos (10 viewers per video).
    let msg_run = summary::best_ingest(summary::get(results, "ingest/ours"))
        .map(|r| (r, "ingest/ours"))
        .or_else(|| {
            summary::get(results, "many/ours")
                .last()
                .map(|r| (r, "many/ours"))
        });
    if let Some((r, label)) = msg_run {
        set(
            &mut c.frontend_us_per_nats_msg,
            us_per(cpu_of(r, "frontend"), r.publish.comments.accepted_per_sec),
            format!(
                "frontend µs/NATS msg incl. its deliveries ({label}, {:.0} comments/s to {} viewers)",
                r.publish.comments.accepted_per_sec, r.viewers.connected_at_start
            ),
        );
    }
    if let Some(r) = summary::get(results, "idle/ours").last()
        && let Some(kib) = summary::kib_per_viewer(r)
    {
        set(
            &mut c.frontend_bytes_per_viewer,
            Some(kib * 1024.0),
            "frontend bytes/viewer (idle/ours)".into(),
        );
    }
    // Stored comments: the best comment-ingest step.
    if let Some(r) = summary::best_ingest(summary::get(results, "ingest/ours")) {
        let rate = r.publish.comments.accepted_per_sec;
        set(
            &mut c.publisher_us_per_comment,
            us_per(cpu_of(r, "publisher"), rate),
            format!("publisher µs/comment (ingest/ours, {rate:.0}/s)"),
        );
        set(
            &mut c.nats_us_per_comment,
            us_per(cpu_of(r, "nats"), rate),
            format!("nats-server µs/comment (ingest/ours, {rate:.0}/s)"),
        );
        // Only where stepping reached a limit: a rate below it says nothing.
        let limited = summary::get(results, "ingest/ours")
            .iter()
            .any(|r| !r.stop_reason.is_empty());
        set(
            &mut c.partition_comments_per_sec,
            Some(rate / parts).filter(|_| limited),
            format!(
                "comments/s per partition (ingest/ours: {rate:.0}/s over {parts} partitions; the machine, not a partition, was the limit)"
            ),
        );
    }
    // Batches of likes: the best batched step.
    let batched = summary::get(results, "likes-batch/ours");
    if let Some(r) = batched.iter().max_by(|x, y| {
        x.publish
            .likes
            .accepted_per_sec
            .total_cmp(&y.publish.likes.accepted_per_sec)
    }) {
        let rate = r.publish.likes.requests_per_sec;
        set(
            &mut c.publisher_us_per_batch,
            us_per(cpu_of(r, "publisher"), rate),
            format!(
                "publisher µs/batch (likes-batch/ours, {rate:.0} batches/s of {})",
                r.publish.like_batch
            ),
        );
        set(
            &mut c.nats_us_per_batch,
            us_per(cpu_of(r, "nats"), rate),
            format!("nats-server µs/batch (likes-batch/ours, {rate:.0} batches/s)"),
        );
        let limited = batched.iter().any(|r| !r.stop_reason.is_empty());
        set(
            &mut c.partition_writes_per_sec,
            Some(rate / parts).filter(|_| limited),
            format!("counter writes/s per partition (likes-batch/ours over {parts} partitions)"),
        );
    }
    // Plain messages: single likes over NATS, whose messages are all plain routing.
    if let Some(r) = summary::get(results, "likes-nats/ours")
        .iter()
        .filter(|r| r.nats.in_msgs > 0)
        .max_by(|x, y| {
            x.publish
                .likes
                .accepted_per_sec
                .total_cmp(&y.publish.likes.accepted_per_sec)
        })
    {
        let msgs = (r.nats.in_msgs + r.nats.out_msgs) as f64 / r.window_s.max(0.001);
        set(
            &mut c.nats_us_per_msg,
            us_per(cpu_of(r, "nats"), msgs).map(|us| us / 4.0),
            format!(
                "nats-server µs/msg (likes-nats/ours: {msgs:.0} msgs/s, a quarter of its µs/msg since each carries a JetStream write every 4)"
            ),
        );
    }
    notes
}

/// Prints the measured unit costs (with `--measured`) and the capacity table.
pub fn run(mut a: CapacityArgs) -> Result<()> {
    if let Some(dir) = a.measured.clone() {
        let results = summary::load(&dir)?;
        for line in measured(&mut a, &results) {
            println!("measured {line}");
        }
        println!();
    }
    if a.like_batch < 1.0 {
        return Err(Error::Invalid("--like-batch must be at least 1".into()));
    }
    if !(a.nodes.utilization > 0.0 && a.nodes.utilization <= 1.0) {
        return Err(Error::Invalid("--utilization must be in (0, 1]".into()));
    }
    let p = plan(&a);
    print!("{}", table(&a, &p));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CapacityArgs,
    }

    fn args(extra: &[&str]) -> CapacityArgs {
        let mut argv = vec!["t"];
        argv.extend_from_slice(extra);
        T::parse_from(argv).a
    }

    fn count(p: &Plan, name: &str) -> u64 {
        p.roles.iter().find(|r| r.name == name).unwrap().count
    }

    #[test]
    fn sizes_each_role_from_its_unit_costs() {
        // 1M viewers of 100 videos, 10 comments/s per video, likes as 1,000 batches/s:
        // 10 + 10 (likes events, under the 20/s cap) + 1 = 21 events/s per viewer.
        let a = args(&[
            "--viewers",
            "1000000",
            "--videos",
            "100",
            "--comments-per-sec",
            "1000",
            "--likes-per-sec",
            "100000",
            "--like-batch",
            "100",
            "--frontend-us-per-delivery",
            "1",
            "--frontend-us-per-nats-msg",
            "0",
            "--frontend-bytes-per-viewer",
            "1024",
            "--cores",
            "10",
            "--utilization",
            "0.5",
            "--memory-gib",
            "1",
            "--max-viewers-per-frontend",
            "1000000",
            "--nats-us-per-comment",
            "100",
            "--nats-us-per-batch",
            "100",
            "--nats-us-per-msg",
            "0",
            "--replicas",
            "3",
            "--publisher-us-per-comment",
            "1000",
            "--publisher-us-per-batch",
            "1000",
            "--partition-comments-per-sec",
            "300",
            "--partition-writes-per-sec",
            "1000",
        ]);
        let p = plan(&a);
        assert!((p.events_per_viewer - 21.0).abs() < 1e-9);
        assert_eq!(p.deliveries_per_sec, 21_000_000.0);
        // 21 cores of deliveries on 5 usable cores per server → 5; memory 1 GiB on 0.5.
        assert_eq!(count(&p, "frontends"), 5);
        // (1000 + 1000) writes × 100 µs × 3 replicas = 0.6 cores → 1, but 3 replicas.
        assert_eq!(count(&p, "NATS servers"), 3);
        // 1000 comments/s at 300 per partition (3.33) + 1000 writes/s at 1000 (1) → 5.
        assert_eq!(count(&p, "partitions"), 5);
        // 2000 × 1 ms = 2 cores → 1 server, but two for failover.
        assert_eq!(count(&p, "publishers"), 2);
        // Each of 5 frontends holds all 100 videos: 10 + 10 + 1 viewer total a second each.
        assert!(
            p.roles[0].load.contains("2,100 NATS msgs/s in"),
            "{:?}",
            p.roles[0]
        );
        assert!(table(&a, &p).contains("| partitions | 5 |"));
    }

    #[test]
    fn frontends_grow_with_their_nats_inbound_and_memory() {
        let base = [
            "--viewers",
            "100000",
            "--videos",
            "10",
            "--comments-per-sec",
            "0",
            "--likes-per-sec",
            "0",
            "--frontend-us-per-delivery",
            "0",
            "--frontend-bytes-per-viewer",
            "0",
            "--cores",
            "1",
            "--utilization",
            "1",
            "--max-viewers-per-frontend",
            "100000",
        ];
        let mut quiet: Vec<&str> = base.to_vec();
        quiet.extend(["--frontend-us-per-nats-msg", "0"]);
        assert_eq!(count(&plan(&args(&quiet)), "frontends"), 1);
        // Presence alone: one frontend, 10 videos × 1 msg/s × 10 ms = 0.1 core.
        let mut busy: Vec<&str> = base.to_vec();
        busy.extend(["--frontend-us-per-nats-msg", "10000"]);
        assert_eq!(count(&plan(&args(&busy)), "frontends"), 1);
        // 1 s per message: 10 videos × 1 viewer total/s = 10 cores > 1; more frontends
        // would each still hold all 10 videos: no better, so it says so.
        let mut hopeless: Vec<&str> = base.to_vec();
        hopeless.extend(["--frontend-us-per-nats-msg", "1000000"]);
        let p = plan(&args(&hopeless));
        assert!(
            p.roles[0].bound_by.starts_with("does not fit"),
            "{:?}",
            p.roles[0]
        );
        // Memory: 100k viewers × 64 KiB = 6.1 GiB on 1 GiB servers → 7.
        let mem: Vec<&str> = base
            .iter()
            .map(|&x| {
                if x == "--frontend-bytes-per-viewer" {
                    "--memory-gib"
                } else {
                    x
                }
            })
            .collect();
        let mut mem: Vec<&str> = mem
            .chunks(2)
            .flat_map(|kv| {
                if kv[0] == "--memory-gib" {
                    ["--memory-gib", "1"]
                } else {
                    [kv[0], kv[1]]
                }
            })
            .collect();
        mem.extend([
            "--frontend-us-per-nats-msg",
            "0",
            "--frontend-bytes-per-viewer",
            "65536",
        ]);
        let p = plan(&args(&mem));
        assert_eq!(count(&p, "frontends"), 7);
        assert_eq!(p.roles[0].bound_by, "memory");
    }

    /// The fleet's growth does not reach into a frontend: 4× the viewers (so 4× the
    /// frontends), the same videos, the same NATS messages into each frontend; the
    /// cluster's messages grow linearly.
    #[test]
    fn a_frontends_inbound_does_not_grow_with_the_fleet() {
        let at = |viewers: &str| {
            plan(&args(&[
                "--viewers",
                viewers,
                "--videos",
                "1000",
                "--max-viewers-per-frontend",
                "100000",
                "--frontend-us-per-delivery",
                "0",
                "--frontend-us-per-nats-msg",
                "0",
            ]))
        };
        let (small, big) = (at("2500000"), at("10000000"));
        assert_eq!(count(&small, "frontends"), 25);
        assert_eq!(count(&big, "frontends"), 100);
        let inbound = |p: &Plan| p.roles[0].load.split("; ").last().unwrap().to_owned();
        assert_eq!(inbound(&small), inbound(&big));
        assert_eq!(inbound(&small), "21,000 NATS msgs/s in per frontend");
        let growth = big.nats_msgs_per_sec / small.nats_msgs_per_sec;
        assert!(growth > 3.0 && growth < 4.0, "{growth}");
    }

    /// A hot video's viewers each get hundreds of events a second: the bytes, not the
    /// CPU, size the frontends.
    #[test]
    fn a_hot_videos_frontends_are_sized_by_their_egress() {
        let p = plan(&args(&[
            "--viewers",
            "1000000",
            "--videos",
            "1",
            "--comments-per-sec",
            "200",
            "--likes-per-sec",
            "0",
            "--frontend-us-per-delivery",
            "0",
            "--frontend-us-per-nats-msg",
            "0",
            "--max-viewers-per-frontend",
            "1000000",
            "--event-bytes",
            "120",
            "--nic-gbit",
            "25",
            "--utilization",
            "0.6",
        ]));
        // 1M × 201 events/s × 960 bits = 193 Gbit/s on 15 usable Gbit/s each → 13.
        assert_eq!(count(&p, "frontends"), 13);
        assert_eq!(p.roles[0].bound_by, "network egress");
        assert!(
            p.roles[0].load.contains("193 Gbit/s out"),
            "{:?}",
            p.roles[0]
        );
    }

    #[test]
    fn the_hottest_video_and_partition_ceilings() {
        let a = args(&[
            "--videos",
            "1",
            "--comments-per-sec",
            "2000",
            "--likes-per-sec",
            "0",
            "--partition-comments-per-sec",
            "4000",
        ]);
        let p = plan(&a);
        let one = p
            .ceilings
            .iter()
            .find(|c| c.what.starts_with("one video"))
            .unwrap();
        assert!((one.used - 0.5).abs() < 1e-9);
        assert_eq!(sig3(1234.5), 1230.0);
        assert_eq!(sig3(0.012345), 0.0123);
        assert_eq!(us_per(50.0, 1000.0), Some(500.0));
        assert_eq!(us_per(50.0, 0.0), None);
    }
}
