//! `loadgen`: SSE viewers and publishers against the live likes/comments service, with
//! end-to-end latency, loss and duplicate accounting. See `loadgen --help`. The result
//! format, the benchmark summary and the capacity model live in the `benchreport` crate
//! (`loadgen summary` and `loadgen capacity` are the same as `benchreport …`).

mod audience;
mod chunked;
mod cli;
mod cpu;
mod failover;
mod fleet;
mod ingest;
mod likes;
mod limits;
mod natsmon;
mod procstat;
mod progress;
mod publish;
mod response;
mod scenario;
mod stats;
mod target;
mod viewer;

use std::time::Duration;

use clap::Parser;

use cli::{Cli, Cmd};
use scenario::Plan;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plan = match cli.cmd {
        Cmd::Merge { files, json_out } => {
            let per_file = files
                .iter()
                .map(|f| benchreport::report::read_file(f))
                .collect::<Result<Vec<_>, _>>()?;
            // Step i of every file is merged with step i of the others.
            let merged = benchreport::report::merge_steps(&per_file)?;
            merged.iter().for_each(scenario::print);
            return scenario::write(&merged, json_out.as_deref());
        }
        Cmd::Summary(args) => return Ok(benchreport::summary::run(&args)?),
        Cmd::Capacity(args) => return Ok(benchreport::capacity::run(*args)?),
        Cmd::Fleet(args) => return fleet::run(&args),
        Cmd::Viewers {
            common,
            viewers,
            drain,
            windows,
        } => Plan {
            mode: "viewers",
            common,
            viewers: Some(viewers),
            publish: None,
            steps: None,
            drain: drain.0,
            windows: windows as usize,
        },
        Cmd::Publish {
            common,
            publish,
            steps,
        } => Plan {
            mode: "publish",
            common,
            viewers: None,
            publish: Some(publish),
            steps: Some(steps),
            drain: Duration::ZERO,
            windows: 1,
        },
        Cmd::Run {
            common,
            viewers,
            publish,
            steps,
            drain,
        } => Plan {
            mode: "run",
            common,
            viewers: Some(viewers),
            publish: Some(publish),
            steps: Some(steps),
            drain: drain.0,
            windows: 1,
        },
    };
    if let Some(v) = &plan.viewers {
        limits::raise_open_files(v.viewers);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if cli.threads > 0 {
        rt.worker_threads(cli.threads);
    }
    let rt = rt.enable_all().build()?;
    let limit = plan.hard_limit();
    let json_out = plan.common.json_out.clone();
    // Each window's result is printed and written as soon as it is known, so a stepped run
    // cut short still leaves its finished steps behind.
    let mut done = Vec::new();
    let result = rt.block_on(async {
        tokio::time::timeout(
            limit,
            scenario::run(plan, |r| {
                scenario::print(r);
                done.push(r.clone());
                if let Err(e) = scenario::write(&done, json_out.as_deref()) {
                    eprintln!("loadgen: {e:#}");
                }
            }),
        )
        .await
    });
    result.map_err(|_| anyhow::anyhow!("run exceeded its time bound of {limit:?}"))??;
    // Do not wait for stray tasks (requests past their timeout, NATS client).
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
