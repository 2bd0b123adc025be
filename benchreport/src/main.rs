//! `benchreport`: the reporting side of the benchmarks. `summary` is the table and plot
//! `scripts/bench.sh` prints and writes, `capacity` the capacity model, `fleet` the table
//! and plot of the many-frontend scenario, `merge` joins the result files of several
//! `loadgen` processes. See `benchreport --help`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use benchreport::{capacity, fleet, report, summary};

/// Benchmark reporting for the live likes/comments service.
#[derive(Debug, Parser)]
#[command(name = "benchreport", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Reads the labelled results in a directory (`loadgen --json-out` files), prints
    /// one markdown table (this system, the reference server and nginx + nchan side by
    /// side) and writes the fan-out latency plot (SVG).
    Summary(summary::SummaryArgs),
    /// The capacity model: how many frontends, NATS servers, partitions and publishers a
    /// deployment needs for the given load, from unit costs (defaults: docs/capacity.md;
    /// --measured DIR takes them from a `scripts/bench.sh` results directory).
    Capacity(Box<capacity::CapacityArgs>),
    /// The many-frontend scenario (`scripts/bench.sh --only fleet`): reads the steps
    /// `loadgen fleet` wrote (one per fleet size) and the viewers' results, prints one
    /// markdown table (per-frontend NATS messages in/s median and max, CPU, the
    /// nats-server's and the publisher's rates, by number of frontends), and writes a JSON
    /// summary and the plot (SVG).
    Fleet(fleet::FleetArgs),
    /// Merges the result files of several processes (step i with step i), printing each
    /// merged window's table.
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also write the merged result here.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
}

fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Summary(args) => summary::run(&args),
        Cmd::Capacity(args) => capacity::run(*args),
        Cmd::Fleet(args) => fleet::run(&args),
        Cmd::Merge { files, json_out } => merge(&files, json_out.as_deref()),
    };
    if let Err(e) = result {
        eprintln!("benchreport: {e}");
        std::process::exit(1);
    }
}

fn merge(files: &[PathBuf], json_out: Option<&std::path::Path>) -> benchreport::Result<()> {
    let per_file = files
        .iter()
        .map(|f| report::read_file(f))
        .collect::<benchreport::Result<Vec<_>>>()?;
    let merged = report::merge_steps(&per_file)?;
    for m in &merged {
        eprintln!("\nmerged result\n{}", m.table());
    }
    if let Some(path) = json_out {
        report::write_file(&merged, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
