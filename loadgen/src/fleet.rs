//! `loadgen fleet`: measures a running fleet of frontends over one window, for the fleet
//! scenario of `scripts/bench.sh`. It opens no viewers and no NATS connection: at the
//! window's two ends it reads the nats-server's `/connz` (every connection, paged) and
//! `/varz`, and `/proc` for the CPU of the given frontend, publisher and nats-server
//! processes; the rates go into one [`FleetStep`] (a JSON line), which `benchreport fleet`
//! turns into the table and plot. Connections are told apart by their names' prefixes
//! (`frontend-…`, `publisher-…`), nothing else.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use benchreport::fleet::{
    Conn, Connz, FleetStep, NatsRates, ProcCpu, Spread, conn_rates, cpu_percent, label,
};
use benchreport::nats::NatsCounts;
use clap::Args;

use crate::cli::Dur;
use crate::{cpu, procstat};

/// Connections asked for per `/connz` page.
const CONNZ_PAGE: usize = 1024;

/// Flags of `fleet`.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// NATS monitoring URL (e.g. http://127.0.0.1:8222).
    #[arg(long)]
    pub nats_monitor: String,
    /// The frontend processes' pids, comma separated (their CPU; their number is F
    /// unless --frontends says otherwise).
    #[arg(long, value_delimiter = ',')]
    pub frontend_pids: Vec<u32>,
    /// F, the number of frontends started (default: how many --frontend-pids).
    #[arg(long)]
    pub frontends: Option<usize>,
    /// The publisher processes' pids, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub publisher_pids: Vec<u32>,
    /// The nats-server's pid.
    #[arg(long)]
    pub nats_pid: Option<u32>,
    /// Name prefix of the frontends' NATS connections in `/connz`.
    #[arg(long, default_value = "frontend-")]
    pub frontend_prefix: String,
    /// Name prefix of the publishers' NATS connections in `/connz`.
    #[arg(long, default_value = "publisher-")]
    pub publisher_prefix: String,
    /// Wait this long before the window (let viewer counts settle).
    #[arg(long, default_value = "5s")]
    pub warmup: Dur,
    /// Start the window at this UNIX time in seconds instead of after --warmup (lines it
    /// up with the viewers' `loadgen viewers --start-at`).
    #[arg(long)]
    pub start_at: Option<f64>,
    /// Length of the window.
    #[arg(long, default_value = "10s")]
    pub duration: Dur,
    /// Append the step (one JSON line) to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// What is read at each end of the window.
struct Reading {
    at: Instant,
    conns: Vec<Conn>,
    varz: NatsCounts,
    frontends: Vec<Option<f64>>,
    publishers: Vec<Option<f64>>,
    nats: Option<f64>,
    machine: Option<f64>,
}

pub fn run(args: &FleetArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let step = rt.block_on(measure(args))?;
    let json = serde_json::to_string(&step)?;
    println!("{json}");
    if let Some(path) = &args.json_out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}", path.display()))?;
        writeln!(f, "{json}").with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}

async fn measure(args: &FleetArgs) -> anyhow::Result<FleetStep> {
    let f = args.frontends.unwrap_or(args.frontend_pids.len());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let base = args.nats_monitor.trim_end_matches('/');
    let wait = match args.start_at {
        Some(at) => Duration::from_secs_f64((at - unix_now()).max(0.0)),
        None => args.warmup.0,
    };
    if args.start_at.is_some() && wait.is_zero() {
        eprintln!("loadgen fleet: --start-at was already past");
    }
    tokio::time::sleep(wait).await;
    let started_unix = unix_now();
    let r0 = read(&client, base, args).await?;
    let seen = r0
        .conns
        .iter()
        .filter(|c| c.name.starts_with(&args.frontend_prefix))
        .count();
    if seen != f {
        eprintln!(
            "loadgen fleet: {seen} connections named {}… for {f} frontends",
            args.frontend_prefix
        );
    }
    tokio::time::sleep(args.duration.0).await;
    let r1 = read(&client, base, args).await?;
    let wall = r1.at.duration_since(r0.at).as_secs_f64();
    let procs = |name: &str, pids: &[u32], a: &[Option<f64>], b: &[Option<f64>]| {
        pids.iter()
            .zip(a.iter().zip(b))
            .enumerate()
            .map(|(i, (&pid, (&a, &b)))| ProcCpu {
                name: format!("{name}{}", i + 1),
                pid,
                cpu_percent: cpu_percent(a, b, wall),
            })
            .collect::<Vec<_>>()
    };
    let step = FleetStep {
        label: label(f),
        frontends: f,
        window_s: wall,
        started_unix,
        frontend_conns: conn_rates(&r0.conns, &r1.conns, &args.frontend_prefix, wall),
        frontend_cpu: procs(
            "frontend",
            &args.frontend_pids,
            &r0.frontends,
            &r1.frontends,
        ),
        publisher_conns: conn_rates(&r0.conns, &r1.conns, &args.publisher_prefix, wall),
        publisher_cpu: procs(
            "publisher",
            &args.publisher_pids,
            &r0.publishers,
            &r1.publishers,
        ),
        nats: NatsRates::over(&r0.varz, &r1.varz, wall),
        nats_cpu: args.nats_pid.map(|pid| ProcCpu {
            name: "nats-server".into(),
            pid,
            cpu_percent: cpu_percent(r0.nats, r1.nats, wall),
        }),
        machine_cpu_percent: cpu_percent(r0.machine, r1.machine, wall).unwrap_or(0.0),
        load_average: cpu::load_average(),
    };
    let fe_in = Spread::of(step.frontend_conns.iter().map(|c| c.msgs_in_per_sec));
    eprintln!(
        "loadgen fleet: F={f}: {} frontend connections, msgs in/s per frontend median {:.1} max {:.1}; nats in/s {:.0} out/s {:.0}; window {wall:.1} s",
        fe_in.n, fe_in.median, fe_in.max, step.nats.in_msgs_per_sec, step.nats.out_msgs_per_sec
    );
    Ok(step)
}

/// One end of the window: NATS first (the rates' base), then the processes' CPU.
async fn read(client: &reqwest::Client, base: &str, args: &FleetArgs) -> anyhow::Result<Reading> {
    let at = Instant::now();
    let conns = connz(client, base).await?;
    let varz: NatsCounts = get_json(client, &format!("{base}/varz")).await?;
    let cpu_of = |pids: &[u32]| pids.iter().map(|&p| procstat::cpu_seconds(p)).collect();
    Ok(Reading {
        at,
        conns,
        varz,
        frontends: cpu_of(&args.frontend_pids),
        publishers: cpu_of(&args.publisher_pids),
        nats: args.nats_pid.and_then(procstat::cpu_seconds),
        machine: cpu::machine_seconds(),
    })
}

/// Every connection of the server, page by page.
async fn connz(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<Conn>> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let url = format!("{base}/connz?limit={CONNZ_PAGE}&offset={offset}");
        let page: Connz = get_json(client, &url).await?;
        let next = page.next_offset();
        all.extend(page.connections);
        match next {
            Some(n) if n > offset => offset = n,
            _ => return Ok(all),
        }
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()
        .with_context(|| format!("GET {url}"))?;
    let body = resp.bytes().await.with_context(|| format!("GET {url}"))?;
    serde_json::from_slice(&body).with_context(|| format!("parsing {url}"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
