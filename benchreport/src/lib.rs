//! `benchreport`: everything about benchmark results that is not generating load.
//!
//! `loadgen` measures and writes [`report::Report`]s (one JSON line per measurement
//! window, histograms included, so several processes' results merge exactly); this crate
//! owns that format and turns results into what people read:
//!
//! - [`report`]: the result format, [`report::merge`], reading and writing result files,
//!   and the per-window human table;
//! - [`counts`], [`hist`], [`server`], [`nats`]: the parts of a report (viewer counters,
//!   latency histograms, server processes' CPU and RSS, nats-server counters);
//! - [`summary`]: the markdown table and SVG plot of `scripts/bench.sh` (this system,
//!   the reference broadcast server and nginx + nchan side by side);
//! - [`capacity`]: the capacity model (servers needed for a load, from measured costs);
//! - [`fleet`]: the many-frontend scenario (NATS messages and CPU per frontend against
//!   the number of frontends, from `/connz`, `/varz` and `/proc`): table, JSON and plot.
//!
//! The `benchreport` binary runs `summary`, `capacity`, `fleet` and `merge`.

pub mod capacity;
pub mod counts;
pub mod fleet;
pub mod hist;
pub mod nats;
pub mod report;
pub mod server;
pub mod summary;

use std::path::{Path, PathBuf};

use clap::Args;

/// Where a report command writes what it prints (its flags, shared by `summary` and
/// `fleet`).
#[derive(Debug, Clone, Args)]
pub struct Outputs {
    /// Write the markdown table here too.
    #[arg(long)]
    pub md_out: Option<PathBuf>,
    /// Write the plot here.
    #[arg(long)]
    pub svg_out: Option<PathBuf>,
    /// A line printed under the table (date, machine, command).
    #[arg(long, default_value = "")]
    pub note: String,
}

impl Outputs {
    /// Prints the table and writes it where asked.
    pub fn table(&self, md: &str) -> Result<()> {
        println!("{md}");
        if let Some(path) = &self.md_out {
            std::fs::write(path, md).map_err(Error::io(path))?;
        }
        Ok(())
    }
}

/// The `*.json` files of `dir`, sorted by name.
pub fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// What can go wrong reading, merging or rendering results.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("histogram: {0}")]
    Histogram(String),
    #[error("plot: {0}")]
    Plot(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
