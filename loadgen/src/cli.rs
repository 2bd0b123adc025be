//! Command line: the subcommands and their flags.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator and latency meter for the live likes/comments service.
///
/// Prints a progress line per second to stderr, the result table to stderr and the
/// result as one JSON line to stdout (and to --json-out).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    /// Tokio worker threads (0: one per CPU).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Open SSE viewers and measure what they receive.
    Viewers {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        viewers: ViewerArgs,
        /// After the window, keep counting deliveries this long (lines up with the drain
        /// of a `run` process publishing to these viewers).
        #[arg(long, default_value = "0s")]
        drain: Dur,
        /// Measure this many windows of --duration back to back (one result each), the
        /// viewers staying connected: latency before and during an event.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        windows: u32,
    },
    /// Publish comments and likes at a fixed rate (HTTP or NATS).
    Publish {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        publish: PublishArgs,
        #[command(flatten)]
        steps: StepArgs,
    },
    /// Viewers and publishing in one process; publishing starts once viewers are connected.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        viewers: ViewerArgs,
        #[command(flatten)]
        publish: PublishArgs,
        #[command(flatten)]
        steps: StepArgs,
        /// After publishing stops, keep counting deliveries this long.
        #[arg(long, default_value = "2s")]
        drain: Dur,
    },
    /// Merge the --json-out files of several processes into one result (files of stepped
    /// runs are merged step by step).
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also write the merged result here.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// The benchmark summary of `scripts/bench.sh`: reads the labelled results in a
    /// directory, prints one markdown table and writes the latency plot (SVG). The same
    /// as `benchreport summary`.
    Summary(benchreport::summary::SummaryArgs),
    /// The capacity model: how many frontends, NATS servers, partitions and publishers a
    /// deployment needs for the given load, from unit costs measured by the benchmark
    /// (defaults: the numbers in docs/capacity.md; --measured DIR takes them from a
    /// `scripts/bench.sh` results directory). The same as `benchreport capacity`.
    Capacity(Box<benchreport::capacity::CapacityArgs>),
    /// Measure a running fleet of frontends over one window (no viewers, no NATS
    /// connection of its own): NATS messages per second of every `frontend-…` and
    /// `publisher-…` connection (`/connz`), the nats-server's totals (`/varz`), and the
    /// CPU of the given processes (`/proc`). Writes one JSON line for `benchreport fleet`.
    Fleet(crate::fleet::FleetArgs),
}

/// Flags of every measuring subcommand.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Number of videos; ids are PREFIX0000, PREFIX0001, …
    #[arg(long, default_value_t = 10)]
    pub videos: usize,
    /// Prefix of the video ids.
    #[arg(long, default_value = "v")]
    pub video_prefix: String,
    /// Exact video ids, comma separated (instead of --videos/--video-prefix).
    #[arg(long, value_delimiter = ',')]
    pub video_ids: Vec<String>,
    /// Length of the measurement window (e.g. 30, 30s, 500ms, 2m).
    #[arg(long, default_value = "10s")]
    pub duration: Dur,
    /// Wait after the viewers are connected (or before publishing) before measuring.
    #[arg(long, default_value = "2s")]
    pub warmup: Dur,
    /// Write the result as JSON (with the HDR histograms) for `loadgen merge`.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// No per-second progress line.
    #[arg(long)]
    pub quiet: bool,
    /// A name stored in the result (e.g. `fanout/ours`), for `summary`.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Server processes whose CPU (over each window) and RSS (before the ramp, at each
    /// window's start and end) go into the result: `NAME:PID,NAME:PID` (Linux /proc).
    #[arg(long)]
    pub server_pids: Option<String>,
    /// NATS monitoring URL (e.g. http://127.0.0.1:8222): the server's message and byte
    /// counters (`/varz`) over each window go into the result, for NATS messages per event.
    #[arg(long)]
    pub nats_monitor: Option<String>,
    /// Start the (first) measurement window at this UNIX time in seconds instead of after
    /// --warmup: lines up the windows of several processes.
    #[arg(long)]
    pub start_at: Option<f64>,
}

/// Rising rates: the run measures one window per step, keeping the viewers connected.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Comment rates per second, one window each (e.g. 10,20,40,80), in place of
    /// --comments-per-sec.
    #[arg(long, value_delimiter = ',')]
    pub comment_steps: Vec<f64>,
    /// Like rates per second, one window each, in place of --likes-per-sec.
    #[arg(long, value_delimiter = ',')]
    pub like_steps: Vec<f64>,
    /// Stop stepping once the viewers' comment p99 exceeds this.
    #[arg(long, default_value = "1s")]
    pub stop_p99: Dur,
    /// Stop stepping once more than this fraction of the expected comments was lost.
    #[arg(long, default_value_t = 0.0)]
    pub stop_loss: f64,
    /// Stop stepping once fewer than this fraction of the offered requests was accepted
    /// (or the rest failed).
    #[arg(long, default_value_t = 0.95)]
    pub stop_accepted: f64,
    /// Stop stepping once the comment or like request p99 (send to 202, i.e. stored)
    /// exceeds this.
    #[arg(long)]
    pub stop_request_p99: Option<Dur>,
}

impl StepArgs {
    /// The number of windows: the longest step list, at least 1.
    pub fn count(&self) -> usize {
        self.comment_steps.len().max(self.like_steps.len()).max(1)
    }
}

/// Flags of the viewers.
#[derive(Debug, Clone, Args)]
pub struct ViewerArgs {
    /// Frontend base URLs, comma separated; viewers are spread over them.
    #[arg(long, env = "FRONTEND_URL", default_value = "http://127.0.0.1:8080")]
    pub frontend: String,
    /// Number of SSE viewers.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub viewers: usize,
    /// Global index of the first viewer (give each process a different offset).
    #[arg(long, default_value_t = 0)]
    pub viewer_offset: usize,
    /// Local source addresses to bind, comma separated (e.g. 127.0.0.2,127.0.0.3).
    #[arg(long)]
    pub source_ips: Option<String>,
    /// New connections per second during the ramp.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Longest ramp (default: viewers / connect-rate + 10 s).
    #[arg(long)]
    pub ramp_timeout: Option<Dur>,
    /// Connect + response head timeout of one attempt.
    #[arg(long, default_value = "10s")]
    pub connect_timeout: Dur,
    /// Viewer JWT, sent as `?token=`.
    #[arg(long, env = "LOADGEN_VIEWER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// SO_RCVBUF of viewer sockets in bytes (0: the OS default).
    #[arg(long, default_value_t = 0)]
    pub recv_buffer: u32,
    /// Do not reconnect a viewer whose stream ended.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Treat --frontend as a node and its stand-ins behind a load balancer: every viewer
    /// starts on the first URL and, when a connection attempt fails, moves on at once to
    /// the next live one (the others in an order rotated per viewer, so a dead node's
    /// viewers spread evenly over the rest). Without it viewers are spread over the list
    /// and keep to their own.
    #[arg(long)]
    pub failover: bool,
    /// What serves the viewers: this system, or nginx + nchan (`GET /sub/{video}`; unnamed
    /// events whose JSON has `ts` are comments, counted per viewer, not deduplicated by id).
    #[arg(long, value_enum, default_value_t = Server::Ours)]
    pub target: Server,
    /// The first N viewers of each video record when they see likes totals, for the
    /// like latency (with likes published by the same process).
    #[arg(long, default_value_t = 2)]
    pub likes_sample: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Server {
    /// This system's frontend (`/v1/videos/{video}/events`).
    Ours,
    /// nginx with the nchan module (`/sub/{video}`, EventSource subscriber).
    Nchan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// POST to the publisher's HTTP API.
    Http,
    /// Protobuf request-reply on the NATS ingest subjects.
    Nats,
    /// POST the comment JSON `{"id","user","text","ts"}` to nchan's `{publisher}/pub/{video}`
    /// (comments only).
    Nchan,
}

/// Flags of publishing.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// Publish over HTTP or straight to NATS.
    #[arg(long, value_enum, default_value_t = Via::Http)]
    pub via: Via,
    /// Publisher base URLs, comma separated (round robin).
    #[arg(long, env = "PUBLISHER_URL", default_value = "http://127.0.0.1:8081")]
    pub publisher: String,
    /// NATS URLs, comma separated (with --via nats).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// NATS credentials file (with --via nats).
    #[arg(long, env = "NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// NATS user (with --nats-password).
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password (with --nats-user).
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// Comments per second over all videos (0: none).
    #[arg(long, default_value_t = 10.0)]
    pub comments_per_sec: f64,
    /// Likes per second over all videos (0: none).
    #[arg(long, default_value_t = 50.0)]
    pub likes_per_sec: f64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Distinct users the requests rotate through (PREFIX0, PREFIX1, …).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Prefix of the user ids.
    #[arg(long, default_value = "u")]
    pub user_prefix: String,
    /// Length of each comment text in characters.
    #[arg(long, default_value_t = 32)]
    pub text_len: usize,
    /// Bearer token for the publisher's POSTs (the body then carries no `user`).
    #[arg(long, env = "LOADGEN_BEARER", hide_env_values = true)]
    pub bearer: Option<String>,
    /// Timeout of one request.
    #[arg(long, default_value = "5s")]
    pub request_timeout: Dur,
    /// Send likes as `LikeBatch` messages of this many likes each (with --via nats; each
    /// with its own idempotency key), at the rate in batches that gives the asked likes/s.
    /// Unset: one `LikeRequest` per like.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub like_batch: Option<u64>,
}

/// A duration flag: `10` (seconds), `10s`, `250ms`, `2m`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => s.split_at(i),
            None => (s, "s"),
        };
        let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
        };
        Duration::try_from_secs_f64(secs)
            .map(Dur)
            .map_err(|e| format!("bad duration {s:?}: {e}"))
    }
}

/// The video ids of a run.
pub fn video_ids(c: &CommonArgs) -> Vec<String> {
    if !c.video_ids.is_empty() {
        return c.video_ids.clone();
    }
    (0..c.videos)
        .map(|i| format!("{}{i:04}", c.video_prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_flags() {
        assert_eq!("10".parse::<Dur>().unwrap().0, Duration::from_secs(10));
        assert_eq!(
            "250ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("1.5m".parse::<Dur>().unwrap().0, Duration::from_secs(90));
        assert!("5x".parse::<Dur>().is_err());
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
