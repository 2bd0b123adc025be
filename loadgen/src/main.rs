//! `loadgen`: SSE viewers and publishers against the live likes/comments service, with
//! end-to-end latency, loss and duplicate accounting. See `loadgen --help`.

mod audience;
mod chunked;
mod cli;
mod cpu;
mod ingest;
mod limits;
mod progress;
mod publish;
mod report;
mod response;
mod scenario;
mod sse;
mod stats;
mod target;
mod viewer;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Cmd};
use scenario::Plan;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plan = match cli.cmd {
        Cmd::Merge { files, json_out } => {
            let mut reports = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                reports.push(
                    serde_json::from_str(&text)
                        .with_context(|| format!("parsing {}", f.display()))?,
                );
            }
            return scenario::emit(&report::merge(&reports)?, json_out.as_deref());
        }
        Cmd::Viewers { common, viewers } => Plan {
            mode: "viewers",
            common,
            viewers: Some(viewers),
            publish: None,
            drain: Duration::ZERO,
        },
        Cmd::Publish { common, publish } => Plan {
            mode: "publish",
            common,
            viewers: None,
            publish: Some(publish),
            drain: Duration::ZERO,
        },
        Cmd::Run {
            common,
            viewers,
            publish,
            drain,
        } => Plan {
            mode: "run",
            common,
            viewers: Some(viewers),
            publish: Some(publish),
            drain: drain.0,
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
    let report = rt
        .block_on(async { tokio::time::timeout(limit, scenario::run(plan)).await })
        .map_err(|_| anyhow::anyhow!("run exceeded its time bound of {limit:?}"))??;
    scenario::emit(&report, json_out.as_deref())?;
    // Do not wait for stray tasks (requests past their timeout, NATS client).
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
